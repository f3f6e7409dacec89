"""What the per-line image steps cost: a line's features loaded plain, with --deslant and with
--center-normalize, and centre-normalized lines augmented as training does at full strength
(the default preset with and without the per-letter jitter), in ms per line (one thread, the
rounds alternated in one run, medians).

Training loads 16 lines a step (the default batch), so 16 x the difference is what a step pays
when the batches are loaded in the training process (the default on 2 cores).

    python tests/bench/line_prep_cost.py --out bench-out [--manifest data/ocr/val.jsonl] [--lines 200] [--rounds 3]

The table goes to OUT/line_prep/line_prep.md (part of ``make bench``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# "center-normalize" as new models do it (ink relative to each line's paper); "fixed ink" as
# format-3 files do.
VARIANTS = {"plain": {}, "deslant": {"deslant": True},
            "center-normalize": {"center_normalize": True, "center_ink": "relative"},
            "center-normalize, fixed ink (format 3)": {"center_normalize": True, "center_ink": "fixed"},
            "center-normalize + deslant": {"center_normalize": True, "center_ink": "relative", "deslant": True}}
# Training's augmentation after the warm-up, on centre-normalized lines: name -> policy.
AUGMENTED = {"center-normalize, augment default": "default",
             "center-normalize, augment default,-letters": "default,-letters"}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="bench-out")
    parser.add_argument("--manifest", default=str(REPO / "data" / "ocr" / "val.jsonl"))
    parser.add_argument("--lines", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import random

    import torch

    torch.set_num_threads(1)
    from ctctool.augmentation import AugmentPolicy
    from ctctool.features.image import ImageFeatureConfig, ImageFeatures
    from ctctool.manifest import read_manifest

    items = read_manifest(args.manifest)[:args.lines]
    extractors = {name: (ImageFeatures(ImageFeatureConfig(**options)), None) for name, options in VARIANTS.items()}
    centred = extractors["center-normalize"][0]
    extractors.update({name: (centred, AugmentPolicy.parse(spec)) for name, spec in AUGMENTED.items()})
    for extractor, _ in extractors.values():  # warm the imports and caches once
        extractor.load(items[0])
    times: dict[str, list[float]] = {name: [] for name in extractors}
    for _ in range(args.rounds):
        for name, (extractor, policy) in extractors.items():
            started = time.perf_counter()
            for index, item in enumerate(items):  # the same seeds for both policies
                extractor.load(item, None if policy is None else random.Random(index), policy)
            times[name].append((time.perf_counter() - started) / len(items) * 1000.0)
    plain = statistics.median(times["plain"])
    lines = [f"# Line preparation cost (1 thread; {len(items)} lines of {args.manifest}, {args.rounds} rounds "
             "alternated, medians)", "",
             "| line preparation | ms per line | rounds | added per training step (16 lines), ms |", "|---|---|---|---|"]
    for name, values in times.items():
        median = statistics.median(values)
        lines.append(f"| {name} | {median:.2f} | {', '.join(f'{v:.2f}' for v in values)} | {16 * (median - plain):+.0f} |")
    out = Path(args.out) / "line_prep"
    out.mkdir(parents=True, exist_ok=True)
    (out / "line_prep.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
