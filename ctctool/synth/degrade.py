"""Degradations of a rendered line, the damage a scanned or photographed page shows.

Two stages, two conventions:

- on the **ink mask** (float32, ink 1, background 0, at render size): ``geometry`` (rotation,
  shear, baseline wave) and ``crop`` (tight or loose margins, never cutting ink); after the
  line is scaled to its output height, ``ink_spread`` (bleed or erosion);
- on the **page image** (float32 brightness, paper near 1, ink near 0, at output size):
  ``compose`` (paper shade, uneven illumination, paper texture, ink shade), then
  ``low_resolution``, ``blur``, ``gaussian_noise``, ``salt_and_pepper``, ``binarize``, ``jpeg``.

Every function is pure: its randomness comes from the ``random.Random`` it is handed (numpy
generators are seeded from it), so a (seed, sample) pair always gives the same pixels.
Each level in ``LEVELS`` says how often each one is applied and how strongly.
"""

from __future__ import annotations

import io
import math
import random
from dataclasses import dataclass

import numpy as np

from ..augmentation.image import gaussian_blur, remap, resolution_drop, stroke_width

Range = tuple[float, float]


@dataclass(frozen=True)
class Level:
    """How one degradation level draws its damage: (probability, range) per operation."""

    rotate: float  # degrees, uniform in +-rotate
    shear: float  # horizontal shift per row, in rows, +-shear
    wave: tuple[float, float]  # probability, amplitude as a fraction of the line height
    margin: Range  # blank margin per side, in line heights (tight .. loose)
    ink_spread: tuple[float, float]  # probability, +-pixels of grey dilation (bleed) / erosion
    paper: Range  # paper brightness
    ink: Range  # ink brightness (kept at least 0.35 below the paper)
    illumination: tuple[float, float]  # probability, brightness drop across the line (max)
    texture: tuple[float, float]  # probability, paper texture amplitude
    low_resolution: tuple[float, Range]  # probability, shrink factor before scaling back
    blur: tuple[float, Range]  # probability, Gaussian sigma in output pixels
    noise: tuple[float, Range]  # probability, Gaussian noise sigma (brightness units)
    salt_and_pepper: tuple[float, Range]  # probability, fraction of pixels flipped
    binarize: float  # probability of a bitonal (thresholded) scan
    jpeg: tuple[float, Range]  # probability, JPEG quality


LEVELS: dict[str, Level] = {
    "none": Level(0.0, 0.0, (0.0, 0.0), (0.08, 0.08), (0.0, 0.0), (1.0, 1.0), (0.0, 0.0), (0.0, 0.0),
                  (0.0, 0.0), (0.0, (1.0, 1.0)), (0.0, (0.0, 0.0)), (0.0, (0.0, 0.0)), (0.0, (0.0, 0.0)), 0.0,
                  (0.0, (95, 95))),
    "light": Level(0.3, 0.05, (0.0, 0.0), (0.02, 0.25), (0.3, 0.3), (0.85, 1.0), (0.0, 0.2), (0.3, 0.05),
                   (0.2, 0.02), (0.1, (1.2, 1.5)), (0.3, (0.3, 0.6)), (0.5, (0.005, 0.02)),
                   (0.0, (0.0, 0.0)), 0.0, (0.1, (60, 90))),
    "scan": Level(1.0, 0.1, (0.1, 0.02), (0.0, 0.4), (0.5, 0.6), (0.7, 1.0), (0.0, 0.3), (0.5, 0.15),
                  (0.5, 0.05), (0.3, (1.3, 2.2)), (0.5, (0.4, 1.0)), (0.7, (0.01, 0.05)),
                  (0.2, (0.001, 0.004)), 0.15, (0.3, (30, 80))),
    "heavy": Level(2.0, 0.2, (0.3, 0.05), (0.0, 0.6), (0.7, 0.9), (0.6, 1.0), (0.0, 0.25), (0.7, 0.3),
                   (0.7, 0.1), (0.5, (1.5, 3.0)), (0.7, (0.6, 1.6)), (0.9, (0.03, 0.1)),
                   (0.4, (0.003, 0.01)), 0.25, (0.5, (10, 50))),
}


def _numpy_rng(rng: random.Random) -> np.random.Generator:
    return np.random.default_rng(rng.getrandbits(64))


# ---------------------------------------------------------------- on the ink mask


def geometry(mask: np.ndarray, rng: random.Random, level: Level, line_height: float) -> np.ndarray:
    """Rotation (+-``level.rotate`` degrees), shear and sometimes a sinusoidal baseline, in one
    bilinear resampling about the mask's centre. The mask must have blank room around the ink."""
    angle = math.radians(rng.uniform(-level.rotate, level.rotate))
    shear = rng.uniform(-level.shear, level.shear)
    use_wave = rng.random() < level.wave[0]
    if angle == 0.0 and shear == 0.0 and not use_wave:
        return mask
    height, width = mask.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = xs - width / 2.0, ys - height / 2.0
    cos, sin = math.cos(angle), math.sin(angle)
    src_x = u * cos + v * sin + shear * v + width / 2.0
    src_y = -u * sin + v * cos + height / 2.0
    if use_wave:
        period = rng.uniform(3.0, 10.0) * line_height
        src_y += level.wave[1] * line_height * np.sin(2 * math.pi * xs / period + rng.uniform(0, 2 * math.pi))
    return remap(mask, src_x, src_y)


def crop(mask: np.ndarray, rng: random.Random, level: Level, line_top: int, line_bottom: int) -> np.ndarray:
    """Cut the line out with margins drawn from ``level.margin`` (in line heights) on each side.

    Vertically the crop starts from the font's line box (``line_top``..``line_bottom``, ascender
    to descender) rather than the ink, so "mum" and "Type" come out at the same scale; any ink
    outside the box (a rotated line, a deep descender) is always kept: a crop never cuts ink.
    """
    ink_rows = np.flatnonzero(mask.max(axis=1) > 0.02)
    ink_columns = np.flatnonzero(mask.max(axis=0) > 0.02)
    if ink_rows.size == 0:
        return mask[line_top:line_bottom]
    line_height = line_bottom - line_top
    margins = [round(rng.uniform(*level.margin) * line_height) for _ in range(4)]  # top, bottom, left, right
    top = max(0, min(line_top - margins[0] // 2, int(ink_rows[0])))  # half: the line box has room already
    bottom = min(mask.shape[0], max(line_bottom + margins[1] // 2, int(ink_rows[-1]) + 1))
    left = max(0, int(ink_columns[0]) - margins[2])
    right = min(mask.shape[1], int(ink_columns[-1]) + 1 + margins[3])
    return mask[top:bottom, left:right]


def ink_spread(mask: np.ndarray, rng: random.Random, level: Level) -> np.ndarray:
    """Ink bleed (bolder strokes) or erosion (thinner, broken strokes), up to ``level.ink_spread[1]``
    pixels of grey dilation or erosion at output size."""
    if rng.random() >= level.ink_spread[0]:
        return mask
    amount = rng.uniform(-level.ink_spread[1], level.ink_spread[1])
    return np.clip(stroke_width(mask, amount), 0.0, 1.0)


# ---------------------------------------------------------------- on the page image


def compose(mask: np.ndarray, rng: random.Random, level: Level) -> np.ndarray:
    """Ink on paper: paper shade with uneven illumination (a tilted plane plus a soft falloff) and
    texture (smooth noise a few pixels across), ink shade at least 0.35 darker than the paper."""
    height, width = mask.shape
    paper_level = rng.uniform(*level.paper)
    ink_level = min(rng.uniform(*level.ink), paper_level - 0.35)
    paper = np.full((height, width), paper_level, dtype=np.float32)
    if rng.random() < level.illumination[0]:
        drop = rng.uniform(0.0, level.illumination[1])
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        direction = rng.uniform(0, 2 * math.pi)
        plane = (xs / max(1, width) - 0.5) * math.cos(direction) + (ys / max(1, height) - 0.5) * math.sin(direction)
        paper -= drop * (plane + 0.5)
    if rng.random() < level.texture[0]:
        grain = rng.uniform(2.0, 6.0)  # px between texture knots
        generator = _numpy_rng(rng)
        knots = generator.normal(0.0, level.texture[1], (int(height / grain) + 2, int(width / grain) + 2))
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        paper += remap(knots.astype(np.float32), xs / grain, ys / grain)
    return paper - (paper - ink_level) * mask


def low_resolution(image: np.ndarray, rng: random.Random, level: Level) -> np.ndarray:
    """A low-resolution scan: shrink by a factor from the level's range, scale back up."""
    if rng.random() >= level.low_resolution[0]:
        return image
    return resolution_drop(image, rng.uniform(*level.low_resolution[1]))


def blur(image: np.ndarray, rng: random.Random, level: Level) -> np.ndarray:
    """Optics out of focus: Gaussian blur, sigma in output pixels."""
    if rng.random() >= level.blur[0]:
        return image
    return gaussian_blur(image, rng.uniform(*level.blur[1]))


def gaussian_noise(image: np.ndarray, rng: random.Random, level: Level) -> np.ndarray:
    """Sensor noise: independent Gaussian noise on every pixel."""
    if rng.random() >= level.noise[0]:
        return image
    sigma = rng.uniform(*level.noise[1])
    return image + _numpy_rng(rng).normal(0.0, sigma, image.shape).astype(np.float32)


def salt_and_pepper(image: np.ndarray, rng: random.Random, level: Level) -> np.ndarray:
    """Dust and dropouts: a small fraction of pixels set to black or white."""
    if rng.random() >= level.salt_and_pepper[0]:
        return image
    generator = _numpy_rng(rng)
    flipped = generator.random(image.shape) < rng.uniform(*level.salt_and_pepper[1])
    out = image.copy()
    out[flipped] = generator.integers(0, 2, int(flipped.sum())).astype(np.float32)
    return out


def otsu_threshold(image: np.ndarray) -> float:
    """The brightness that best separates two classes (Otsu 1979), over 256 bins."""
    counts, edges = np.histogram(np.clip(image, 0, 1), bins=256, range=(0.0, 1.0))
    centres = (edges[:-1] + edges[1:]) / 2
    weight_below = np.cumsum(counts)
    weight_above = weight_below[-1] - weight_below
    sum_below = np.cumsum(counts * centres)
    mean_below = sum_below / np.maximum(weight_below, 1)
    mean_above = (sum_below[-1] - sum_below) / np.maximum(weight_above, 1)
    between = weight_below * weight_above * (mean_below - mean_above) ** 2
    best = np.flatnonzero(between >= between.max() * (1 - 1e-9))  # empty bins between the modes tie
    return float((edges[best[0] + 1] + edges[best[-1] + 1]) / 2)  # the middle of the tied range


def binarize(image: np.ndarray, rng: random.Random, level: Level) -> np.ndarray:
    """A bitonal scan: black where darker than Otsu's threshold (shifted a little), white elsewhere."""
    if rng.random() >= level.binarize:
        return image
    threshold = otsu_threshold(image) + rng.uniform(-0.05, 0.05)
    return (image > threshold).astype(np.float32)


def jpeg(image: np.ndarray, rng: random.Random, level: Level) -> np.ndarray:
    """Compression artefacts: a JPEG round trip at a quality from the level's range."""
    if rng.random() >= level.jpeg[0]:
        return image
    from PIL import Image

    quality = round(rng.uniform(*level.jpeg[1]))
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image), "L").save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    return np.asarray(Image.open(buffer), dtype=np.float32) / 255.0


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


PAGE_STEPS = (low_resolution, blur, gaussian_noise, salt_and_pepper, binarize, jpeg)  # in this order
