"""Text-line image augmentation on the extractor's output: ``values`` [height, width], float32,
ink high (near 1) and background low (near 0), already scaled to the model's line height.

Working at the model's height keeps every operation cheap (a 32 x 400 line is 13k pixels), and
one bilinear resampling carries all the geometry (affine jitter, elastic distortion, baseline
wave), so the line is interpolated once, not once per operation. Sizes below are in pixels of
that line unless they say otherwise; ``k`` is the preset's strength (1 for ``default``).
"""

from __future__ import annotations

import math
import random

import numpy as np

from . import AugmentPolicy


def augment_line(values: np.ndarray, rng: random.Random, policy: AugmentPolicy) -> np.ndarray:
    """An augmented copy of ``values``: same height, possibly another width, values in 0..1."""
    if not policy.active:
        return values
    k = policy.strength()
    height = values.shape[0]
    out = values.astype(np.float32, copy=True)
    if rng.random() < policy.chance("resolution", 0.2):
        out = resolution_drop(out, rng.uniform(1.3, 1.3 + 1.2 * k))
    out = _geometry(out, rng, policy, k)
    if rng.random() < policy.chance("margins", 0.5):
        out = _margins(out, rng, k)
    if rng.random() < policy.chance("stroke", 0.4):
        out = stroke_width(out, rng.uniform(-0.8, 0.8) * min(1.0, k))
    if rng.random() < policy.chance("blur", 0.3):
        out = gaussian_blur(out, rng.uniform(0.3, 0.3 + 0.7 * k))
    if rng.random() < policy.chance("contrast", 0.5):
        out = _contrast(out, rng, k)
    if rng.random() < policy.chance("noise", 0.5):
        out = _noise(out, rng, k)
    assert out.shape[0] == height
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def resolution_drop(values: np.ndarray, factor: float) -> np.ndarray:
    """Scan at a lower resolution: shrink by ``factor`` and scale back up (soft, blocky strokes)."""
    from PIL import Image

    height, width = values.shape
    small = Image.fromarray(values, "F").resize((max(1, round(width / factor)), max(2, round(height / factor))),
                                                 Image.Resampling.BOX)
    return np.asarray(small.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)


def _geometry(values: np.ndarray, rng: random.Random, policy: AugmentPolicy, k: float) -> np.ndarray:
    """Affine jitter (scale per axis, shear, rotation, baseline shift), per-letter jitter, elastic
    distortion and a baseline wave, composed into one map from output to source coordinates."""
    height, width = values.shape
    use_affine = rng.random() < policy.chance("affine", 0.7)
    use_elastic = rng.random() < policy.chance("elastic", 0.5)
    use_wave = rng.random() < policy.chance("wave", 0.2)
    use_letters = policy.rolls("letters", 0.7, rng)  # added 2026-12-05: "-letters" draws nothing
    if not (use_affine or use_elastic or use_wave or use_letters):
        return values
    scale_x = scale_y = 1.0
    shear = angle = shift_y = 0.0
    if use_affine:
        scale_x = math.exp(rng.uniform(-0.15, 0.15) * k)  # character width: condensed .. extended
        scale_y = math.exp(rng.uniform(-0.12, 0.08) * k)  # x-height within the line box
        shear = rng.uniform(-0.3, 0.3) * k  # slant: source x shift per row
        angle = math.radians(rng.uniform(-1.5, 1.5) * k)
        shift_y = rng.uniform(-0.08, 0.08) * k * height  # baseline position within the crop
    out_width = max(4, round(width * scale_x))
    ys, xs = np.mgrid[0:height, 0:out_width].astype(np.float32)
    u = xs - out_width / 2.0
    v = ys - height / 2.0
    if use_letters:
        u, v, local_shear = _letters(out_width, height, rng, k, v)
        shear = shear + local_shear
    cos, sin = math.cos(angle), math.sin(angle)
    src_x = (u * cos + v * sin) / scale_x + shear * v + width / 2.0
    src_y = (-u * sin + v * cos) / scale_y - shift_y + height / 2.0
    if use_elastic:
        # Smooth random displacements: normal draws on a coarse grid (one knot per half line
        # height) interpolated to every pixel; amplitude about 1.2 px at 32 px lines.
        spacing = max(4.0, height / 2.0)
        amplitude = 0.04 * height * k
        grid_rng = np.random.default_rng(rng.getrandbits(32))
        knots = (int(math.ceil(height / spacing)) + 2, int(math.ceil(out_width / spacing)) + 2)
        coarse_x = grid_rng.normal(0.0, amplitude, knots).astype(np.float32)
        coarse_y = grid_rng.normal(0.0, amplitude, knots).astype(np.float32)
        taps = bilinear_taps(xs / spacing, ys / spacing, knots)  # both grids are read at the same points
        src_x += sample(coarse_x, taps)
        src_y += sample(coarse_y, taps)
    if use_wave:
        period = rng.uniform(3.0, 10.0) * height
        amplitude = rng.uniform(0.02, 0.06) * k * height
        src_y += amplitude * np.sin(2 * math.pi * xs / period + rng.uniform(0, 2 * math.pi))
    return remap(values, src_x, src_y)


def _letters(out_width: int, height: int, rng: random.Random, k: float,
             v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-letter jitter: width, slant and letter height that change along the line, as they do
    between one writer's letters and another's. Random values at knots 0.7 line heights apart
    (about one letter after centre normalization) are interpolated linearly to every column.

    Returns the output grid's horizontal offsets from the middle after the width warp (columns
    keep their order and the line its width: a monotone map, so no letter moves past another and
    the transcript stays true), the vertical offsets scaled by the local letter height, and each
    column's extra shear (source x per row)."""
    knots_rng = np.random.default_rng(rng.getrandbits(32))
    spacing = 0.7 * height
    count = int(math.ceil(out_width / spacing)) + 2
    knot_x = (np.arange(count, dtype=np.float32) - 0.5) * spacing
    columns = np.arange(out_width, dtype=np.float32)
    log_width = np.interp(columns, knot_x, knots_rng.uniform(-0.4, 0.4, count) * k)
    slant = np.interp(columns, knot_x, knots_rng.uniform(-0.4, 0.4, count) * k).astype(np.float32)
    log_height = np.interp(columns, knot_x, knots_rng.uniform(-0.15, 0.15, count) * k)
    # A letter drawn wider advances the source by less than one column per output column.
    advance = np.exp(-log_width)
    position = np.concatenate([[0.0], np.cumsum(advance[:-1])])
    position *= (out_width - 1) / max(float(position[-1]), 1e-6)
    u = np.broadcast_to((position - out_width / 2.0).astype(np.float32), v.shape)
    return u, (v / np.exp(log_height)).astype(np.float32), slant[None, :]


def remap(values: np.ndarray, src_x: np.ndarray, src_y: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``values`` at (src_y, src_x); points outside read as background (0)."""
    return sample(values, bilinear_taps(src_x, src_y, values.shape))


def bilinear_taps(src_x: np.ndarray, src_y: np.ndarray,
                  shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Where ``sample`` reads an image of ``shape`` for the points (src_y, src_x): (flat index of
    each point's top-left neighbour in the image padded by one pixel, horizontal and vertical
    fractions, padded width). Worked out once, it serves every image of that shape (the elastic
    grid's two displacement fields)."""
    height, width = shape
    x = np.clip(src_x + 1.0, 0.0, width + 1.0)
    y = np.clip(src_y + 1.0, 0.0, height + 1.0)
    x0 = np.minimum(np.floor(x).astype(np.int64), width)
    y0 = np.minimum(np.floor(y).astype(np.int64), height)
    return y0 * (width + 2) + x0, x - x0, y - y0, width + 2


def sample(values: np.ndarray, taps: tuple[np.ndarray, np.ndarray, np.ndarray, int]) -> np.ndarray:
    """Bilinear samples of ``values`` at the points of ``bilinear_taps`` (outside: 0)."""
    corner, fx, fy, stride = taps
    height, width = values.shape
    padded = np.zeros((height + 2, width + 2), dtype=np.float32)
    padded[1:-1, 1:-1] = values
    flat = padded.ravel()
    # Flat takes read the same pixels as indexing by (row, column): the other three neighbours
    # are the same index into the padded image shifted by 1, a row, and a row and 1.
    left = 1 - fx
    top = flat.take(corner) * left + flat[1:].take(corner) * fx
    bottom = flat[stride:].take(corner) * left + flat[stride + 1:].take(corner) * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def _margins(values: np.ndarray, rng: random.Random, k: float) -> np.ndarray:
    """Loose or tight horizontal crops: pad with background, or trim part of the blank margin
    (never ink: a crop that cuts a letter would teach the model a wrong label)."""
    height = values.shape[0]
    ink_columns = np.flatnonzero(values.max(axis=0) > 0.25)
    if ink_columns.size == 0:
        return values
    first, last = int(ink_columns[0]), int(ink_columns[-1])
    sides = []
    for blank in (first, values.shape[1] - 1 - last):
        if rng.random() < 0.5:
            sides.append(-int(rng.uniform(0.0, 1.0) * blank))  # trim up to the whole blank margin
        else:
            sides.append(int(rng.uniform(0.0, 0.6 * k) * height))  # pad by up to 0.6 line heights
    left, right = sides
    out = values[:, max(0, -left): values.shape[1] - max(0, -right)]
    if left > 0 or right > 0:
        out = np.pad(out, ((0, 0), (max(0, left), max(0, right))))
    return out


def stroke_width(values: np.ndarray, amount: float) -> np.ndarray:
    """Bolder (``amount`` > 0, grey dilation) or thinner (< 0, erosion) strokes, by a fraction
    of one pixel: a blend between the line and its 3x3 max (or min) filter."""
    padded = np.pad(values, 1, mode="edge")
    height, width = values.shape
    shifted = [padded[dy:dy + height, dx:dx + width] for dy in range(3) for dx in range(3)]
    extreme = np.max(shifted, axis=0) if amount > 0 else np.min(shifted, axis=0)
    return (1 - abs(amount)) * values + abs(amount) * extreme


def gaussian_blur(values: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur, ``sigma`` in pixels; edges extended."""
    radius = max(1, int(math.ceil(3 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps = (taps / taps.sum()).astype(np.float32)
    out = np.pad(values, ((radius, radius), (0, 0)), mode="edge")
    out = sum(taps[i] * out[i:i + values.shape[0]] for i in range(len(taps)))
    out = np.pad(out, ((0, 0), (radius, radius)), mode="edge")
    return sum(taps[i] * out[:, i:i + values.shape[1]] for i in range(len(taps)))


def _contrast(values: np.ndarray, rng: random.Random, k: float) -> np.ndarray:
    """Faded ink, grey or uneven paper, gamma: ink stays brighter than paper by at least 0.3."""
    paper = rng.uniform(0.0, 0.3 * k)
    ink = rng.uniform(max(paper + 0.3, 1.0 - 0.45 * k), 1.0)
    out = np.power(values, math.exp(rng.uniform(-0.4, 0.4) * k))
    out = paper + (ink - paper) * out
    if rng.random() < 0.3:  # illumination falling off across the line
        ramp = np.linspace(0.0, 1.0, values.shape[1], dtype=np.float32) * rng.uniform(-0.15, 0.15) * k
        out = out + ramp[None, :]
    return out


def _noise(values: np.ndarray, rng: random.Random, k: float) -> np.ndarray:
    noise_rng = np.random.default_rng(rng.getrandbits(32))
    out = values + noise_rng.normal(0.0, rng.uniform(0.01, 0.01 + 0.07 * k), size=values.shape).astype(np.float32)
    if rng.random() < 0.25:  # salt and pepper: dust and dropouts
        speckled = noise_rng.random(values.shape) < rng.uniform(0.001, 0.006) * k
        out[speckled] = noise_rng.integers(0, 2, int(speckled.sum())).astype(np.float32)
    return out
