"""Render the OCR test transcripts in font families the bundled training set never uses.

    python data/ocr/make_unseen_fonts.py        # or: make data-ocr-unseen

The bundled lines (make_ocr_lines.py) use DejaVu, Liberation and FreeFont only. This set takes
the 200 test transcripts (text training never saw) and draws each in one of 19 other families
from Debian font packages that issue 9 lists for training data, with the same layout as the
bundled set, so the only thing that changes is the typeface: ``test-unseen-fonts.jsonl`` is the
"other fonts" figure next to the validation one. Clones of the training faces (Arimo, Tinos,
Cousine, and the URW Nimbus faces metric-compatible with Liberation) are left out on purpose.

Needs: apt-get install fonts-urw-base35 fonts-ebgaramond fonts-linuxlibertine fonts-sil-gentiumplus
fonts-sil-charis fonts-courier-prime fonts-roboto fonts-oldstandard fonts-quattrocento
fonts-cantarell fonts-sil-andika fonts-averia-serif-gwf fonts-adf-accanthis fonts-adf-gillius
fonts-yanone-kaffeesatz
"""

from __future__ import annotations

import json
import random
import shutil
import sys
from pathlib import Path

from PIL import ImageFont

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_ocr_lines import render  # noqa: E402

SEED = 20261201
FONTS = [  # (file, Debian package)
    ("/usr/share/fonts/opentype/urw-base35/C059-Roman.otf", "fonts-urw-base35"),
    ("/usr/share/fonts/opentype/urw-base35/C059-Italic.otf", "fonts-urw-base35"),
    ("/usr/share/fonts/opentype/urw-base35/P052-Roman.otf", "fonts-urw-base35"),
    ("/usr/share/fonts/opentype/urw-base35/URWBookman-Light.otf", "fonts-urw-base35"),
    ("/usr/share/fonts/opentype/urw-base35/URWGothic-Book.otf", "fonts-urw-base35"),
    ("/usr/share/fonts/opentype/ebgaramond/EBGaramond08-Regular.otf", "fonts-ebgaramond"),
    ("/usr/share/fonts/opentype/linux-libertine/LinLibertine_R.otf", "fonts-linuxlibertine"),
    ("/usr/share/fonts/opentype/linux-libertine/LinBiolinum_R.otf", "fonts-linuxlibertine"),
    ("/usr/share/fonts/truetype/gentiumplus/GentiumPlus-Italic.ttf", "fonts-sil-gentiumplus"),
    ("/usr/share/fonts/truetype/charis/CharisSIL-Regular.ttf", "fonts-sil-charis"),
    ("/usr/share/fonts/opentype/courier-prime/Courier Prime.otf", "fonts-courier-prime"),
    ("/usr/share/fonts/truetype/roboto/unhinted/RobotoTTF/Roboto-Regular.ttf", "fonts-roboto"),
    ("/usr/share/fonts/truetype/fonts-oldstandard/OldStandard-Regular.ttf", "fonts-oldstandard"),
    ("/usr/share/fonts/opentype/quattrocento/Quattrocento-Regular.otf", "fonts-quattrocento"),
    ("/usr/share/fonts/opentype/cantarell/Cantarell-Regular.otf", "fonts-cantarell"),
    ("/usr/share/fonts/truetype/andika/Andika-Regular.ttf", "fonts-sil-andika"),
    ("/usr/share/fonts/truetype/averia-gwf/AveriaSerifGWF-Regular.ttf", "fonts-averia-serif-gwf"),
    ("/usr/share/fonts/truetype/adf/AccanthisADFStd-Regular.otf", "fonts-adf-accanthis"),
    ("/usr/share/fonts/truetype/adf/GilliusADF-Regular.otf", "fonts-adf-gillius"),
    ("/usr/share/fonts/opentype/yanone-kaffeesatz/YanoneKaffeesatz-Regular.otf", "fonts-yanone-kaffeesatz"),
]


def missing_glyphs(text: str, font_path: str) -> set[str]:
    """Characters the font draws as its 'missing glyph' box (tofu): never written as a label."""
    font = ImageFont.truetype(font_path, 24)

    def bitmap(ch: str) -> bytes:
        mask = font.getmask(ch)
        return bytes(mask.size) + bytes(mask)

    tofu = bitmap("\ue000")
    return {ch for ch in set(text) if not ch.isspace() and bitmap(ch) == tofu}


def main() -> int:
    missing = sorted({pkg for path, pkg in FONTS if not Path(path).exists()})
    if missing:
        print(f"missing fonts: apt-get install {' '.join(missing)}", file=sys.stderr)
        return 1
    rng = random.Random(SEED)
    texts = [json.loads(line)["text"] for line in (HERE / "test.jsonl").read_text(encoding="utf-8").splitlines()]
    out_dir = HERE / "unseen-fonts"
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir()
    records = []
    for n, text in enumerate(texts):
        candidates = [entry for entry in FONTS if not missing_glyphs(text, entry[0])]
        font_file, _ = candidates[rng.randrange(len(candidates))]
        name = f"unseen-{n:05d}.png"
        render(text, Path(font_file), rng).save(out_dir / name, optimize=True)
        records.append({"path": f"unseen-fonts/{name}", "text": text, "font": Path(font_file).stem})
    with open(HERE / "test-unseen-fonts.jsonl", "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"test-unseen-fonts: {len(records)} lines in {len({r['font'] for r in records})} faces", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
