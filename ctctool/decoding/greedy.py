"""Best-path decoding: the most likely label per frame, repeats merged, blanks removed."""

from __future__ import annotations

import numpy as np

from .hypothesis import Hypothesis
from .validate import check_log_probs


def greedy_decode(log_probs: np.ndarray, blank: int = 0) -> Hypothesis:
    """``log_probs`` float32 [T, V] natural log. Score is the best path's log-probability;
    a label's confidence is its highest frame probability within its span."""
    log_probs = check_log_probs(log_probs)
    if log_probs.shape[0] == 0:
        return Hypothesis((), 0.0, (), ())
    best = log_probs.argmax(axis=1)
    best_scores = log_probs[np.arange(len(best)), best]
    labels, spans, confidences = [], [], []
    previous = blank
    for frame, label in enumerate(best.tolist()):
        if label != blank:
            if label != previous:
                labels.append(label)
                spans.append([frame, frame])
                confidences.append(float(best_scores[frame]))
            else:
                spans[-1][1] = frame
                confidences[-1] = max(confidences[-1], float(best_scores[frame]))
        previous = label
    return Hypothesis(
        labels=tuple(labels),
        score=float(best_scores.sum(dtype=np.float64)),
        spans=tuple((a, b) for a, b in spans),
        confidences=tuple(float(np.exp(c)) for c in confidences),
    )
