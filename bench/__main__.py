"""`python -m bench [images|pipeline|scale] [options]`: with no name, runs images and pipeline (`make bench`).

`python -m bench scale` (`make bench-scale`) is the busy-day bench: minutes, not seconds.
"""

from __future__ import annotations

import sys

from bench import images, pipeline, scale

BENCHES = {"images": images.main, "pipeline": pipeline.main}
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
