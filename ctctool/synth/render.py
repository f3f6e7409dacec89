"""One synthetic line: text drawn in a face, degraded, scaled to the output height.

The text is drawn at ``RENDER_SCALE`` times the output height (line box = ascender to
descender), so geometry and cropping work on a finer grid than the output and the final
downscale anti-aliases; pixel-level damage (blur, noise, JPEG...) is applied at output size,
where its strength in pixels means what a scan's would.
"""

from __future__ import annotations

import random
from functools import lru_cache

import numpy as np

from . import degrade
from .fonts import FontFace

RENDER_SCALE = 2.0  # render the line box at this multiple of the output height
MAX_ASPECT = 120  # output width / height: longer renders are refused (a 150-character line is ~60)


class RenderError(ValueError):
    """This text cannot be drawn sensibly in this face (absurd size); the sample is skipped."""


@lru_cache(maxsize=256)
def _font(face: FontFace, size: int):
    from PIL import ImageFont

    return ImageFont.truetype(face.path, size, index=face.index)


def draw_mask(text: str, face: FontFace, line_px: int) -> tuple[np.ndarray, int, int]:
    """The text's ink mask (float32, ink 1) with blank room on every side for rotation, and the
    rows of the font's line box (top, bottom) within it. ``line_px``: wanted line box height."""
    from PIL import Image, ImageDraw

    probe = _font(face, 64)
    ascent, descent = probe.getmetrics()
    size = max(4, round(64 * line_px / max(1, ascent + descent)))
    font = _font(face, size)
    ascent, descent = font.getmetrics()
    left, top, right, bottom = font.getbbox(text, anchor="ls")
    line_height = ascent + descent
    width = right - left
    if width <= 0 or width > MAX_ASPECT * line_height or bottom - top > 4 * line_height:
        raise RenderError(f"{face.name}: {width}x{bottom - top} px for a {line_height} px line")
    pad = line_height  # room for rotation, shear and margins
    above, below = max(ascent, -top), max(descent, bottom)  # rows above and below the baseline
    canvas = Image.new("L", (width + 2 * pad, above + below + 2 * pad), 0)
    baseline = pad + above
    ImageDraw.Draw(canvas).text((pad - left, baseline), text, font=font, fill=255, anchor="ls")
    mask = np.asarray(canvas, dtype=np.float32) / 255.0
    return mask, baseline - ascent, baseline + descent


def render_line(text: str, face: FontFace, height: int, level: degrade.Level, rng: random.Random) -> np.ndarray:
    """The finished line image: uint8 grey, paper bright, exactly ``height`` pixels tall."""
    from PIL import Image

    line_px = round(RENDER_SCALE * height)
    mask, line_top, line_bottom = draw_mask(text, face, line_px)
    mask = degrade.geometry(mask, rng, level, line_bottom - line_top)
    mask = degrade.crop(mask, rng, level, line_top, line_bottom)
    # The line box should fill the output height, the margins the rest.
    scale = height / mask.shape[0]
    width = max(1, round(mask.shape[1] * scale))
    mask = np.asarray(Image.fromarray(mask, "F").resize((width, height), Image.Resampling.LANCZOS),
                      dtype=np.float32)
    mask = degrade.ink_spread(np.clip(mask, 0.0, 1.0), rng, level)
    image = degrade.compose(mask, rng, level)
    for step in degrade.PAGE_STEPS:
        image = step(image, rng, level)
    return degrade.to_uint8(image)
