"""`python -m bench [images|pipeline|reruns|quality|metrics|scale] [options]`; with no name, all but
scale, imagepath and hosts (`make bench`). `python -m bench scale` (`make bench-scale`) is the busy-day
bench: minutes. `python -m bench imagepath` explains the pipeline's figures: the CPU an image on its own
path. `python -m bench hosts` is what a wedged image host costs a catalogue.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from bench import hosts, imagepath, images, metrics, pipeline, quality, reruns, scale

BENCHES: dict[str, Callable[[list[str]], None]] = {
    "images": images.main,
    "pipeline": pipeline.main,
    "reruns": reruns.main,
    "quality": quality.main,
    "metrics": metrics.main,
}
NAMED_ONLY: dict[str, Callable[[list[str]], None]] = {
    "scale": scale.main,
    "imagepath": imagepath.main,
    "hosts": hosts.main,
}


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
