"""`python -m bench [images|pipeline|reruns|quality|metrics] [options]`; with no name, all (`make bench`)."""

from __future__ import annotations

import sys

from bench import images, metrics, pipeline, quality, reruns

BENCHES = {
    "images": images.main,
    "pipeline": pipeline.main,
    "reruns": reruns.main,
    "quality": quality.main,
    "metrics": metrics.main,
}


def main() -> None:
    args = sys.argv[1:]
    if args and args[0] in BENCHES:
        BENCHES[args[0]](args[1:])
        return
    for name, run in BENCHES.items():
        print(f"== {name}")
        run(args)


if __name__ == "__main__":
    main()
