"""A corpus of hostile inputs: every kind of bad file review found, written into a folder.

    python tests/hostile.py OUT_DIR     # writes OUT_DIR/<kind>.{png,wav,...} and prints the kinds

Each ``Hostile`` names its file, the modality, and the words its per-item error must contain.
The files are small (the largest is a few kB): the danger is in what their headers claim.
``test_hostile.py`` runs every kind through decode, eval, align, train and manifest validate.
"""

from __future__ import annotations

import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Hostile:
    kind: str  # a short name, also the file's stem
    modality: str  # "image" or "audio"
    record: dict  # the manifest line (its "path" relative to the corpus folder)
    error: str  # a phrase the one-line error must contain


def _png_chunk(name: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + name + data + struct.pack(">I", zlib.crc32(name + data) & 0xFFFFFFFF)


def png_header_only(width: int, height: int, *, bit_depth: int = 8, colour: int = 0, rows: int = 1) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` but whose data is a few rows of zeros:
    a few hundred bytes that ask a naive decoder for width x height pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    row = b"\x00" + b"\x00" * (width * max(1, bit_depth // 8))
    data = zlib.compress(row * rows, 9)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b"")


def _wav(path: Path, samples: np.ndarray, rate: int = 16000, subtype: str = "FLOAT") -> None:
    import soundfile

    soundfile.write(path, samples, rate, subtype=subtype)


def write_corpus(folder: Path) -> list[Hostile]:
    """Write every hostile file into ``folder``; returns the cases."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    cases: list[Hostile] = []

    def image(kind: str, data: bytes, error: str, suffix: str = ".png", **fields) -> None:
        (folder / f"{kind}{suffix}").write_bytes(data)
        cases.append(Hostile(kind, "image", {"path": f"{kind}{suffix}", "text": "x", **fields}, error))

    image("missing-image", b"", "no such file")
    (folder / "missing-image.png").unlink()
    image("zero-byte-png", b"", "not an image")
    image("not-an-image", b"hello, I am text\n", "not an image")
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 200), dtype=np.uint8), "L")
    noise.save(folder / "noise.png")
    image("truncated-png", (folder / "noise.png").read_bytes()[:3000], "cannot decode")
    image("decompression-bomb", png_header_only(20000, 20000), "too large")
    image("huge-width", png_header_only(200000, 8), "--max-width")
    image("big-page", png_header_only(12000, 8000), "pixel limit")
    Image.new("L", (40, 20), 255).save(folder / "small.png")
    cases.append(Hostile("bbox-outside", "image", {"path": "small.png", "text": "x", "bbox": [0, 0, 90, 20]},
                         "bbox"))
    (folder / "folder-as-image.png").mkdir(exist_ok=True)
    cases.append(Hostile("folder-as-image", "image", {"path": "folder-as-image.png", "text": "x"}, "folder"))

    def audio(kind: str, error: str, samples=None, subtype: str = "FLOAT", raw: bytes | None = None, **fields):
        path = folder / f"{kind}.wav"
        if raw is not None:
            path.write_bytes(raw)
        else:
            _wav(path, samples, subtype=subtype)
        cases.append(Hostile(kind, "audio", {"path": path.name, "text": "one", **fields}, error))

    rng = np.random.default_rng(0)
    speechy = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    audio("huge-samples", "non-finite features", (speechy * 1e20).astype(np.float32))  # power overflows float32
    audio("nan-samples", "NaN", np.full(16000, np.nan, dtype=np.float32))
    audio("zero-length", "no samples", np.zeros(0, dtype=np.float32), subtype="PCM_16")
    _wav(folder / "whole.wav", speechy, subtype="PCM_16")
    audio("truncated-wav", "truncated", raw=(folder / "whole.wav").read_bytes()[:20000])
    audio("not-audio", "cannot read audio", raw=b"RIFF this is not really a wave file at all")
    giga = bytearray((folder / "whole.wav").read_bytes())
    giga[24:28] = struct.pack("<I", 1_000_000_000)  # the header's sample rate: 1 GHz
    giga[28:32] = struct.pack("<I", 2_000_000_000)  # and its byte rate
    audio("gigahertz-rate", "claims 1000000000 Hz", raw=bytes(giga))
    cases.append(Hostile("offset-past-end", "audio", {"path": "whole.wav", "text": "one", "offset": 5.0}, "offset"))
    cases.append(Hostile("duration-past-end", "audio", {"path": "whole.wav", "text": "one", "duration": 9.0},
                         "duration"))
    cases.append(Hostile("missing-channel", "audio", {"path": "whole.wav", "text": "one", "channel": 3},
                         "channel"))
    _wav(folder / "long.flac", np.zeros(16000 * 130, dtype=np.float32), subtype="PCM_16")  # 130 s of silence
    cases.append(Hostile("too-long", "audio", {"path": "long.flac", "text": "one"}, "--max-seconds"))
    return cases


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "hostile-corpus")
    for case in write_corpus(out):
        print(f"{case.modality}\t{case.kind}\t{case.record['path']}\t{case.error}")
