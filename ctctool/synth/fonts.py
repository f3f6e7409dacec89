"""Font faces for synthesis: finding them, loading them safely, and knowing what they can draw.

A face is a file plus a face index (TrueType collections hold several). Faces are sorted by
path and index, so a seed picks the same face whatever order the file system lists them in.
A file FreeType cannot read is reported and skipped, never fatal unless no face is left.

Coverage is checked by drawing: a character is missing from a face (it would be drawn as
"tofu", the face's .notdef box, or as nothing) when its bitmap equals the one the face draws
for a code point no font covers, or when a character that should leave ink leaves none.
Pillow does not expose the character map, and drawing is what matters anyway: a line is
only written in a face that draws every one of its characters, so no image has a wrong label.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputFileError
from ..fileio import read_text

FONT_SUFFIXES = (".ttf", ".otf", ".ttc", ".otc")
MAX_FACES_PER_FILE = 64  # a collection claiming more is treated as broken
MAX_FONT_BYTES = 64 << 20  # 64 MiB: larger "fonts" are refused before FreeType parses them
_PROBE_SIZE = 24  # px: size at which coverage is tested
_NO_GLYPH = "\U0010fffd"  # plane-16 private use: no face we accept draws it, so it shows .notdef


@dataclass(frozen=True, order=True)
class FontFace:
    path: str  # absolute path of the font file
    index: int = 0  # face within a collection (.ttc)

    @property
    def name(self) -> str:
        """Short name for manifests and reports: the file stem, with the index for collections."""
        stem = Path(self.path).stem
        return stem if self.index == 0 else f"{stem}#{self.index}"


@dataclass(frozen=True)
class FontProblem:
    path: str
    reason: str


def font_files(spec: str) -> list[str]:
    """Font files named by ``spec``: a font file, a folder (searched recursively), a text file
    listing such paths one per line (``#`` comments), or several of these separated by commas."""
    files: list[str] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        path = Path(part).expanduser()
        if path.is_dir():
            files += sorted(str(p.resolve()) for p in path.rglob("*") if p.suffix.lower() in FONT_SUFFIXES
                            and p.is_file())
        elif path.suffix.lower() in FONT_SUFFIXES:
            if not path.is_file():
                raise InputFileError(f"{part}: no such font file")
            files.append(str(path.resolve()))
        elif path.is_file():
            base = path.parent
            for number, line in enumerate(read_text(part, "font list").splitlines(), 1):
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                listed = Path(line).expanduser()
                listed = listed if listed.is_absolute() else base / listed
                if not listed.exists():
                    raise InputFileError(f"{part}:{number}: {line}: no such font file or folder")
                files += font_files(str(listed))
        else:
            raise InputFileError(f"{part}: no such font file, folder or list")
    return sorted(dict.fromkeys(files))


def open_faces(files: list[str]) -> tuple[list[FontFace], list[FontProblem]]:
    """Every face FreeType can load from ``files``, and the files it cannot (with the reason)."""
    from PIL import ImageFont

    faces: list[FontFace] = []
    problems: list[FontProblem] = []
    for path in files:
        try:
            size = os.path.getsize(path)
        except OSError as exc:
            problems.append(FontProblem(path, (exc.strerror or str(exc)).lower()))
            continue
        if size > MAX_FONT_BYTES:
            problems.append(FontProblem(path, f"{size >> 20} MiB is larger than any font ({MAX_FONT_BYTES >> 20} MiB)"))
            continue
        found = 0
        for index in range(MAX_FACES_PER_FILE):
            try:
                font = ImageFont.truetype(path, _PROBE_SIZE, index=index)
                ascent, descent = font.getmetrics()
            except (OSError, ValueError) as exc:
                if index == 0:
                    problems.append(FontProblem(path, f"not a font FreeType can read ({exc})"))
                break
            if not 0 < ascent + descent <= 8 * _PROBE_SIZE:  # absurd metrics would ask for huge images
                problems.append(FontProblem(path, f"face {index}: line height {ascent + descent} px at "
                                            f"{_PROBE_SIZE} px size is out of range"))
                continue
            faces.append(FontFace(path, index))
            found += 1
            if not path.lower().endswith((".ttc", ".otc")):
                break
    return sorted(faces), problems


class Coverage:
    """Which characters a face draws, learned by drawing them once each (cached)."""

    def __init__(self, face: FontFace):
        from PIL import ImageFont

        self.font = ImageFont.truetype(face.path, _PROBE_SIZE, index=face.index)
        self._tofu = self._glyph(_NO_GLYPH)
        self._known: dict[str, bool] = {}

    def _glyph(self, char: str) -> tuple[tuple[int, int], bytes]:
        mask = self.font.getmask(char)
        return mask.size, bytes(mask)

    def draws(self, char: str) -> bool:
        known = self._known.get(char)
        if known is None:
            if char.isspace():
                known = char == " "  # other spaces (tab, no-break...) are normalized away before
            elif unicodedata.category(char)[0] == "C":  # control, format, unassigned, surrogate
                known = False
            else:
                glyph = self._glyph(char)
                known = any(glyph[1]) and glyph != self._tofu
            self._known[char] = known
        return known

    def missing(self, text: str) -> set[str]:
        return {char for char in set(text) if not self.draws(char)}
