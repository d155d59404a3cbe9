"""`python -m bench [images|pipeline|quality] [options]`: with no name, runs both (what `make bench` does)."""

from __future__ import annotations

import sys

from bench import images, pipeline, quality

BENCHES = {"images": images.main, "pipeline": pipeline.main, "quality": quality.main}


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
