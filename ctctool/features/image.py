"""Text-line images: grayscale, fixed height, ink high and background zero, columns as frames."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from ..errors import ConfigError, FeatureError
from ..manifest import ManifestItem
from . import Features, FrameAxis


@dataclass(frozen=True)
class ImageFeatureConfig:
    height: int = 32  # pixels; every line is scaled to this height, keeping its aspect ratio
    polarity: str = "auto"  # "auto": make ink bright whatever the page; "dark-ink"; "light-ink"
    type: str = "image"

    def __post_init__(self) -> None:
        if not 8 <= self.height <= 512:
            raise ConfigError(f"image height must be between 8 and 512 pixels, got {self.height}")
        if self.polarity not in ("auto", "dark-ink", "light-ink"):
            raise ConfigError(f"polarity must be auto, dark-ink or light-ink, got {self.polarity!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageFeatureConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def open_line_image(item: ManifestItem):
    """The item's line as a grayscale PIL image (cropped to ``bbox``); FeatureError when unusable."""
    from PIL import Image, UnidentifiedImageError

    path = item.resolved_path
    try:
        with Image.open(path) as image:
            image.load()
            gray = image.convert("L")
    except FileNotFoundError:
        raise FeatureError(item.where, f"path: no such file {path}") from None
    except UnidentifiedImageError:
        raise FeatureError(item.where, f"path: {path} is not an image Pillow can read") from None
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt data
        raise FeatureError(item.where, f"path: cannot decode image {path}: {exc}") from None
    if item.bbox is not None:
        x0, y0, x1, y1 = item.bbox
        if x1 > gray.width or y1 > gray.height:
            raise FeatureError(item.where, f"bbox: {list(item.bbox)} lies outside the {gray.width}x{gray.height} image")
        gray = gray.crop(item.bbox)
    if gray.width < 1 or gray.height < 1:
        raise FeatureError(item.where, "path: image is empty")
    return gray


class ImageFeatures:
    modality = "image"

    def __init__(self, config: ImageFeatureConfig | None = None):
        self.config = config or ImageFeatureConfig()

    @property
    def feature_dim(self) -> int:
        return self.config.height

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.config)

    def scaled_width(self, width: int, height: int) -> int:
        return max(1, round(width * self.config.height / height))

    def frames_hint(self, item: ManifestItem) -> int:
        from PIL import Image, UnidentifiedImageError

        path = item.resolved_path
        try:
            with Image.open(path) as image:  # reads the header only
                width, height = image.size
        except FileNotFoundError:
            raise FeatureError(item.where, f"path: no such file {path}") from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            raise FeatureError(item.where, f"path: {path} is not an image Pillow can read") from None
        if item.bbox is not None:
            x0, y0, x1, y1 = item.bbox
            width, height = x1 - x0, y1 - y0
        return self.scaled_width(width, max(1, height))

    def load(self, item: ManifestItem, rng: random.Random | None = None) -> Features:
        from PIL import Image

        gray = open_line_image(item)
        source_width, source_height = gray.width, gray.height
        if rng is not None:
            gray = _augment_geometry(gray, rng)
        width = self.scaled_width(gray.width, gray.height)
        gray = gray.resize((width, self.config.height), Image.Resampling.BILINEAR)
        values = np.asarray(gray, dtype=np.float32) / 255.0
        if self._ink_is_dark(values):
            values = 1.0 - values
        if rng is not None:
            values = _augment_pixels(values, rng)
        origin = float(item.bbox[0]) if item.bbox else 0.0
        axis = FrameAxis(origin=origin, step=source_width / width, unit="px", extent=origin + source_width)
        return Features(np.ascontiguousarray(values, dtype=np.float32), axis, source_height)

    def _ink_is_dark(self, values: np.ndarray) -> bool:
        if self.config.polarity == "dark-ink":
            return True
        if self.config.polarity == "light-ink":
            return False
        return float(np.median(values)) > 0.5  # most pixels are background: a light page


# Augmentation strengths are small on purpose: printed and scanned lines vary a little in
# slant, stroke weight and contrast; large distortions only teach the net to read noise.
def _augment_geometry(gray, rng: random.Random):
    from PIL import Image, ImageFilter

    background = int(np.median(np.asarray(gray)))
    if rng.random() < 0.5:
        shear = rng.uniform(-0.2, 0.2)  # horizontal shear, x shift per y pixel
        angle = np.deg2rad(rng.uniform(-1.0, 1.0))  # small rotation, radians
        cos, sin = np.cos(angle), np.sin(angle)
        cx, cy = gray.width / 2, gray.height / 2
        a, b = cos, sin + shear
        d, e = -sin, cos
        c = cx - a * cx - b * cy
        f = cy - d * cx - e * cy
        gray = gray.transform(gray.size, Image.Transform.AFFINE, (a, b, c, d, e, f),
                              resample=Image.Resampling.BILINEAR, fillcolor=background)
    if rng.random() < 0.5:  # vertical jitter of the crop: lines are never perfectly centred
        top, bottom = rng.randint(0, 3), rng.randint(0, 3)
        padded = Image.new("L", (gray.width, gray.height + top + bottom), background)
        padded.paste(gray, (0, top))
        gray = padded
    if rng.random() < 0.3:
        gray = gray.filter(ImageFilter.GaussianBlur(radius=rng.uniform(0.3, 1.0)))
    return gray


def _augment_pixels(values: np.ndarray, rng: random.Random) -> np.ndarray:
    if rng.random() < 0.5:  # contrast and stroke-weight change via gamma
        values = np.power(values, rng.uniform(0.7, 1.4)) * rng.uniform(0.7, 1.0)
    if rng.random() < 0.5:
        noise_rng = np.random.default_rng(rng.getrandbits(32))
        values = values + noise_rng.normal(0.0, rng.uniform(0.01, 0.08), size=values.shape)
    return np.clip(values, 0.0, 1.0).astype(np.float32)
