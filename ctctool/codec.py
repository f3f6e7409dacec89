"""Alphabet <-> label ids. Blank is always id 0; labels are sorted; text is Unicode-normalized."""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .errors import CodecError

BLANK = 0
NORMALIZATIONS = ("NFC", "NFD", "NFKC", "NFKD", "none")


def normalize(text: str, form: str) -> str:
    return text if form == "none" else unicodedata.normalize(form, text)  # type: ignore[arg-type]


def _describe(char: str) -> str:
    name = unicodedata.name(char, None)
    return f"{char!r} (U+{ord(char):04X}{' ' + name if name else ''})"


@dataclass(frozen=True)
class Codec:
    labels: tuple[str, ...]  # label id i+1 <-> labels[i]; id 0 is the CTC blank
    normalization: str = "NFC"

    def __post_init__(self) -> None:
        if self.normalization not in NORMALIZATIONS:
            raise CodecError(f"unknown normalization {self.normalization!r}; use one of {', '.join(NORMALIZATIONS)}")
        if len(set(self.labels)) != len(self.labels):
            raise CodecError("codec labels must be unique")
        if any(len(label) != 1 for label in self.labels):
            raise CodecError("codec labels must be single characters")
        object.__setattr__(self, "_index", {c: i + 1 for i, c in enumerate(self.labels)})

    @classmethod
    def from_texts(cls, texts: Iterable[str], normalization: str = "NFC") -> Codec:
        chars: set[str] = set()
        for text in texts:
            chars.update(normalize(text, normalization))
        chars.discard("\n")
        chars.discard("\r")
        if not chars:
            raise CodecError("cannot build an alphabet: the transcripts hold no characters")
        return cls(tuple(sorted(chars)), normalization)

    @classmethod
    def from_alphabet_text(cls, alphabet: str, normalization: str = "NFC") -> Codec:
        """An alphabet file's content: every character in it except line breaks is a label."""
        return cls.from_texts([alphabet], normalization)

    @property
    def size(self) -> int:
        """Network output width: labels plus the blank."""
        return len(self.labels) + 1

    def unknown_characters(self, texts: Iterable[str]) -> Counter[str]:
        index = self._index  # type: ignore[attr-defined]
        unknown: Counter[str] = Counter()
        for text in texts:
            unknown.update(c for c in normalize(text, self.normalization) if c not in index)
        return unknown

    def encode(self, text: str, *, lenient: bool = False) -> list[int]:
        """Label ids for ``text``; unknown characters raise, or are skipped when ``lenient``."""
        index = self._index  # type: ignore[attr-defined]
        ids = []
        for char in normalize(text, self.normalization):
            label = index.get(char)
            if label is None:
                if lenient:
                    continue
                raise CodecError(f"character {_describe(char)} is not in the model's alphabet", {char: 1})
            ids.append(label)
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """Text for collapsed label ids (blanks ignored)."""
        labels = self.labels
        return "".join(labels[i - 1] for i in ids if i != BLANK)

    def to_dict(self) -> dict:
        return {"labels": list(self.labels), "normalization": self.normalization}

    @classmethod
    def from_dict(cls, data: dict) -> Codec:
        return cls(tuple(data["labels"]), data.get("normalization", "NFC"))


def describe_unknown(unknown: Counter[str], *, limit: int = 20) -> str:
    parts = [f"{_describe(c)} x{n}" for c, n in unknown.most_common(limit)]
    more = len(unknown) - limit
    return ", ".join(parts) + (f", and {more} more" if more > 0 else "")
