"""How often /describe (with no DESCRIBER: the demo scene checker) names what a flat-colour picture shows.

    python bench/describe.py [--per-variant 250] [--seed 0]

Held-out scenes (colour/shape/background combinations the demo model never trained on), each drawn four
ways: as the demo renders them at 64x64, at other picture sizes (48–200 px), with the shapes drawn 0.75–1.25
times their size, and in nearby shades (each colour moved up to 20 levels per channel). A picture counts as
right when the first of its four prompts names the background ("on a blue background") and each object's
colour and shape ("a red circle"). Prints one table; no assertions.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # testkit, from a checkout

from pipeline.describe import SceneDescriber
from testkit.pictures import held_out_pictures, names_scene


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-variant", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    describer = SceneDescriber()
    right, total, pairs = Counter(), Counter(), Counter()
    started = time.perf_counter()
    for picture in held_out_pictures(args.per_variant, args.seed):
        total[picture.variant] += 1
        pairs[picture.variant] += picture.scene.is_pair
        right[picture.variant] += names_scene(describer.describe(picture.image)[0], picture.scene)
    seconds = time.perf_counter() - started
    print("| pictures | count | of them two-object | named right |")
    print("| --- | --- | --- | --- |")
    for variant in total:
        print(f"| {variant} | {total[variant]} | {pairs[variant]} | {right[variant] / total[variant]:.1%} |")
    print(f"| all | {total.total()} | {pairs.total()} | {right.total() / total.total():.1%} |")
    print(f"\n{seconds / total.total() * 1000:.1f} ms a picture")


if __name__ == "__main__":
    main()
