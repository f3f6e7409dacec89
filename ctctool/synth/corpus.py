"""The text that synthesis draws: plain-text files or manifests' transcripts, as line-length pieces.

Two ways to read plain text: one sample per line (the default; lines longer than
``MAX_LINE_CHARS`` are cut at word boundaries, since nobody scans a 2,000-character line),
or ``cut=(MIN, MAX)``: the words of the whole file re-flowed into pieces of MIN-MAX characters,
each length drawn from the seed. Manifests (``.jsonl``, ``.jsonl.gz``) give their transcripts,
one sample each. Whitespace runs become one space (NFC-normalized); empty lines are counted
and skipped.
"""

from __future__ import annotations

import itertools
import random
import re
import unicodedata
from dataclasses import dataclass

from ..errors import OptionError

MAX_LINE_CHARS = 150  # characters: longer lines are cut into pieces at word boundaries
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Corpus:
    texts: tuple[str, ...]  # the samples, in reading order
    empty: int  # lines (or transcripts) skipped because nothing was left after normalizing
    long_cut: int  # lines longer than MAX_LINE_CHARS, cut into pieces


def normalize(text: str) -> str:
    return _SPACES.sub(" ", unicodedata.normalize("NFC", text)).strip()


def parse_cut(value: str) -> tuple[int, int]:
    """``"20-60"`` -> (20, 60): the range of piece lengths in characters."""
    match = re.fullmatch(r"\s*(\d+)\s*[-:]\s*(\d+)\s*", value)
    if not match:
        raise OptionError(f"--cut: expected MIN-MAX characters such as 20-60, got {value!r}")
    low, high = int(match[1]), int(match[2])
    if not 1 <= low <= high <= MAX_LINE_CHARS:
        raise OptionError(f"--cut: need 1 <= MIN <= MAX <= {MAX_LINE_CHARS}, got {value!r}")
    return low, high


def pieces(words: list[str], lengths) -> list[str]:
    """Pack ``words`` into pieces whose length targets come from the iterator ``lengths``;
    a piece ends before the word that would take it past its target (one word at least)."""
    out: list[str] = []
    current = ""
    target = next(lengths)
    for word in words:
        if current and len(current) + 1 + len(word) > target:
            out.append(current)
            current, target = "", next(lengths)
        current = f"{current} {word}" if current else word
    if current:
        out.append(current)
    return [piece for piece in out if len(piece) <= MAX_LINE_CHARS]  # a single giant "word" is dropped


def _random_lengths(rng: random.Random, low: int, high: int):
    while True:
        yield rng.randint(low, high)


def read_corpus(paths: list[str], *, cut: tuple[int, int] | None = None, seed: int = 0) -> Corpus:
    from ..fileio import read_text
    from ..manifest import read_manifest

    texts: list[str] = []
    empty = long_cut = 0
    rng = random.Random(f"corpus:{seed}")
    for path in paths:
        if path.endswith((".jsonl", ".jsonl.gz")):
            lines = [item.text or "" for item in read_manifest(path)]
            file_cut = None
        else:
            lines = read_text(path, "corpus").splitlines()
            file_cut = cut
        if file_cut:
            low, high = file_cut
            words = normalize(" ".join(lines)).split()
            if not words:
                empty += 1
            texts += pieces(words, _random_lengths(rng, low, high))
            continue
        for line in lines:
            line = normalize(line)
            if not line:
                empty += 1
            elif len(line) > MAX_LINE_CHARS:
                long_cut += 1
                texts += pieces(line.split(), itertools.repeat(MAX_LINE_CHARS))
            else:
                texts.append(line)
    return Corpus(tuple(texts), empty, long_cut)
