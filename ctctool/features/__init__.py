"""Feature extractors, one per modality, chosen from the manifest and recorded in the model file.

Every extractor turns an item into a float32 array ``[feature_dim, frames]``: the time (or
reading) axis is last for both images (columns) and audio (STFT frames), so the model, the
data pipeline and every command share one code path. A ``FrameAxis`` maps feature frames
back to the source's own unit (pixel columns of the original image, or seconds).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, Protocol

import numpy as np

from ..errors import ConfigError
from ..manifest import ManifestItem


@dataclass(frozen=True)
class FrameAxis:
    origin: float  # where feature frame 0 starts, in ``unit`` (page column or seconds)
    step: float  # ``unit`` per feature frame
    unit: str  # "px" or "s"
    start: float  # where the source begins, in ``unit``; left of it frame 0 may lie (deslant padding)
    extent: float  # where the source ends, in ``unit`` (spans are clipped to start..extent)

    def position(self, frame: float) -> float:
        return max(self.start, min(self.origin + frame * self.step, self.extent))


@dataclass(frozen=True)
class Features:
    values: np.ndarray  # float32 [feature_dim, frames]
    axis: FrameAxis
    source_height: int = 0  # images: the line's height in source pixels (for boxes); 0 for audio
    page_size: tuple[int, int] | None = None  # images: (width, height) of the whole image file


class FeatureExtractor(Protocol):
    modality: str
    feature_dim: int

    def load(self, item: ManifestItem, rng: random.Random | None = None, policy: Any = None) -> Features:
        """Features for one item; ``rng`` turns training augmentation on, with ``policy`` (an
        ``AugmentPolicy``; the default preset when None). Raises FeatureError. The same as
        ``finish(item, prepare(item), rng, policy)``."""

    def prepare(self, item: ManifestItem) -> Any:
        """The part of loading that is the same on every epoch (decoding, scaling, resampling,
        line normalization), as a frozen object with an ``nbytes`` property and read-only
        arrays. Raises FeatureError."""

    def finish(self, item: ManifestItem, prepared: Any, rng: random.Random | None = None,
               policy: Any = None) -> Features:
        """Features from ``prepare``'s result, augmented when ``rng`` is given; ``prepared`` is
        left unchanged. Raises FeatureError."""

    def frames_hint(self, item: ManifestItem, at_least: int = 0, exact: bool = False,
                    prepare: Callable[[], Any] | None = None) -> int:
        """Feature frames the item will give (without augmentation), read cheaply (headers only);
        exact whenever the cheap estimate could be wrong about reaching ``at_least``, or always
        with ``exact`` (which may read the whole item: through ``prepare`` when given, in place
        of ``self.prepare(item)``, so training keeps what it read). Raises FeatureError."""

    def config_dict(self) -> dict[str, Any]:
        """What the model file records to rebuild this extractor."""

    def with_limits(self, max_width: int | None = None, max_seconds: float | None = None) -> FeatureExtractor:
        """A copy with other per-item size limits (None keeps the current one)."""


_TYPE_CHECKS = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
    "str": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "tuple[int, ...]": lambda v: isinstance(v, (tuple, list)) and all(
        isinstance(x, int) and not isinstance(x, bool) for x in v),
}


def check_config_types(config: Any) -> None:
    """Config dataclasses come from model files strangers write: check every field's type
    before any arithmetic uses it (a string height would fail somewhere far away)."""
    for f in fields(config):
        check = _TYPE_CHECKS.get(f.type if isinstance(f.type, str) else getattr(f.type, "__name__", ""))
        value = getattr(config, f.name)
        if check is not None and not check(value):
            raise ConfigError(f"{type(config).__name__}.{f.name}: expected {f.type}, got {value!r}")


def extractor_from_config(config: dict[str, Any]) -> FeatureExtractor:
    kind = config.get("type")
    if kind == "image":
        from .image import ImageFeatureConfig, ImageFeatures

        return ImageFeatures(ImageFeatureConfig.from_dict(config))
    if kind == "audio":
        from .audio import AudioFeatureConfig, AudioFeatures

        return AudioFeatures(AudioFeatureConfig.from_dict(config))
    raise ConfigError(f"unknown feature type {kind!r} (expected 'image' or 'audio')")


def default_extractor(modality: str, **overrides: Any) -> FeatureExtractor:
    return extractor_from_config({"type": modality, **overrides})


def short_reason(exc: BaseException) -> str:
    """The first line of a decoder's error message (libsndfile and Pillow write several)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
