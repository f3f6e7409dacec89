"""CTC arithmetic shared by data, model, inference and alignment: one copy of each piece.

- ``output_frames``: CTC frames a network with these time pools gives for an input length.
- ``min_frames``: fewest CTC frames that can emit a label sequence (a blank between repeats).
- ``viterbi``: the single most likely frame path that spells a label sequence (the CTC
  trellis ``blank l1 blank l2 ... blank``; stay, step, or skip a blank between two different
  labels). The compiled search's Viterbi runs it; ``beam_py.banded_viterbi`` is its twin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import AlignmentError


def output_frames(input_frames: int, pool_time: Sequence[int]) -> int:
    """Floor division by each time pool in turn, as the conv stack's max-pools do."""
    for factor in pool_time:
        input_frames //= factor
    return input_frames


def min_frames(labels: Sequence[int]) -> int:
    """Fewest CTC frames that can emit ``labels``: one per label plus a blank between repeats."""
    repeats = sum(1 for a, b in zip(labels, labels[1:]) if a == b)
    return len(labels) + repeats


@dataclass(frozen=True)
class Alignment:
    labels: tuple[int, ...]
    spans: tuple[tuple[int, int], ...]  # per label: first and last frame it occupies (inclusive)
    confidences: tuple[float, ...]  # per label: geometric-mean probability over its frames
    score: float  # log-probability of the best path (natural log)
    frames: int  # CTC frames aligned

    @property
    def path(self) -> tuple[int, ...]:
        """Per frame the emitted class (blank = 0): in the best path each label fills its span."""
        path = [0] * self.frames
        for label, (first, last) in zip(self.labels, self.spans):
            path[first:last + 1] = [label] * (last - first + 1)
        return tuple(path)


def viterbi(log_probs: np.ndarray, labels: Sequence[int], *, where: str = "input", band: float = math.inf,
            backend: str | None = None) -> Alignment:
    """Best path for ``labels`` through ``log_probs`` (float32 [T, V], natural log, blank 0).

    ``band`` (nats) drops trellis states that far below a frame's best: ``inf`` is exact.
    AlignmentError when the transcript needs more frames than there are, or has probability 0.
    """
    from .decoding.beam import BACKEND, compiled_module
    from .decoding.beam_py import banded_viterbi
    from .decoding.validate import check_log_probs

    log_probs = check_log_probs(log_probs)
    labels = tuple(int(label) for label in labels)
    frames = log_probs.shape[0]
    if not labels:
        return Alignment((), (), (), float(log_probs[:, 0].sum(dtype=np.float64)), frames)
    if any(not 0 < label < log_probs.shape[1] for label in labels):
        raise AlignmentError(where, f"text: label ids must lie in 1..{log_probs.shape[1] - 1}")
    needed = min_frames(labels)
    if frames < needed:
        raise AlignmentError(where, f"text: transcript needs at least {needed} frames (labels plus a blank "
                                    f"between repeats) but the input gives {frames}")
    compiled = compiled_module() if (backend or BACKEND) == "cython" else None
    found = compiled.viterbi_align(log_probs, labels, band) if compiled else banded_viterbi(log_probs, labels, band)
    if found is None:  # the band lost every path to the end: search the whole trellis
        found = compiled.viterbi_align(log_probs, labels, math.inf) if compiled else \
            banded_viterbi(log_probs, labels, math.inf)
    if found is None or not math.isfinite(found[2]):
        raise AlignmentError(where, "text: the model gives this transcript zero probability")
    spans, confidences, score = found
    return Alignment(labels, tuple(spans), tuple(float(c) for c in confidences), float(score), frames)
