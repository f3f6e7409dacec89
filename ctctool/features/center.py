"""Centre-line normalization of a text line (``--center-normalize``): straighten the line along
its centre and scale it so the ink's vertical spread, not the crop, sets the size.

Writers differ in where a line sits in its box, how it wanders, how tall its small letters are
against its ascenders, and how loosely it was cropped. Scaling the whole crop to a fixed height
keeps all of that; this keeps less of it. It is the centre normalizer of OCRopus (Breuel) that
Calamari also uses, written here from its description:

1. smooth the ink strongly (a Gaussian of half the line's height vertically and one height
   horizontally) and take, per column, the row where the smoothed ink is densest: the centre
   line, itself smoothed along the line (0.3 heights);
2. measure the spread: the mean distance of ink pixels from the centre line (``mad``);
3. cut a band of ``2 * (1 + 4 * mad) + 1`` rows that follows the centre line column by column,
   and scale that band to the model's height (so the line's width scales with it).

Which pixels count as ink in steps 1 and 2 is the model's ``center_ink`` setting. ``"fixed"``
(format-3 model files): values above 0.3 of full scale, which grey paper and speckle reach, so a
degraded scan's band came out 1.27x its clean twin's and the line was squashed (README, "Ink measured
against each line's own paper"). ``"relative"`` (new models): the line is first rescaled so its own paper
level (the median pixel) is 0 and its ink level (the 99th percentile) is 1, and the same 0.3 is
applied to that; the band is then cut from the unchanged values.

Columns are not moved sideways, so a column of the result maps linearly back to the source
line (``FrameAxis`` positions stay exact). It is deterministic and costs about a millisecond
for a 64 x 800 working image; ``"relative"``'s two percentiles come from the line's grey-level
counts when it is 8-bit (``levels``: 0.2-0.6 ms by sorting, a few hundredths from the counts).
"""

from __future__ import annotations

import numpy as np

from .levels import LevelCounts

# Pixels at or below this ink level (0..1) do not count in the spread: paper noise would widen it.
_INK_THRESHOLD = 0.3
# How ink is told from paper (ImageFeatureConfig.center_ink): above _INK_THRESHOLD of full scale,
# or of the way from the line's paper level to its ink level.
CENTER_INK_MODES = ("fixed", "relative")
# Percentiles of a line's pixels taken as its paper and ink levels: most of a line is paper, and
# the 99th percentile is solid stroke whenever over 1% of the line is ink (any line of text).
_PAPER_PERCENTILE, _INK_PERCENTILE = 50.0, 99.0
# A line whose ink level is within this of its paper level (0..1, about 13 grey levels) holds no
# ink to measure: stretching it would turn noise into a band.
_MIN_CONTRAST = 0.05
# Smoothing widths, in line heights (of the working image), and the band half-width in ``mad``s:
# OCRopus's defaults (range 4, smoothness 1.0, extra 0.3), which suit text lines of any script.
_SMOOTH_ROWS = 0.5
_SMOOTH_COLUMNS = 1.0
_SMOOTH_CENTRE = 0.3
_BAND_MADS = 4.0
# The band is kept between half and twice the working height: a line of one dash (mad near 0)
# is not blown up tenfold, and a line of noise is not shrunk to a streak.
_MIN_BAND, _MAX_BAND = 0.5, 2.0


def _gaussian(sigma: float) -> np.ndarray:
    """A normalized Gaussian kernel of ``sigma`` samples, cut at 3 sigma (odd length)."""
    reach = max(1, int(np.ceil(3.0 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-reach, reach + 1, dtype=np.float64) / max(sigma, 1e-6)) ** 2)
    return taps / taps.sum()


def smooth_columns(values: np.ndarray, sigma: float, edge: bool = False) -> np.ndarray:
    """A Gaussian blur of ``sigma`` samples along each row of ``values`` [rows, columns]; outside
    the line the signal is 0, or repeats the end samples with ``edge``. Rows are few here (16
    tiles, or the one centre line), so one convolution per row is cheap."""
    kernel = _gaussian(sigma)
    reach = kernel.size // 2
    width = values.shape[1]
    out = np.empty(values.shape, dtype=np.float32)
    for row in range(values.shape[0]):
        signal = values[row].astype(np.float64)
        if edge:
            signal = np.concatenate([np.full(reach, signal[0]), signal, np.full(reach, signal[-1])])
            out[row] = np.convolve(signal, kernel, mode="valid")
        else:
            out[row] = np.convolve(signal, kernel, mode="full")[reach:reach + width]
    return out


def smooth_rows(values: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur of ``sigma`` samples down each column (outside the line: 0). Lines are
    few rows tall, so this is one small matrix product, exact however wide the blur."""
    rows = np.arange(values.shape[0], dtype=np.float64)
    weights = np.exp(-0.5 * ((rows[:, None] - rows[None, :]) / max(sigma, 1e-6)) ** 2)
    weights /= np.sqrt(2.0 * np.pi) * max(sigma, 1e-6)
    return (weights @ values.astype(np.float64)).astype(np.float32)


def _block_means(values: np.ndarray, block: int) -> np.ndarray:
    """``values`` averaged over ``block`` x ``block`` tiles (zero-padded to whole tiles)."""
    height, width = values.shape
    rows, columns = -(-height // block), -(-width // block)
    padded = np.zeros((rows * block, columns * block), dtype=np.float32)
    padded[:height, :width] = values
    # Strided slices added up: numpy's sums over a short axis took 6x longer than these adds.
    across = padded[:, 0::block].copy()
    for offset in range(1, block):
        across += padded[:, offset::block]
    tiles = across[0::block].copy()
    for offset in range(1, block):
        tiles += across[offset::block]
    return tiles / np.float32(block * block)


def centre_line(values: np.ndarray) -> np.ndarray:
    """Per column, the row (float) the line's ink is centred on; ``values`` [height, width], ink
    high (0..1)."""
    height, width = values.shape
    # The smoothing is so wide (half a height by one height) that tiles of a sixteenth of the
    # height lose nothing of the answer and cut its cost about 16-fold.
    block = max(1, height // 16)
    coarse = _block_means(values, block)
    dense = smooth_columns(smooth_rows(coarse, _SMOOTH_ROWS * height / block), _SMOOTH_COLUMNS * height / block)
    # Blank columns (gaps between words, margins) follow the whole line's profile, not row 0.
    profile = smooth_rows(coarse.mean(axis=1, keepdims=True), _SMOOTH_ROWS * height / block)
    dense = dense + 1e-3 * profile
    peak = np.argmax(dense, axis=0)
    # The peak between tiles: a parabola through the densest tile and its neighbours.
    above = dense[np.maximum(peak - 1, 0), np.arange(dense.shape[1])]
    at = dense[peak, np.arange(dense.shape[1])]
    below = dense[np.minimum(peak + 1, dense.shape[0] - 1), np.arange(dense.shape[1])]
    curvature = above - 2.0 * at + below
    offset = np.where(curvature < -1e-12, 0.5 * (above - below) / np.where(curvature < -1e-12, curvature, -1.0),
                      0.0)
    tile_rows = (peak + np.clip(offset, -0.5, 0.5) + 0.5) * block - 0.5  # tile centre, in rows
    # Back to one value per column, then smoothed along the line.
    rows = np.interp(np.arange(width, dtype=np.float64), (np.arange(dense.shape[1]) + 0.5) * block - 0.5,
                     tile_rows).astype(np.float32)
    return smooth_columns(rows[None, :], _SMOOTH_CENTRE * height, edge=True)[0]


def band_height(values: np.ndarray, centre: np.ndarray) -> int | None:
    """Rows of the band to cut around ``centre``: ``2 * (1 + 4 * mad) + 1``, kept within half
    and twice the working height; None when the line holds no ink."""
    ink = values > _INK_THRESHOLD
    count = int(np.count_nonzero(ink))
    if count == 0:
        return None
    distance = np.abs(np.arange(values.shape[0], dtype=np.float32)[:, None] - centre[None, :])
    mad = float(distance[ink].sum(dtype=np.float64)) / count
    band = 2.0 * (1.0 + _BAND_MADS * mad) + 1.0
    height = values.shape[0]
    return int(round(min(max(band, _MIN_BAND * height), _MAX_BAND * height)))


def relative_ink(values: np.ndarray, levels: LevelCounts | None = None) -> np.ndarray:
    """``values`` rescaled so the line's paper level is 0 and its ink level 1 (clipped to 0..1);
    all zeros when the two are closer than ``_MIN_CONTRAST``. ``levels``, the counts of
    ``values`` when the line is 8-bit, give the same two levels without sorting."""
    percents = (_PAPER_PERCENTILE, _INK_PERCENTILE)
    paper, ink = levels.percentiles(percents) if levels is not None else np.percentile(values, percents)
    contrast = float(ink - paper)
    if contrast < _MIN_CONTRAST:
        return np.zeros(values.shape, dtype=np.float32)
    return np.clip((values - np.float32(paper)) / np.float32(contrast), 0.0, 1.0).astype(np.float32)


def _shift_columns(values: np.ndarray, tops: np.ndarray, rows: int) -> np.ndarray:
    """``rows`` rows per column, column ``j`` read from row ``round(tops[j])`` down (background
    outside the line). Columns keep their places. Whole rows of the working image (half a row
    of the result) are fine enough; the centre line is smooth, so neighbouring columns share a
    shift and each run of them is one slice copy."""
    height, width = values.shape
    # Padding of ``rows`` above and below holds every band: centres lie inside the line.
    padded = np.zeros((height + 2 * rows, width), dtype=np.float32)
    padded[rows:rows + height] = values
    starts = np.clip(np.floor(tops + 0.5).astype(np.int64) + rows, 0, height + rows)
    out = np.empty((rows, width), dtype=np.float32)
    edges = np.flatnonzero(np.diff(starts)) + 1
    for first, last in zip(np.concatenate([[0], edges]), np.concatenate([edges, [width]])):
        start = int(starts[first])
        out[:, first:last] = padded[start:start + rows, first:last]
    return out


def centre_normalize(values: np.ndarray, height: int, max_width: int, ink: str = "fixed",
                     levels: LevelCounts | None = None) -> np.ndarray:
    """``values`` [working height, width] (ink high, 0..1) straightened along its centre line and
    scaled to ``height`` rows; at most ``max_width`` columns (the band grows instead). A line
    without ink is only scaled. ``ink`` is one of ``CENTER_INK_MODES`` (module docstring);
    ``levels``, when given, are the counts of ``values`` (``relative_ink``)."""
    from PIL import Image

    if ink not in CENTER_INK_MODES:
        raise ValueError(f"ink must be one of {CENTER_INK_MODES}, got {ink!r}")
    work_height, work_width = values.shape
    measured = relative_ink(values, levels) if ink == "relative" else values
    centre = centre_line(measured)
    band = band_height(measured, centre)
    if band is None:
        band = work_height
        if ink == "relative":  # nothing to centre on: the line's own middle, so it is only scaled
            centre = np.full(work_width, (work_height - 1) / 2.0, dtype=np.float32)
    band = max(band, int(np.ceil(work_width * height / max_width)))  # the result fits --max-width
    straight = _shift_columns(values, centre - (band - 1) / 2.0, band)
    width = max(1, min(max_width, round(work_width * height / band)))
    scaled = Image.fromarray(straight, mode="F").resize((width, height), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(scaled, dtype=np.float32), 0.0, 1.0)
