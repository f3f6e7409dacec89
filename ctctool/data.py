"""Datasets over manifests: CTC feasibility checks, padding collate with lengths, length bucketing."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .augmentation import AugmentPolicy
from .codec import Codec
from .ctc import min_frames, output_frames
from .errors import CodecError, FeatureError
from .features import FeatureExtractor
from .manifest import ManifestItem


@dataclass(frozen=True)
class TrainingItem:
    item: ManifestItem
    labels: tuple[int, ...]
    frames: int  # feature frames (input columns / STFT frames), from headers or exact (exact_frames)


@dataclass
class PreparationReport:
    """What happened to every item: none disappears without being counted here."""

    used: int = 0
    too_short: list[str] = field(default_factory=list)  # item.where of inputs too narrow/short for CTC
    empty_text: list[str] = field(default_factory=list)
    bad_files: list[str] = field(default_factory=list)  # error messages, when skipping bad files
    lenient_skipped_chars: Counter[str] = field(default_factory=Counter)


def prepare_training_items(items: Sequence[ManifestItem], codec: Codec, extractor: FeatureExtractor,
                           pool_time: Sequence[int], *, lenient: bool = False, skip_bad: bool = False,
                           exact_frames: bool = False, cache: PreparedCache | None = None, processes: int = 1
                           ) -> tuple[list[TrainingItem], PreparationReport]:
    """Encode transcripts and read input sizes; drop (and count) items CTC cannot learn from.

    With ``exact_frames`` each item's size is the one its preparation gives (a centre-normalized
    line can be 0.5-2x its plainly scaled width), read in full where headers cannot tell; the
    batches are grouped by these sizes, so exact ones keep the padding small. An item read in
    full to measure it is kept in ``cache`` (when given and while it has room), so the first
    epoch does not prepare it again. Reading in full is the slow part (2-4 ms a line), so with
    ``processes`` > 1 and at least ``POOL_FROM`` items it runs in that many worker processes;
    the result is the same.

    Unknown characters raise CodecError listing them all with counts, unless ``lenient``.
    Unreadable files raise FeatureError at the first one in manifest order, unless ``skip_bad``.
    """
    report = PreparationReport()
    if not lenient:
        unknown = codec.unknown_characters(item.text or "" for item in items)
        if unknown:
            from .codec import describe_unknown

            raise CodecError(
                f"{sum(unknown.values())} characters in the transcripts are not in the alphabet: "
                f"{describe_unknown(unknown)} (use --lenient to skip them)", dict(unknown))
    else:
        report.lenient_skipped_chars = codec.unknown_characters(item.text or "" for item in items)
    requests: list[tuple[ManifestItem, tuple[int, ...]]] = []
    for item in items:
        if item.text is None:
            raise FeatureError(item.where, "text: missing (training needs a transcript on every line)")
        labels = tuple(codec.encode(item.text, lenient=lenient))
        if not labels:
            report.empty_text.append(item.where)
            continue
        requests.append((item, labels))
    keep = cache is not None and cache.budget_bytes > 0
    # Enough input frames for CTC: the time pools divide by their product, floored.
    measures = [_Measure(item, min_frames(labels) * math.prod(pool_time), exact_frames, keep)
                for item, labels in requests]
    prepared = []
    for (item, labels), measured in zip(requests, _measured(extractor, measures, processes)):
        if isinstance(measured, FeatureError):
            if not skip_bad:
                raise measured
            report.bad_files.append(str(measured))
            continue
        frames, kept = measured
        if output_frames(frames, pool_time) < min_frames(labels):
            report.too_short.append(item.where)
            continue
        if keep and kept is not None:
            cache.get(item, lambda kept=kept: kept)
        prepared.append(TrainingItem(item, labels, frames))
    report.used = len(prepared)
    return prepared, report


# Items from which measuring runs in worker processes: forking a pool costs about 0.1 s, the
# time of measuring 40 lines.
POOL_FROM = 256
_CHUNK = 16  # items a worker measures per round trip


@dataclass(frozen=True)
class _Measure:
    """One item to size: frames_hint's question, and whether to hand back what it prepared."""

    item: ManifestItem
    at_least: int
    exact: bool
    keep: bool


def _measure(extractor: FeatureExtractor, measure: _Measure) -> tuple[int, object | None] | FeatureError:
    """(frames, the prepared input when it was read in full and ``keep``) or the item's error."""
    read: list[object] = []

    def prepare() -> object:
        read.append(extractor.prepare(measure.item))
        return read[-1]

    try:
        frames = extractor.frames_hint(measure.item, at_least=measure.at_least, exact=measure.exact,
                                       prepare=prepare)
    except FeatureError as exc:
        return exc
    return frames, (read[-1] if read and measure.keep else None)


def _measured(extractor: FeatureExtractor, measures: Sequence[_Measure], processes: int
              ) -> Iterator[tuple[int, object | None] | FeatureError]:
    """``_measure`` of each, in order: in this process, or in ``processes`` workers."""
    if processes <= 1 or len(measures) < POOL_FROM:
        for measure in measures:
            yield _measure(extractor, measure)
        return
    from .reading import in_workers, worker_pool

    with worker_pool(extractor, processes) as pool:
        for measured in in_workers(pool, _measure, measures, _CHUNK):
            if not isinstance(measured, FeatureError) and measured[1] is not None:
                _read_only(measured[1])  # pickling across processes made its arrays writable again
            yield measured


def _read_only(prepared: object) -> None:
    """Make a prepared input's arrays read-only again, as ``prepare`` gave them (a kept input is
    shared by every epoch, so an in-place write by augmentation must fail)."""
    for name in getattr(prepared, "__dataclass_fields__", {}):
        value = getattr(prepared, name)
        if isinstance(value, np.ndarray):
            value.setflags(write=False)


@dataclass(frozen=True)
class BadSample:
    """An item that failed to load, returned (not raised) by the dataset: DataLoader workers
    would wrap a raised error in a RuntimeError. Plain strings, so it pickles across workers."""

    where: str  # "manifest:line"
    reason: str  # "field: what is wrong"

    def error(self) -> FeatureError:
        return FeatureError(self.where, self.reason)


class PreparedCache:
    """Each training item's prepared input (``FeatureExtractor.prepare``: decoded, scaled,
    normalized, before augmentation), kept once read while ``budget_bytes`` allows: when
    training measures the lines at start (prepare_training_items, exact_frames), else on its
    first load.

    Preparation is the same on every epoch; augmentation is not. On a 2-core machine preparing
    a handwriting line took about 2.8 of its 3.7 ms (decoding, centre normalization, slant
    correction), so a run of 20 epochs did that work 19 times too often. Items keep their
    place once in; when the budget is spent the rest are prepared on every load, as before.
    Inputs are keyed by their manifest item (equal items prepare equally). Loads come from one
    thread at a time (the read-ahead thread or the training loop)."""

    def __init__(self, budget_bytes: int):
        self.budget_bytes = max(0, int(budget_bytes))
        self.used_bytes = 0
        self.full = False  # an input was left out for want of room (not set when the budget is 0)
        self._kept: dict[ManifestItem, object] = {}

    def __len__(self) -> int:
        return len(self._kept)

    def get(self, item: ManifestItem, prepare: Callable[[], object]) -> object:
        """``item``'s prepared input: the kept one, or ``prepare()``'s (kept if it fits)."""
        kept = self._kept.get(item)
        if kept is not None:
            return kept
        prepared = prepare()
        size = int(getattr(prepared, "nbytes", 0))
        if self.used_bytes + size <= self.budget_bytes:
            self._kept[item] = prepared
            self.used_bytes += size
        elif self.budget_bytes:
            self.full = True
        return prepared

    @classmethod
    def for_training(cls, cache_mb: int, workers: int) -> PreparedCache:
        """The cache a run gets: ``cache_mb`` MiB when the training process loads its batches;
        none with DataLoader ``workers``, which start afresh each epoch (what one kept would be
        lost with it, and each would spend the budget again)."""
        return cls(cache_mb * 2**20 if workers == 0 else 0)

    @classmethod
    def for_validation(cls, training: PreparedCache, cache_mb: int) -> PreparedCache:
        """Validation's cache: the training one, so that one budget bounds both (image lines
        measured at the start are kept before any validation; otherwise the first to load is
        kept), or, where training keeps none because DataLoader workers load its batches, a
        cache of its own: validation loads in this process."""
        return training if training.budget_bytes else cls(cache_mb * 2**20)


class KeptExtractor:
    """``extractor`` whose loads start from ``cache``'s prepared inputs: for validation inside
    training, which reads the same sets, un-augmented, at every validation. The same features
    bit for bit as ``extractor``'s; everything else is ``extractor``'s own."""

    def __init__(self, extractor: FeatureExtractor, cache: PreparedCache):
        self.extractor = extractor
        self.cache = cache

    def load(self, item: ManifestItem, rng: random.Random | None = None, policy: AugmentPolicy | None = None):
        prepared = self.cache.get(item, lambda: self.extractor.prepare(item))
        return self.extractor.finish(item, prepared, rng, policy)

    def __getattr__(self, name: str):
        if name in ("extractor", "cache"):  # not yet set (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.extractor, name)


class TrainingDataset(torch.utils.data.Dataset):
    """Indexed by ``(index, augment_seed)``: augmentation is a pure function of the seed, so a
    resumed run sees exactly the batches the interrupted one would have. Prepared inputs are
    kept in ``cache`` (none kept without one); a kept input gives the same features bit for bit."""

    def __init__(self, items: Sequence[TrainingItem], extractor: FeatureExtractor, *,
                 augment: AugmentPolicy | str | bool = True, cache: PreparedCache | None = None):
        self.items = list(items)
        self.extractor = extractor
        self.policy = augment if isinstance(augment, AugmentPolicy) else AugmentPolicy.parse(augment)
        self.cache = cache if cache is not None else PreparedCache(0)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: tuple[int, int] | tuple[int, int, float]):
        """``key``: (index, augmentation seed[, augmentation scale 0..1, the warm-up's factor])."""
        index, seed, *scale = key
        entry = self.items[index]
        policy = self.policy.scaled(scale[0]) if scale else self.policy
        rng = random.Random(seed) if policy.active else None
        try:
            prepared = self.cache.get(entry.item, lambda: self.extractor.prepare(entry.item))
            features = self.extractor.finish(entry.item, prepared, rng, policy)
        except FeatureError as exc:
            return BadSample(exc.where, exc.reason)
        return features.values, entry.labels, entry.item.where


@dataclass
class Batch:
    """A padded training batch; the items that failed to load are in ``bad``."""

    features: torch.Tensor | None  # float32 [B, 1, feature_dim, frames], zero-padded; None when empty
    lengths: torch.Tensor | None  # int64 [B]: true frames per item
    targets: torch.Tensor | None  # int64 [sum of label lengths]: labels, concatenated
    target_lengths: torch.Tensor | None  # int64 [B]
    wheres: tuple[str, ...]  # "manifest:line" of each kept item, to name them in errors
    bad: tuple[BadSample, ...]

    @property
    def size(self) -> int:
        return len(self.wheres)


def collate(samples: list) -> Batch:
    """Pad features to the longest in the batch (zeros = background / silence), keep true lengths."""
    bad = tuple(sample for sample in samples if isinstance(sample, BadSample))
    kept = [sample for sample in samples if not isinstance(sample, BadSample)]
    if not kept:
        return Batch(None, None, None, None, (), bad)
    features, lengths = pad_batch([values for values, _, _ in kept])
    targets = torch.tensor([label for _, labels, _ in kept for label in labels], dtype=torch.long)
    target_lengths = torch.tensor([len(labels) for _, labels, _ in kept], dtype=torch.long)
    return Batch(features, lengths, targets, target_lengths, tuple(where for _, _, where in kept), bad)


def bucketed_batches(lengths: Sequence[int], batch_size: int, *, seed: int, epoch: int,
                     pool_batches: int = 32) -> list[list[tuple[int, int]]]:
    """One epoch of batches of similar length, in a shuffled order that depends only on (seed, epoch).

    Items are shuffled, cut into pools of ``pool_batches`` batches, sorted by length inside a
    pool (so padding stays small), batched, and the batches shuffled. Each entry carries the
    augmentation seed for that item in that epoch.
    """
    rng = random.Random(f"{seed}:{epoch}")
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch_size * pool_batches
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start:start + pool], key=lambda i: lengths[i])
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return [[(index, rng.getrandbits(63)) for index in batch] for batch in batches]


def pad_batch(values: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Inference-side padding: arrays [F, T_i] -> ([B, 1, F, T_max], lengths)."""
    frames = [v.shape[1] for v in values]
    batch = torch.zeros(len(values), 1, values[0].shape[0], max(frames))
    rows = batch.numpy()  # numpy copies in, read-only arrays included (kept prepared inputs)
    for row, v in enumerate(values):
        rows[row, 0, :, : v.shape[1]] = v
    return batch, torch.tensor(frames, dtype=torch.long)
