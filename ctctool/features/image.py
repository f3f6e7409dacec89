"""Text-line images: grayscale, fixed height, ink high and background zero, columns as frames."""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from ..augmentation import AugmentPolicy
from ..augmentation.image import augment_line
from ..errors import ConfigError, FeatureError
from ..manifest import ManifestItem
from . import Features, FrameAxis, check_config_types, short_reason
from .center import CENTER_INK_MODES, centre_normalize
from .levels import LevelCounts
from .slant import SlantSurvey, deslant, evenly_spaced, survey_slant

# Source images larger than this many pixels are refused before they are decoded: a small
# compressed file can ask for gigabytes (a 1.6 KB PNG of 200000x8 asked for 9.8 GB downstream).
MAX_SOURCE_PIXELS = 64_000_000
CENTER_WORK_SCALE = 2  # --center-normalize works at this multiple of the model's line height
# New image models are trained with centre normalization unless --no-center-normalize: it cut
# validation and held-out CER on printed and handwriting-like lines alike (README, "Centre
# normalization"). The config field's own default stays False: a model file without the key
# was trained without it.
DEFAULT_CENTER_NORMALIZE = True
# ...measuring ink against each line's own paper and ink levels: with the fixed level grey paper
# counted as ink (center.py). The field's default stays "fixed" for files written before it.
DEFAULT_CENTER_INK = "relative"


@dataclass(frozen=True)
class ImageFeatureConfig:
    height: int = 32  # pixels; every line is scaled to this height, keeping its aspect ratio
    polarity: str = "auto"  # "auto": make ink bright whatever the page; "dark-ink"; "light-ink"
    # pixels after scaling to ``height``; wider lines are refused (--max-width). --deslant then
    # adds at most ``height`` blank columns (the shear's margins), so the bound stays linear.
    max_width: int = 12000
    deslant: bool = False  # shear each line upright before the network (train --deslant; see slant.py)
    # straighten each line along its centre and scale it by its ink's spread, not its crop
    # (train --center-normalize; see center.py)
    center_normalize: bool = False
    # how centre normalization tells ink from paper: "fixed" (format-3 files) or "relative" to
    # the line's own paper and ink levels (center.py)
    center_ink: str = "fixed"
    type: str = "image"

    def __post_init__(self) -> None:
        check_config_types(self)
        if not 8 <= self.height <= 512:
            raise ConfigError(f"image height must be between 8 and 512 pixels, got {self.height}")
        if self.polarity not in ("auto", "dark-ink", "light-ink"):
            raise ConfigError(f"polarity must be auto, dark-ink or light-ink, got {self.polarity!r}")
        if not 16 <= self.max_width <= 1_000_000:
            raise ConfigError(f"max_width must be between 16 and 1000000 pixels, got {self.max_width}")
        if self.center_ink not in CENTER_INK_MODES:
            raise ConfigError(f"center_ink must be {' or '.join(CENTER_INK_MODES)}, got {self.center_ink!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageFeatureConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# Modes that carry more than 8 bits per pixel: scaled to 0..255 from their own range.
_WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def to_grayscale(image, where: str, path: str):
    """An 8-bit greyscale ("L") copy of any Pillow image: 16-bit and float images are scaled
    (not clipped at 255), and transparency is composited over white (transparent-background
    ink would otherwise vanish)."""
    from PIL import Image

    mode = image.mode
    if mode in _WIDE_MODES:
        values = np.asarray(image, dtype=np.float32)
        if not np.isfinite(values).all():
            raise FeatureError(where, f"path: image {path} holds NaN or infinite pixel values")
        high = float(values.max()) if values.size else 0.0
        if mode.startswith("I;16"):
            full_scale = 65535.0
        elif mode == "F" and high <= 1.0:
            full_scale = 1.0  # a float image in 0..1
        else:
            full_scale = 255.0 if high <= 255 else 65535.0 if high <= 65535 else high
        scaled = np.clip(values / full_scale, 0.0, 1.0) * 255.0
        return Image.fromarray(np.round(scaled).astype(np.uint8), "L")
    if "A" in mode or "transparency" in image.info:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("L")
    return image.convert("L")


def _open_checked(item: ManifestItem):
    """Open the item's image (header only) and check its size; returns the open PIL image."""
    from PIL import Image, UnidentifiedImageError

    path = item.resolved_path
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 89M and 178M pixels; our own cap below is lower anyway
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
    except FileNotFoundError:
        raise FeatureError(item.where, f"path: no such file {path}") from None
    except IsADirectoryError:
        raise FeatureError(item.where, f"path: {path} is a folder, not an image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise FeatureError(item.where, f"path: image {path} is too large to decode safely "
                                       f"(over the {MAX_SOURCE_PIXELS} pixel limit)") from None
    except UnidentifiedImageError:
        raise FeatureError(item.where, f"path: {path} is not an image Pillow can read") from None
    except (OSError, ValueError, SyntaxError) as exc:  # unreadable header
        raise FeatureError(item.where, f"path: cannot read image {path}: {short_reason(exc)}") from None
    width, height = image.size
    if width * height > MAX_SOURCE_PIXELS:
        image.close()
        raise FeatureError(item.where, f"path: image {path} is {width}x{height}, over the "
                                       f"{MAX_SOURCE_PIXELS} pixel limit for one line or page")
    if item.bbox is not None:
        x0, y0, x1, y1 = item.bbox
        if x1 > width or y1 > height:
            image.close()
            raise FeatureError(item.where, f"bbox: {list(item.bbox)} lies outside the {width}x{height} image")
    if width < 1 or height < 1:
        image.close()
        raise FeatureError(item.where, "path: image is empty")
    return image


def _line_size(item: ManifestItem, width: int, height: int) -> tuple[int, int]:
    if item.bbox is not None:
        x0, y0, x1, y1 = item.bbox
        return x1 - x0, y1 - y0
    return width, height


def open_line_image(item: ManifestItem, max_width: int | None = None, height: int = 32):
    """The item's line as a greyscale ("L") PIL image, cropped to ``bbox``; FeatureError when
    unusable. With ``max_width``, a line wider than that once scaled to ``height`` is refused
    before it is decoded."""
    return _decode_line(item, max_width, height)[0]


MAX_POLYGON_POINTS = 10_000
# Pages decoded lately, by (path, size, mtime): the lines of one page are read one after another
# (a manifest from a PAGE or ALTO file lists them together), so the page is decoded once, not
# once per line. Two pages of greyscale: about 22 MB for two A4 scans at 300 dpi.
_PAGE_CACHE: dict[tuple[str, int, float], Any] = {}
_PAGE_CACHE_SIZE = 2


def _decode_line(item: ManifestItem, max_width: int | None, height: int):
    """(the line as greyscale, (page width, page height))."""
    from PIL import Image

    path = item.resolved_path
    polygon = _polygon_of(item)
    with _open_checked(item) as image:
        page_size = image.size
        line_width, line_height = _line_size(item, *image.size)
        if max_width is not None and scaled_width(line_width, line_height, height) > max_width:
            raise FeatureError(item.where, f"path: line {path} is {scaled_width(line_width, line_height, height)} "
                                           f"px wide at height {height}, over the --max-width limit of {max_width}")
        key = _page_key(path) if item.bbox is not None else None
        gray = _PAGE_CACHE.get(key) if key is not None else None
        if gray is None:
            try:
                image.load()
                gray = to_grayscale(image, item.where, path)
            except Image.DecompressionBombError:
                raise FeatureError(item.where, f"path: image {path} is too large to decode safely") from None
            except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt data
                raise FeatureError(item.where, f"path: cannot decode image {path}: {short_reason(exc)}") from None
            if key is not None:
                while len(_PAGE_CACHE) >= _PAGE_CACHE_SIZE:
                    _PAGE_CACHE.pop(next(iter(_PAGE_CACHE)))
                _PAGE_CACHE[key] = gray
    if item.bbox is not None:
        gray = gray.crop(item.bbox)
        if polygon is not None:
            gray = _mask_outside(gray, polygon, item.bbox, _padding_of(item))
    return gray, page_size


def _page_key(path: str) -> tuple[str, int, float] | None:
    import os

    try:
        stat = os.stat(path)
    except OSError:
        return None
    return path, stat.st_size, stat.st_mtime


def _polygon_of(item: ManifestItem) -> list[tuple[float, float]] | None:
    """The item's ``polygon`` field (page pixels), checked: 3 to 10,000 [x, y] number pairs."""
    value = item.extra.get("polygon")
    if value is None or item.bbox is None:
        return None
    if not isinstance(value, list) or not 3 <= len(value) <= MAX_POLYGON_POINTS or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                        and abs(v) < 1e7 for v in p) for p in value):
        raise FeatureError(item.where, f"polygon: expected 3 to {MAX_POLYGON_POINTS} [x, y] pairs of page pixels")
    return [(float(x), float(y)) for x, y in value]


def _padding_of(item: ManifestItem) -> int:
    value = item.extra.get("polygon_padding", 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise FeatureError(item.where, "polygon_padding: expected 0 to 100 pixels")
    return value


def _mask_outside(gray, polygon: list[tuple[float, float]], bbox: tuple[int, int, int, int], padding: int = 0):
    """The crop with pixels outside the line's polygon set to the line's background (the
    median inside the polygon: most of a text line is background), so ascenders and
    descenders of the neighbouring lines inside the box do not leak into this one; ``padding``
    grows the outline by that many pixels (``manifest import --line-padding``)."""
    from PIL import Image, ImageDraw

    x0, y0 = bbox[0], bbox[1]
    mask = Image.new("L", gray.size, 0)
    ImageDraw.Draw(mask).polygon([(x - x0, y - y0) for x, y in polygon], fill=255)
    if padding:
        from PIL import ImageFilter

        mask = mask.filter(ImageFilter.MaxFilter(2 * padding + 1))  # the outline grown by ``padding`` px
    inside = np.asarray(mask) > 0
    if not inside.any():
        return gray
    pixels = np.asarray(gray)
    background = int(np.median(pixels[inside]))
    return Image.fromarray(np.where(inside, pixels, np.uint8(background)).astype(np.uint8), mode="L")


def scaled_width(width: int, height: int, target_height: int) -> int:
    """Columns of a ``width`` x ``height`` line scaled to ``target_height`` rows."""
    return max(1, round(width * target_height / max(1, height)))


@dataclass(frozen=True)
class PreparedLine:
    """A line before augmentation (ImageFeatures.prepare)."""

    values: np.ndarray  # float32 [height, columns], read-only
    pad: int  # columns of slant-correction padding left of the line
    step: float  # source pixels per column
    source_width: int  # the line's size in source pixels
    source_height: int
    page_size: tuple[int, int] | None  # (width, height) of the whole image file

    @property
    def nbytes(self) -> int:
        return self.values.nbytes


class ImageFeatures:
    modality = "image"

    def __init__(self, config: ImageFeatureConfig | None = None):
        self.config = config or ImageFeatureConfig()

    @property
    def feature_dim(self) -> int:
        return self.config.height

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.config)

    def with_limits(self, max_width: int | None = None, **_: Any) -> ImageFeatures:
        return self if max_width is None else ImageFeatures(replace(self.config, max_width=max_width))

    def frames_hint(self, item: ManifestItem, at_least: int = 0, exact: bool = False,
                    prepare: Callable[[], PreparedLine] | None = None) -> int:
        with _open_checked(item) as image:  # reads the header only
            width, height = _line_size(item, *image.size)
        frames = scaled_width(width, height, self.config.height)
        if frames > self.config.max_width:
            raise FeatureError(item.where, f"path: line {item.resolved_path} is {frames} px wide at height "
                                           f"{self.config.height}, over the --max-width limit of "
                                           f"{self.config.max_width}")
        # Centre normalization scales a line by 0.5-2x its plain width (the band's bounds) and
        # slant correction pads it; when half might not reach ``at_least`` (a transcript dense for
        # its line), or when asked, count exactly.
        if (self.config.center_normalize and frames // 2 < at_least) or (
                exact and (self.config.center_normalize or self.config.deslant)):
            line = prepare() if prepare is not None else self.prepare(item)
            return int(line.values.shape[1])
        return frames

    def load(self, item: ManifestItem, rng: random.Random | None = None,
             policy: AugmentPolicy | None = None) -> Features:
        return self.finish(item, self.prepare(item), rng, policy)

    def prepare(self, item: ManifestItem) -> PreparedLine:
        """The line as the network would see it without augmentation: decoded, scaled, ink made
        bright, centre-normalized and slant-corrected. The same on every epoch, so training keeps
        it (data.PreparedCache) and redoes only the augmentation."""
        from PIL import Image

        gray, page_size = _decode_line(item, self.config.max_width, self.config.height)
        source_width, source_height = gray.width, gray.height
        # Centre normalization measures the line at twice the model's height (a 32 px line's
        # strokes are too few rows to place its centre well), then scales the band it cuts.
        scale = CENTER_WORK_SCALE if self.config.center_normalize else 1
        width = min(scaled_width(gray.width, gray.height, scale * self.config.height), scale * self.config.max_width)
        gray = gray.resize((width, scale * self.config.height), Image.Resampling.BILINEAR)
        pixels = np.asarray(gray)  # uint8 [rows, columns]
        values = pixels.astype(np.float32) / 255.0
        # Per-level counts give the median (polarity) and the percentiles (relative centre ink)
        # below without sorting every pixel; counted only where one of them is taken.
        relative_ink = self.config.center_normalize and self.config.center_ink == "relative"
        levels = LevelCounts.of_pixels(pixels) if self.config.polarity == "auto" or relative_ink else None
        if self._ink_is_dark(levels):
            values = 1.0 - values
            levels = levels.inverted() if levels is not None else None
        if self.config.center_normalize:
            values = centre_normalize(values, self.config.height, self.config.max_width, self.config.center_ink,
                                      levels=levels)
            width = values.shape[1]
        pad = 0
        if self.config.deslant:  # before augmentation: training jitters the slant around upright
            values, pad = deslant(values)
        values = np.ascontiguousarray(values, dtype=np.float32)
        values.setflags(write=False)  # kept across epochs: augmentation works on a copy
        return PreparedLine(values, pad, source_width / width, source_width, source_height, page_size)

    def finish(self, item: ManifestItem, line: PreparedLine, rng: random.Random | None = None,
               policy: AugmentPolicy | None = None) -> Features:
        """``line``'s features, augmented when ``rng`` is given (``policy``: the default preset
        when None). ``line`` is left as it was."""
        values = line.values
        if rng is not None:
            values = augment_line(values, rng, policy or AugmentPolicy())
            values = values[:, :self.config.max_width]
        left = float(item.bbox[0]) if item.bbox else 0.0
        axis = FrameAxis(origin=left - line.pad * line.step, step=line.step, unit="px", start=left,
                         extent=left + line.source_width)
        return Features(np.ascontiguousarray(values, dtype=np.float32), axis, line.source_height, line.page_size)

    def _ink_is_dark(self, levels: LevelCounts | None) -> bool:
        if self.config.polarity == "dark-ink":
            return True
        if self.config.polarity == "light-ink" or levels is None:
            return False
        return float(levels.median()) > 0.5  # most pixels are background: a light page


def survey_training_slant(items: list[ManifestItem], config: ImageFeatureConfig) -> SlantSurvey:
    """How many of an evenly spaced sample of ``items`` lean, each read as ``config`` would read it
    before slant correction (scaled, centre-normalized). Lines that cannot be read are left out
    here: preparing the training items reports them."""
    plain = ImageFeatures(replace(config, deslant=False))

    def lines():
        for index in evenly_spaced(len(items)):
            try:
                yield plain.load(items[index]).values
            except FeatureError:
                continue

    return survey_slant(lines())
