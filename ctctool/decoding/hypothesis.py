from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hypothesis:
    labels: tuple[int, ...]  # label ids, blanks and repeats collapsed
    score: float  # natural-log score (decoder-specific: path, prefix, or with LM)
    spans: tuple[tuple[int, int], ...]  # per label: first and last CTC frame (inclusive)
    confidences: tuple[float, ...] = ()  # per label, probability in [0, 1]
