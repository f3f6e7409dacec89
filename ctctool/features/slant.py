"""Slant correction of a text line (``--deslant``): estimate the line's slant and shear it upright.

Handwriting and italic faces lean by different amounts per writer; a model that only ever sees
upright strokes need not learn every lean. The estimate follows Vinciarelli and Luettin (2001):
of the shears tried, keep the one under which the most ink stands in unbroken vertical runs, each
column counting the square of its run's length (and nothing when its ink is broken). A plain
projection profile (sum of squared column sums) over-corrected script faces here: joining
strokes and long diagonals pull it to steeper shears. It is deterministic and costs about a
millisecond for a 32 x 400 line.

Shears are in pixels of horizontal shift per row (scale-free: the same number at any line
height); 1.0 is 45 degrees. Rows count downwards, so a line whose letters lean right (italic)
has a negative slant.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..augmentation.image import remap

# Candidate slants, -1.0 .. 1.0 px per row (45 degrees either way) in steps of 0.05 (about 3
# degrees), ordered by size so that a tie keeps the smaller correction.
_CANDIDATES = np.array(sorted(np.round(np.linspace(-1.0, 1.0, 41), 4), key=abs), dtype=np.float64)
# Pixels at or below this ink level (0..1) do not vote: paper noise would flatten every profile.
_INK_THRESHOLD = 0.3
# Candidates are scored a few at a time so that a page-wide line (12,000 columns, maybe half of
# its pixels ink) needs a few MB of work arrays, not hundreds.
_MAX_WORK_ELEMENTS = 1 << 20


def estimate_slant(values: np.ndarray) -> float:
    """The line's slant in px per row; ``values`` [height, width], ink high (0..1). 0.0 when the
    line holds no ink."""
    height = values.shape[0]
    rows, columns = np.nonzero(values > _INK_THRESHOLD)
    if rows.size == 0:
        return 0.0
    centred = rows - (height - 1) / 2.0
    chunk = max(1, _MAX_WORK_ELEMENTS // rows.size)
    scores = np.concatenate([_unbroken_scores(rows, columns, centred, _CANDIDATES[i:i + chunk])
                             for i in range(0, _CANDIDATES.size, chunk)])
    return float(_CANDIDATES[int(np.argmax(scores))])


def _unbroken_scores(rows: np.ndarray, columns: np.ndarray, centred: np.ndarray,
                     candidates: np.ndarray) -> np.ndarray:
    """Per candidate: the sum over columns of (unbroken run length)^2 once the ink is sheared by it."""
    # Where each ink pixel lands under each candidate, as one array over all of them:
    # bin = candidate * span + column. Pixels of one row keep their distinct columns under a
    # shear, so a bin's count equals its row range exactly when its ink is unbroken.
    # Rounded half up, not half to even: np.rint sends x.5 and x+1.5 of one row (two adjacent
    # columns) to the same even bin, and that one doubled pixel marked a whole stroke as broken.
    landed = np.floor(columns[None, :] - candidates[:, None] * centred[None, :] + 0.5).astype(np.int64)
    low = int(landed.min())
    span = int(landed.max()) - low + 1
    bins = (landed - low + np.arange(candidates.size, dtype=np.int64)[:, None] * span).ravel()
    all_rows = np.tile(rows, candidates.size).astype(np.float64)
    size = candidates.size * span
    # A bin's rows are distinct (above), and c distinct rows are one unbroken run exactly when
    # their spread is the least c distinct integers can have: c * sum(r^2) - sum(r)^2, the sum of
    # squared differences over all pairs, equals c^2 (c^2 - 1) / 12, as for c consecutive rows.
    # Weighted counts find the two sums in one pass each (sums of at most a few million: exact
    # in float64), where a per-bin minimum and maximum (np.minimum.at) took 3x longer.
    counts = np.bincount(bins, minlength=size).astype(np.int64)
    sums = np.bincount(bins, weights=all_rows, minlength=size).astype(np.int64)
    squares = np.bincount(bins, weights=all_rows * all_rows, minlength=size).astype(np.int64)
    unbroken = (counts > 0) & (counts * squares - sums * sums == counts * counts * (counts * counts - 1) // 12)
    return np.where(unbroken, counts.astype(np.float64) ** 2, 0.0).reshape(candidates.size, span).sum(axis=1)


def shear_upright(values: np.ndarray, slant: float) -> tuple[np.ndarray, int]:
    """(``values`` sheared by ``-slant`` about the middle row, columns added on the left).

    The line is widened on both sides so no ink is cut; output column ``j`` at the middle row
    is source column ``j - pad``."""
    height, width = values.shape
    if slant == 0.0:
        return values, 0
    pad = int(np.ceil(abs(slant) * (height - 1) / 2.0))
    ys, xs = np.mgrid[0:height, 0:width + 2 * pad].astype(np.float32)
    src_x = xs - pad + np.float32(slant) * (ys - (height - 1) / 2.0)
    return remap(values, src_x, ys), pad


def deslant(values: np.ndarray) -> tuple[np.ndarray, int]:
    """(the line sheared upright, columns added on the left); see ``shear_upright``."""
    return shear_upright(values, estimate_slant(values))


# The automatic choice (``train`` without --deslant or --no-deslant): slant correction is turned on
# when at least LEANING_SHARE of the sampled training lines lean by LEANING_SLANT px per row or
# more (0.25: 14 degrees). Measured 2026-12-06 on centre-normalized bench lines: the bundled printed
# training lines (an italic face in an eighth of them), 1 of 300 (0.3%); the bench's handwriting and
# script faces 49 of 300 (16%), where --deslant lowered unseen hands in every seed; the unseen hands
# 44%, the unseen printed fonts 8%.
LEANING_SLANT = 0.25
LEANING_SHARE = 0.10
SURVEY_LINES = 300  # about 1-3 s of estimates at 32-64 px high


@dataclass(frozen=True)
class SlantSurvey:
    """How many of the sampled lines lean, and whether that asks for slant correction."""

    sampled: int  # lines estimated (those that could not be read are not counted)
    leaning: int  # of them, lines whose |slant| is LEANING_SLANT px per row or more

    @property
    def share(self) -> float:
        return self.leaning / self.sampled if self.sampled else 0.0

    @property
    def deslant(self) -> bool:
        return self.sampled > 0 and self.share >= LEANING_SHARE

    def describe(self) -> str:
        return (f"{self.leaning} of {self.sampled} sampled training lines ({100 * self.share:.0f}%) lean "
                f"{math.degrees(math.atan(LEANING_SLANT)):.0f} degrees or more")

    def announce(self) -> str:
        """The line ``train`` prints as training starts."""
        return (f"slant correction {'on' if self.deslant else 'off'}: {self.describe()} "
                "(--deslant or --no-deslant chooses)")


def survey_slant(lines: Iterable[np.ndarray]) -> SlantSurvey:
    """Estimate each line's slant (``values`` [height, width], ink high) and count the leaning ones."""
    sampled = leaning = 0
    for values in lines:
        sampled += 1
        leaning += abs(estimate_slant(values)) >= LEANING_SLANT - 1e-9
    return SlantSurvey(sampled, leaning)


def evenly_spaced(count: int, limit: int = SURVEY_LINES) -> list[int]:
    """Up to ``limit`` indices spread evenly over ``range(count)``: a manifest sorted by writer or
    font is sampled across all of them, and the same file always gives the same sample."""
    if count <= limit:
        return list(range(count))
    return [i * count // limit for i in range(limit)]
