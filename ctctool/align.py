"""CTC forced alignment: the single most likely frame path that spells a given transcript.

Viterbi over the CTC trellis: the transcript is expanded to ``blank l1 blank l2 ... blank``;
a path may stay in a state, step to the next, or skip a blank between two *different*
labels (a repeated label needs a blank between its two copies).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .data import ctc_min_frames
from .errors import AlignmentError

NEG_INF = -np.inf


@dataclass(frozen=True)
class Alignment:
    labels: tuple[int, ...]
    spans: tuple[tuple[int, int], ...]  # per label: first and last frame it occupies (inclusive)
    confidences: tuple[float, ...]  # per label: geometric-mean probability over its frames
    score: float  # log-probability of the best path (natural log)
    path: tuple[int, ...]  # per frame: the emitted class (blank = 0)


def forced_align(log_probs: np.ndarray, labels: Sequence[int], *, where: str = "input",
                 blank: int = 0) -> Alignment:
    """Best path for ``labels`` through ``log_probs`` [T, V]; AlignmentError when none exists."""
    labels = tuple(int(label) for label in labels)
    frames = log_probs.shape[0]
    if not labels:
        path = tuple([blank] * frames)
        return Alignment((), (), (), float(log_probs[:, blank].sum(dtype=np.float64)), path)
    needed = ctc_min_frames(labels)
    if frames < needed:
        raise AlignmentError(where, f"text: transcript needs at least {needed} frames (labels plus a blank "
                                    f"between repeats) but the input gives {frames}")
    states = 2 * len(labels) + 1
    extended = np.full(states, blank, dtype=np.int64)
    extended[1::2] = labels
    # A skip from s-2 to s is allowed into a label state whose label differs from the one two back.
    can_skip = np.zeros(states, dtype=bool)
    can_skip[3::2] = np.array(labels[1:]) != np.array(labels[:-1])
    emissions = log_probs[:, extended].astype(np.float64)  # [T, S]
    score = np.full(states, NEG_INF)
    score[0] = emissions[0, 0]
    score[1] = emissions[0, 1]
    back = np.zeros((frames, states), dtype=np.int8)  # 0 stay, 1 step, 2 skip
    for t in range(1, frames):
        stay = score
        step = np.concatenate(([NEG_INF], score[:-1]))
        skip = np.where(can_skip, np.concatenate(([NEG_INF, NEG_INF], score[:-2])), NEG_INF)
        candidates = np.stack([stay, step, skip])
        choice = candidates.argmax(axis=0)
        score = candidates[choice, np.arange(states)] + emissions[t]
        back[t] = choice
    final = states - 1 if score[states - 1] >= score[states - 2] else states - 2
    best = float(score[final])
    if not np.isfinite(best):
        raise AlignmentError(where, "text: the model gives this transcript zero probability")
    state_path = np.empty(frames, dtype=np.int64)
    state = final
    for t in range(frames - 1, -1, -1):
        state_path[t] = state
        state -= int(back[t, state])
    spans = []
    confidences = []
    for k in range(len(labels)):
        occupied = np.flatnonzero(state_path == 2 * k + 1)
        spans.append((int(occupied[0]), int(occupied[-1])))
        confidences.append(float(np.exp(emissions[occupied, 2 * k + 1].mean())))
    return Alignment(labels, tuple(spans), tuple(confidences), best, tuple(int(extended[s]) for s in state_path))
