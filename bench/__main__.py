"""`python -m bench [images|pipeline|reruns|quality|metrics|scale] [options]`; with no name, all but
scale (`make bench`). `python -m bench scale` (`make bench-scale`) is the busy-day bench: minutes.
"""

from __future__ import annotations

import sys

from bench import images, metrics, pipeline, quality, reruns, scale

BENCHES = {
    "images": images.main,
    "pipeline": pipeline.main,
    "reruns": reruns.main,
    "quality": quality.main,
    "metrics": metrics.main,
}
NAMED_ONLY = {"scale": scale.main}


def main() -> None:
    args = sys.argv[1:]
    if args and args[0] in BENCHES | NAMED_ONLY:
        (BENCHES | NAMED_ONLY)[args[0]](args[1:])
        return
    for name, run in BENCHES.items():
        print(f"== {name}")
        run(args)


if __name__ == "__main__":
    main()
