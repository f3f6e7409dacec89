"""Render the handwriting-like line set for make bench-recipe: text in handwriting and script
fonts with elastic distortion, split by font family between training and test.

    python tests/bench/handwriting_set.py --out bench-out/handwriting

Training and validation lines use one group of families, the test lines another, so the test
figure is "writers the model never saw". Transcripts come from the bundled OCR set (train.jsonl
for training, val.jsonl for validation, test.jsonl for the test lines), so the test text is
unseen too. Every line is drawn by ``data/ocr/make_ocr_lines.render`` (random size, margins,
paper and ink), then bent by a seeded elastic distortion: smooth random displacements on a grid
of one knot per half line height, about 4% of the line height (1.5 px at 38 px), plus a random
slant, the wobble a hand has and a font does not. Fonts lacking a glyph a line needs are not
drawn for it; a line no font of its group can draw is left out. Hands that have capitals only
(``capitals_only``: six training hands, one test hand) get their lines upper-cased, label
included, so no label asks for a lower-case letter the image does not show.

Needs: apt-get install fonts-bwht fonts-breip fonts-dkg-handwriting fonts-femkeklaver
fonts-comic-neue (training) fonts-dancingscript fonts-ecolier-court fonts-humor-sans
fonts-kaushanscript fonts-kristi (test)
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import random
import shutil
import statistics
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFont

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "data" / "ocr"))
from make_ocr_lines import render  # noqa: E402
from make_unseen_fonts import missing_glyphs  # noqa: E402

from ctctool.augmentation.image import remap  # noqa: E402

SEED = 20261202
# (file, Debian package); each package is one or more families, none shared between groups.
TRAIN_FONTS = [
    *[(f"/usr/share/fonts/opentype/bwht/BecauseWe{hand}-Regular.otf", "fonts-bwht")
      for hand in ("Build", "Connect", "Create", "Learn", "Mentor", "Organize")],
    ("/usr/share/fonts/truetype/breip/Breip.ttf", "fonts-breip"),
    ("/usr/share/fonts/truetype/fifthhorseman/dkg.ttf", "fonts-dkg-handwriting"),
    ("/usr/share/fonts/truetype/fifthhorseman/dkgIt.ttf", "fonts-dkg-handwriting"),
    ("/usr/share/fonts/truetype/femkeklaver/femkeklaver.ttf", "fonts-femkeklaver"),
    ("/usr/share/fonts/opentype/comic-neue/ComicNeue-Regular.otf", "fonts-comic-neue"),
    ("/usr/share/fonts/opentype/comic-neue/ComicNeue-Italic.otf", "fonts-comic-neue"),
    ("/usr/share/fonts/opentype/comic-neue/ComicNeue-Light.otf", "fonts-comic-neue"),
]
TEST_FONTS = [
    ("/usr/share/fonts/opentype/dancingscript/DancingScript-Regular.otf", "fonts-dancingscript"),
    ("/usr/share/fonts/truetype/ecolier-court/Ecolier-court.ttf", "fonts-ecolier-court"),
    ("/usr/share/fonts/truetype/humor-sans/Humor-Sans.ttf", "fonts-humor-sans"),
    ("/usr/share/fonts/opentype/kaushanscript/KaushanScript-Regular.otf", "fonts-kaushanscript"),
    ("/usr/share/fonts/truetype/kristi/Kristi.ttf", "fonts-kristi"),
]
# split -> (transcripts from data/ocr, font group, lines at most)
SPLITS = {"train": ("train.jsonl", TRAIN_FONTS, 2400), "val": ("val.jsonl", TRAIN_FONTS, 200),
          "test-unseen-hands": ("test.jsonl", TEST_FONTS, 200)}


@functools.cache
def capitals_only(font_path: str) -> bool:
    """Whether a hand draws capitals for lower-case letters (several training hands, and Humor
    Sans among the test ones): its lower-case letters are as tall as its capitals (median height
    ratio over letters without ascenders or descenders above 0.85; real lower case is 0.3-0.75)."""
    font = ImageFont.truetype(font_path, 60)
    ratios = []
    for letter in "acemnorsuvwxz":
        lower, upper = font.getbbox(letter), font.getbbox(letter.upper())
        ratios.append((lower[3] - lower[1]) / max(1, upper[3] - upper[1]))
    return statistics.median(ratios) > 0.85


def hand_wobble(image: Image.Image, rng: random.Random) -> Image.Image:
    """Elastic distortion and slant of a rendered line (paper light, ink dark)."""
    paper = np.asarray(image, dtype=np.float32) / 255.0
    ink = 1.0 - paper
    height, width = ink.shape
    spacing = max(4.0, height / 2.0)
    amplitude = 0.04 * height
    grid = np.random.default_rng(rng.getrandbits(32))
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    knots = (int(math.ceil(height / spacing)) + 2, int(math.ceil(width / spacing)) + 2)
    slant = rng.uniform(-0.25, 0.25)  # source x shift per row, px/px
    src_x = xs + slant * (ys - height / 2.0) + remap(grid.normal(0.0, amplitude, knots).astype(np.float32),
                                                     xs / spacing, ys / spacing)
    src_y = ys + remap(grid.normal(0.0, amplitude, knots).astype(np.float32), xs / spacing, ys / spacing)
    bent = remap(ink, src_x, src_y)
    background = float(np.median(paper))  # the paper tone, also outside the bent line
    out = background - bent * (background - float(paper.min()))
    return Image.fromarray(np.clip(out * 255.0, 0, 255).astype(np.uint8), "L")


def build(out: Path) -> dict[str, Path]:
    missing = sorted({pkg for path, pkg in TRAIN_FONTS + TEST_FONTS if not Path(path).exists()})
    if missing:
        raise SystemExit(f"missing fonts: apt-get install {' '.join(missing)}")
    if out.exists():
        shutil.rmtree(out)
    (out / "lines").mkdir(parents=True)
    rng = random.Random(SEED)
    manifests = {}
    for split, (source, fonts, limit) in SPLITS.items():
        texts = [json.loads(line)["text"] for line in (ROOT / "data" / "ocr" / source).read_text("utf-8").splitlines()]
        records = []
        for text in texts[:limit]:
            candidates = [path for path, _ in fonts if not missing_glyphs(text, path)]
            if not candidates:
                continue
            font = candidates[rng.randrange(len(candidates))]
            if capitals_only(font):
                text = text.upper()
            name = f"{split}-{len(records):05d}.png"
            hand_wobble(render(text, Path(font), rng), rng).save(out / "lines" / name, optimize=True)
            records.append({"path": f"lines/{name}", "text": text, "font": Path(font).stem})
        manifests[split] = out / f"{split}.jsonl"
        manifests[split].write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
        print(f"{split}: {len(records)} of {min(limit, len(texts))} lines in {len({r['font'] for r in records})} "
              "faces", file=sys.stderr)
    (out / "DONE").write_text("ok\n")
    return manifests


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench-out/handwriting")
    build(Path(parser.parse_args().out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
