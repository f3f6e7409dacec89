"""Per-item results of decode and align, as plain dataclasses the writers format."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .codec import Codec
from .decoding import Hypothesis
from .features import FrameAxis


@dataclass(frozen=True)
class Span:
    token: str  # a character or a word
    start: float  # in ``unit`` of the source: page pixel column, or seconds
    end: float
    confidence: float  # probability in [0, 1]


@dataclass(frozen=True)
class ItemResult:
    id: str
    path: str
    text: str = ""
    score: float = 0.0  # natural-log score of the hypothesis or alignment path
    unit: str = "px"
    chars: tuple[Span, ...] = ()
    words: tuple[Span, ...] = ()
    error: str | None = None  # set when the item failed (under --keep-going)
    nbest: tuple[tuple[str, float], ...] = ()  # (text, score) alternatives, best first
    source_extent: tuple[float, float] = (0.0, 0.0)  # (start, end) of the source in ``unit``
    lm_score: float = 0.0  # what the scorers (LM, lexicon, hotwords) added to the best hypothesis
    aligned: str | None = None  # align only: "transcript" or "decoded" (what was aligned)
    line_bbox: tuple[int, int, int, int] | None = None  # images: the line's box in page pixels
    page_size: tuple[int, int] | None = None  # images: (width, height) of the whole page image

    @property
    def confidence(self) -> float:
        """Mean per-character confidence (1.0 for an empty result)."""
        if not self.chars:
            return 1.0
        return float(np.mean([span.confidence for span in self.chars]))


def char_spans(codec: Codec, labels, spans, confidences, axis: FrameAxis) -> tuple[Span, ...]:
    """Label frame spans -> source-unit spans: a label covers its frames [first, last + 1)."""
    return tuple(
        Span(codec.labels[label - 1], axis.position(first), axis.position(last + 1), float(conf))
        for label, (first, last), conf in zip(labels, spans, confidences)
    )


def word_spans(chars: tuple[Span, ...]) -> tuple[Span, ...]:
    """Group characters into whitespace-separated words; a word's confidence is its weakest char's."""
    words: list[Span] = []
    current: list[Span] = []
    for span in (*chars, None):
        if span is None or span.token.isspace():
            if current:
                words.append(Span("".join(s.token for s in current), current[0].start, current[-1].end,
                                  min(s.confidence for s in current)))
                current = []
        else:
            current.append(span)
    return tuple(words)


def hypothesis_result(item_id: str, path: str, codec: Codec, hypothesis: Hypothesis, axis: FrameAxis,
                      nbest: tuple[tuple[str, float], ...] = ()) -> ItemResult:
    chars = char_spans(codec, hypothesis.labels, hypothesis.spans, hypothesis.confidences, axis)
    return ItemResult(id=item_id, path=path, text=codec.decode(hypothesis.labels), score=hypothesis.score,
                      unit=axis.unit, chars=chars, words=word_spans(chars), nbest=nbest,
                      source_extent=(axis.start, axis.extent), lm_score=hypothesis.lm_score)
