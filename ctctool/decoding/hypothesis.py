from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hypothesis:
    labels: tuple[int, ...]  # label ids, blanks and repeats collapsed
    score: float  # natural-log acoustic score: best path (greedy) or prefix probability (beam)
    spans: tuple[tuple[int, int], ...]  # per label: first and last CTC frame (inclusive)
    confidences: tuple[float, ...] = ()  # per label, probability in [0, 1]
    lm_score: float = 0.0  # what scorers (LM, lexicon, hotwords) added; ranking uses score + lm_score

    @property
    def total_score(self) -> float:
        return self.score + self.lm_score
