"""Running a loaded model over manifest items: batched by length, results in input order."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from .checkpoint import LoadedModel
from .ctc import output_frames
from .data import pad_batch
from .errors import ItemError
from .features import Features, FrameAxis
from .manifest import ManifestItem


@dataclass
class NetworkOutput:
    item: ManifestItem
    log_probs: np.ndarray | None  # float32 [frames, classes], natural log; None when ``error``
    axis: FrameAxis | None  # CTC frame -> source position (px column / seconds)
    error: ItemError | None = None
    source_height: int = 0  # images: line height in source pixels
    page_size: tuple[int, int] | None = None  # images: (width, height) of the whole image file


def output_axis(features: Features, time_stride: int) -> FrameAxis:
    """The feature axis rescaled to CTC frames."""
    axis = features.axis
    return FrameAxis(origin=axis.origin, step=axis.step * time_stride, unit=axis.unit, extent=axis.extent)


def _chunks(items: Iterable[ManifestItem], size: int) -> Iterator[list[ManifestItem]]:
    chunk: list[ManifestItem] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@torch.inference_mode()
def run_network(model: LoadedModel, items: Iterable[ManifestItem], *, batch_size: int = 16,
                device: str | torch.device = "cpu") -> Iterator[NetworkOutput]:
    """Log-probabilities for every item, in input order. Items that fail carry their error
    instead of stopping the run; callers decide whether an error is fatal."""
    network = model.network
    stride = model.time_stride
    pool_time = model.model_config.pool_time
    # Read ahead a window of items, sort it by length so batches waste little padding.
    for window in _chunks(items, max(1, batch_size) * 8):
        outputs: list[NetworkOutput | None] = [None] * len(window)
        loaded: list[tuple[int, Features]] = []
        for position, item in enumerate(window):
            try:
                features = model.extractor.load(item)
            except ItemError as exc:
                outputs[position] = NetworkOutput(item, None, None, exc)
                continue
            if output_frames(features.values.shape[1], pool_time) < 1:
                outputs[position] = NetworkOutput(item, None, None, ItemError(
                    item.where, f"path: input too short for this model ({features.values.shape[1]} "
                                f"frames, needs at least {stride})"))
                continue
            loaded.append((position, features))
        loaded.sort(key=lambda pair: pair[1].values.shape[1])
        for start in range(0, len(loaded), batch_size):
            group = loaded[start:start + batch_size]
            batch, lengths = pad_batch([features.values for _, features in group])
            log_probs, out_lengths = network(batch.to(device), lengths.to(device))
            log_probs = log_probs.float().cpu().numpy()
            for row, (position, features) in enumerate(group):
                frames = int(out_lengths[row])
                item_log_probs = log_probs[row, :frames]
                if np.isnan(item_log_probs).any() or np.isposinf(item_log_probs).any():
                    outputs[position] = NetworkOutput(window[position], None, None, ItemError(
                        window[position].where, "path: the network gave non-finite scores for this input"))
                    continue
                outputs[position] = NetworkOutput(window[position], np.ascontiguousarray(item_log_probs),
                                                  output_axis(features, stride),
                                                  source_height=features.source_height,
                                                  page_size=features.page_size)
        yield from outputs  # type: ignore[misc]
