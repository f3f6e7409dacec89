"""Running a loaded model over manifest items: batched by length, results in input order."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch

from .checkpoint import LoadedModel
from .ctc import output_frames
from .data import pad_batch
from .errors import ItemError
from .features import Features, FrameAxis
from .manifest import ManifestItem
from .reading import feature_windows


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
    return replace(features.axis, step=features.axis.step * time_stride)


# Long inputs: windows of this many feature frames (audio: 10 ms hops, 30 s; images: pixel
# columns at the model's height), each seeing CONTEXT_FRACTION of a window of real input on
# either side of the part it keeps, so no kept frame sits near a window's zero-padded edge.
DEFAULT_WINDOW_FRAMES = {"audio": 3000, "image": 4000}
CONTEXT_FRACTION = 0.2


@dataclass(frozen=True)
class Windows:
    """How an input of ``frames`` feature frames is cut: ``(start, end, keep_from, keep_to)`` per
    window, in input frames; starts and keeps are multiples of ``stride`` so that CTC frame j of a
    window is CTC frame j + start / stride of the whole input (the pooling grid is the same)."""

    window: int  # feature frames per window (a multiple of the stride)
    context: int  # frames of real input each side of the kept part (a multiple of the stride)
    stride: int

    @classmethod
    def for_model(cls, window_frames: int, stride: int) -> Windows:
        window = max(4 * stride, window_frames // stride * stride)
        context = max(stride, int(window * CONTEXT_FRACTION) // stride * stride)
        return cls(window, min(context, (window - stride) // 2 // stride * stride), stride)

    def cuts(self, frames: int) -> list[tuple[int, int, int, int]]:
        kept = self.window - 2 * self.context
        usable = frames // self.stride * self.stride  # frames past the last whole CTC frame give none
        result, keep_from = [], 0
        while keep_from < usable:
            keep_to = min(usable, keep_from + kept + (self.context if keep_from == 0 else 0))
            if usable - keep_to < self.stride:
                keep_to = usable
            start = max(0, keep_from - self.context)
            end = frames if keep_to == usable else min(frames, keep_to + self.context)
            result.append((start, end, keep_from, keep_to))
            keep_from = keep_to
        return result


def windowed_log_probs(network, values: np.ndarray, windows: Windows, batch_size: int, device) -> np.ndarray:
    """Log-probabilities of one long input [F, T] run window by window (``batch_size`` windows
    per network call) and stitched: each window gives only the CTC frames of its kept part."""
    pieces = []
    cuts = windows.cuts(values.shape[1])
    for first in range(0, len(cuts), batch_size):
        group = cuts[first:first + batch_size]
        batch, lengths = pad_batch([values[:, start:end] for start, end, _, _ in group])
        log_probs, out_lengths = network(batch.to(device), lengths.to(device))
        log_probs = log_probs.float().cpu().numpy()
        for row, (start, _, keep_from, keep_to) in enumerate(group):
            low, high = (keep_from - start) // windows.stride, (keep_to - start) // windows.stride
            pieces.append(log_probs[row, low:min(high, int(out_lengths[row]))])
    return np.concatenate(pieces, axis=0)


@torch.inference_mode()
def run_network(model: LoadedModel, items: Iterable[ManifestItem], *, batch_size: int = 16,
                device: str | torch.device = "cpu") -> Iterator[NetworkOutput]:
    """Log-probabilities for every item, in input order. Items that fail carry their error
    instead of stopping the run; callers decide whether an error is fatal."""
    network = model.network
    stride = model.time_stride
    pool_time = model.model_config.pool_time
    window_frames = model.window_frames if model.window_frames is not None \
        else DEFAULT_WINDOW_FRAMES.get(model.modality, 0)
    windows = Windows.for_model(window_frames, stride) if window_frames else None
    # Read ahead a window of items (in reader processes with model.read_workers, one window
    # ahead), sort it by length so batches waste little padding.
    for window, read in feature_windows(model.extractor, items, max(1, batch_size) * 8, model.read_workers):
        outputs: list[NetworkOutput | None] = [None] * len(window)
        loaded: list[tuple[int, Features]] = []
        for position, (item, features) in enumerate(zip(window, read)):
            if isinstance(features, ItemError):
                outputs[position] = NetworkOutput(item, None, None, features)
                continue
            if output_frames(features.values.shape[1], pool_time) < 1:
                outputs[position] = NetworkOutput(item, None, None, ItemError(
                    item.where, f"path: input too short for this model ({features.values.shape[1]} "
                                f"frames, needs at least {stride})"))
                continue
            if windows is not None and features.values.shape[1] > windows.window:
                item_log_probs = windowed_log_probs(network, features.values, windows, batch_size, device)
                outputs[position] = _checked(window[position], item_log_probs, features, stride)
                continue
            loaded.append((position, features))
        loaded.sort(key=lambda pair: pair[1].values.shape[1])
        for start in range(0, len(loaded), batch_size):
            group = loaded[start:start + batch_size]
            batch, lengths = pad_batch([features.values for _, features in group])
            log_probs, out_lengths = network(batch.to(device), lengths.to(device))
            log_probs = log_probs.float().cpu().numpy()
            for row, (position, features) in enumerate(group):
                outputs[position] = _checked(window[position], log_probs[row, :int(out_lengths[row])], features,
                                             stride)
        yield from outputs  # type: ignore[misc]


def _checked(item: ManifestItem, log_probs: np.ndarray, features: Features, stride: int) -> NetworkOutput:
    if np.isnan(log_probs).any() or np.isposinf(log_probs).any():
        return NetworkOutput(item, None, None, ItemError(
            item.where, "path: the network gave non-finite scores for this input"))
    return NetworkOutput(item, np.ascontiguousarray(log_probs), output_axis(features, stride),
                         source_height=features.source_height, page_size=features.page_size)
