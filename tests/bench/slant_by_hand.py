"""The slant ``--deslant`` estimates for each hand of a rendered handwriting set (README,
"Slant correction on today's handwriting default"): whether a hand the correction does not help
is one it reads as upright, and whether that reading holds when its thin strokes are thickened by
a pixel or its ink threshold is halved.

    python tests/bench/slant_by_hand.py bench-out/recipe-s17/handwriting/test-unseen-hands.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
from PIL import Image

from ctctool.features.slant import estimate_slant


def thickened(values: np.ndarray) -> np.ndarray:
    """Ink widened by one pixel to each side (a 3-wide horizontal maximum)."""
    padded = np.pad(values, ((0, 0), (1, 1)))
    return np.maximum(np.maximum(padded[:, :-2], padded[:, 1:-1]), padded[:, 2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", type=Path, help="rows with path, text and font (handwriting_set.py writes them)")
    args = parser.parse_args()
    readings: dict[str, dict[str, list[float]]] = {}
    for line in args.manifest.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        image = Image.open(args.manifest.parent / row["path"]).convert("L")
        hand = readings.setdefault(str(row["font"]).split("-")[0], {})
        for height in (32, 64):
            scaled = image.resize((max(1, round(image.width * height / image.height)), height))
            ink = 1.0 - np.asarray(scaled, dtype=np.float32) / 255.0  # ink high, as the features have it
            hand.setdefault(f"{height} px", []).append(estimate_slant(ink))
            if height == 32:
                hand.setdefault("32 px, thickened", []).append(estimate_slant(thickened(ink)))
                hand.setdefault("32 px, half threshold", []).append(estimate_slant(2.0 * ink))
    columns = list(next(iter(readings.values())))
    print("| hand | lines | " + " | ".join(columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for name, hand in sorted(readings.items()):
        cells = [f"{statistics.median(hand[column]):+.3f}" for column in columns]
        print(f"| {name} | {len(hand[columns[0]])} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
