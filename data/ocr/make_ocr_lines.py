"""Render the bundled OCR line set: deterministic, from public-domain text and free fonts.

    python data/ocr/make_ocr_lines.py            # or: make data-ocr

Needs Pillow and the Debian packages fonts-dejavu-core, fonts-liberation, fonts-freefont-ttf
(used here only; ctctool never needs them). Rerunning with the same Pillow/FreeType gives
the same images. Text is split into blocks assigned to train / val / test, so validation
and test lines are text the model never saw in training.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).resolve().parent
FONT_DIR = Path("/usr/share/fonts/truetype")
FONTS = [  # (file under FONT_DIR, Debian package)
    ("dejavu/DejaVuSans.ttf", "fonts-dejavu-core"),
    ("dejavu/DejaVuSerif.ttf", "fonts-dejavu-core"),
    ("liberation/LiberationSans-Regular.ttf", "fonts-liberation"),
    ("liberation/LiberationSerif-Regular.ttf", "fonts-liberation"),
    ("liberation/LiberationSerif-Italic.ttf", "fonts-liberation"),
    ("liberation/LiberationMono-Regular.ttf", "fonts-liberation"),
    ("freefont/FreeSans.ttf", "fonts-freefont-ttf"),
    ("freefont/FreeSerif.ttf", "fonts-freefont-ttf"),
]
SPLITS = {"train": 2400, "val": 200, "test": 200}  # lines per split
SEED = 20261128
MONTHS = "January February March April May June July August September October November December".split()


def words_by_split(text: str, rng: random.Random) -> dict[str, list[list[str]]]:
    """Cut the text into 40-word blocks; about 84% go to train, 8% each to val and test."""
    words = text.split()
    blocks = [words[i:i + 40] for i in range(0, len(words), 40)]
    labels = (["val", "test"] + ["train"] * 11) * (len(blocks) // 13 + 1)
    labels = labels[: len(blocks)]
    rng.shuffle(labels)
    out: dict[str, list[list[str]]] = {"train": [], "val": [], "test": []}
    for block, label in zip(blocks, labels):
        out[label].append(block)
    return out


def prose_line(blocks: list[list[str]], rng: random.Random) -> str:
    block = rng.choice(blocks)
    start = rng.randrange(len(block))
    limit = rng.randint(14, 44)  # characters
    line = block[start]
    for word in block[start + 1:]:
        if len(line) + 1 + len(word) > limit:
            break
        line += " " + word
    return line


def synthetic_line(rng: random.Random) -> str:
    """Digits and symbols the prose lacks: dates, amounts, references, times."""
    kind = rng.randrange(5)
    if kind == 0:
        return f"{rng.randint(1, 28)} {rng.choice(MONTHS)} {rng.randint(1700, 2029)}"
    if kind == 1:
        return f"Total: ${rng.randint(1, 9999)}.{rng.randint(0, 99):02d} ({rng.randint(1, 99)}%)"
    if kind == 2:
        return f"No. {rng.randint(1, 99999)}/{rng.randint(10, 99)}, p. {rng.randint(1, 999)}"
    if kind == 3:
        return f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d} - Room {rng.randint(100, 999)}#{rng.randint(1, 9)}"
    return f"Tel. {rng.randint(100, 999)}-{rng.randint(1000, 9999)} & {rng.randint(10, 99)} Main St."


def render(text: str, font_path: Path, rng: random.Random) -> Image.Image:
    size = rng.randint(20, 30)  # em size, px
    font = ImageFont.truetype(str(font_path), size)
    left, _, right, _ = font.getbbox(text)
    ascent, descent = font.getmetrics()
    pad_x, pad_y = rng.randint(2, 10), rng.randint(2, 6)
    width = right - left + 2 * pad_x
    height = ascent + descent + 2 * pad_y
    paper = rng.randint(215, 255)
    ink = rng.randint(0, 70)
    image = Image.new("L", (width, height), paper)
    ImageDraw.Draw(image).text((pad_x - left, pad_y), text, font=font, fill=ink)
    return image


def main() -> int:
    missing = [(f, pkg) for f, pkg in FONTS if not (FONT_DIR / f).exists()]
    if missing:
        packages = " ".join(sorted({pkg for _, pkg in missing}))
        print(f"missing fonts: {', '.join(f for f, _ in missing)}; apt-get install {packages}", file=sys.stderr)
        return 1
    rng = random.Random(SEED)
    raw = (HERE / "source" / "public-domain-text.txt").read_text(encoding="utf-8")
    text = " ".join(line for line in raw.splitlines() if line.strip() and not line.startswith("#"))
    text = re.sub(r"\s+", " ", text)
    blocks = words_by_split(text, rng)
    out_dir = HERE / "lines"
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir()
    for split, count in SPLITS.items():
        records = []
        for n in range(count):
            line = synthetic_line(rng) if rng.random() < 0.2 else prose_line(blocks[split], rng)
            font_file, _ = FONTS[rng.randrange(len(FONTS))]
            image = render(line, FONT_DIR / font_file, rng)
            name = f"{split}-{n:05d}.png"
            image.save(out_dir / name, optimize=True)
            records.append({"path": f"lines/{name}", "text": line, "font": Path(font_file).stem})
        with open(HERE / f"{split}.jsonl", "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        print(f"{split}: {count} lines", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
