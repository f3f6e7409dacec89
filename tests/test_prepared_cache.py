"""Prepared training inputs kept between epochs (data.PreparedCache): the same features bit for
bit as preparing afresh, inputs that augmentation never changes, a memory budget that holds,
bad files that stay bad samples, and training with the cache equal to training without it."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ctctool import data
from ctctool.augmentation import AugmentPolicy
from ctctool.cli import app
from ctctool.codec import Codec
from ctctool.data import (
    BadSample,
    PreparedCache,
    TrainingDataset,
    TrainingItem,
    prepare_training_items,
)
from ctctool.errors import FeatureError, OptionError
from ctctool.features.audio import AudioFeatures
from ctctool.features.image import ImageFeatureConfig, ImageFeatures
from ctctool.manifest import read_manifest
from ctctool.model import NetworkShape
from ctctool.train import TrainConfig, train

SPEECH = Path(__file__).resolve().parents[1] / "data" / "speech" / "train.jsonl"
# Training's own preparation of a new image model: centre normalization and slant correction.
PREPARED_IMAGES = ImageFeatures(ImageFeatureConfig(center_normalize=True, center_ink="relative", deslant=True))


@pytest.fixture(scope="module")
def image_items(tiny_data):
    return read_manifest(tiny_data["train"])[:6]


@pytest.fixture(scope="module")
def audio_items():
    return read_manifest(SPEECH)[:4]


def _same_features(a, b) -> bool:
    return a.values.dtype == b.values.dtype and np.array_equal(a.values, b.values) and a.axis == b.axis \
        and a.source_height == b.source_height and a.page_size == b.page_size


@settings(max_examples=25, deadline=None)
@given(index=st.integers(0, 5), seed=st.integers(0, 2**32), preset=st.sampled_from(["none", "light", "strong"]))
def test_an_image_line_prepared_once_gives_what_loading_gives_for_any_augmentation(image_items, index, seed,
                                                                                  preset):
    item, policy = image_items[index], AugmentPolicy.parse(preset)
    line = PREPARED_IMAGES.prepare(item)
    before = line.values.copy()
    for _ in range(2):  # a second epoch reads the same kept line
        rng = random.Random(seed) if policy.active else None
        kept = PREPARED_IMAGES.finish(item, line, rng, policy)
        fresh = PREPARED_IMAGES.load(item, random.Random(seed) if policy.active else None, policy)
        assert _same_features(kept, fresh)
    assert np.array_equal(line.values, before) and not line.values.flags.writeable
    assert line.nbytes == line.values.nbytes > 0


@settings(max_examples=10, deadline=None)
@given(index=st.integers(0, 3), seed=st.integers(0, 2**32))
def test_an_audio_clip_prepared_once_gives_what_loading_gives(audio_items, index, seed):
    extractor, item = AudioFeatures(), audio_items[index]
    clip = extractor.prepare(item)
    before = clip.samples.copy()
    for rng_seed in (seed, seed):
        kept = extractor.finish(item, clip, random.Random(rng_seed))
        assert _same_features(kept, extractor.load(item, random.Random(rng_seed)))
    assert _same_features(extractor.finish(item, clip), extractor.load(item))  # no augmentation
    assert np.array_equal(clip.samples, before) and not clip.samples.flags.writeable


class CountingImages(ImageFeatures):
    def __init__(self, config):
        super().__init__(config)
        self.prepared: list[str] = []

    def prepare(self, item):
        self.prepared.append(item.where)
        return super().prepare(item)


def _epoch_keys(count: int, epoch: int) -> list[tuple[int, int]]:
    rng = random.Random(epoch)
    return [(index, rng.getrandbits(63)) for index in range(count)]


def test_the_dataset_prepares_each_item_once_and_gives_the_same_samples(image_items):
    entries = [TrainingItem(item, (1,), 10) for item in image_items]
    counting = CountingImages(PREPARED_IMAGES.config)
    cached = TrainingDataset(entries, counting, augment="default", cache=PreparedCache(1 << 30))
    plain = TrainingDataset(entries, PREPARED_IMAGES, augment="default")
    for epoch in range(3):
        for key in _epoch_keys(len(entries), epoch):
            a, b = cached[key], plain[key]
            assert np.array_equal(a[0], b[0]) and a[1:] == b[1:]
    assert sorted(counting.prepared) == sorted(item.where for item in image_items)  # once each
    assert len(cached.cache) == len(entries)
    assert cached.cache.used_bytes == sum(PREPARED_IMAGES.prepare(item).nbytes for item in image_items)


def test_the_budget_bounds_what_is_kept_and_the_rest_is_prepared_on_every_load(image_items):
    sizes = [PREPARED_IMAGES.prepare(item).nbytes for item in image_items]
    budget = sizes[0] + sizes[1]  # room for the first two lines
    counting = CountingImages(PREPARED_IMAGES.config)
    dataset = TrainingDataset([TrainingItem(item, (1,), 10) for item in image_items], counting, augment="none",
                              cache=PreparedCache(budget))
    for _ in range(2):
        for index in range(len(image_items)):
            assert np.array_equal(dataset[(index, 0)][0], PREPARED_IMAGES.load(image_items[index]).values)
    assert len(dataset.cache) == 2 and dataset.cache.used_bytes <= budget
    assert len(counting.prepared) == 2 + 2 * (len(image_items) - 2)
    none_kept = TrainingDataset([TrainingItem(image_items[0], (1,), 10)], counting, cache=PreparedCache(0))
    none_kept[(0, 1)]
    assert len(none_kept.cache) == 0


def test_a_bad_file_stays_a_bad_sample_on_every_epoch_and_is_not_kept(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    (tmp_path / "m.jsonl").write_text('{"path": "broken.png", "text": "ab"}\n', encoding="utf-8")
    item = read_manifest(tmp_path / "m.jsonl")[0]
    dataset = TrainingDataset([TrainingItem(item, (1, 2), 40)], PREPARED_IMAGES, cache=PreparedCache(1 << 30))
    for seed in (1, 2):
        sample = dataset[(0, seed)]
        assert isinstance(sample, BadSample) and "m.jsonl:1" in sample.where
    assert len(dataset.cache) == 0
    with pytest.raises(FeatureError, match="m.jsonl:1"):
        PREPARED_IMAGES.prepare(item)


class Messages:
    def __init__(self):
        self.lines: list[str] = []

    def start(self, total_steps, done_steps): ...
    def step(self, step, loss, rate): ...
    def evaluated(self, step, metrics): ...
    def close(self): ...

    def message(self, text):
        self.lines.append(text)


def prepare_calls(monkeypatch) -> list[str]:
    """The manifest places of the items ImageFeatures.prepare is called on, from now on."""
    calls: list[str] = []
    original = ImageFeatures.prepare

    def counting(self, item):
        calls.append(item.where)
        return original(self, item)

    monkeypatch.setattr(ImageFeatures, "prepare", counting)
    return calls


def test_training_with_kept_inputs_equals_training_without(tiny_data, tmp_path, monkeypatch):
    """Three epochs of 6 batches with full augmentation from step 1: a kept input that differed
    from a fresh one in any value would change the weights. The cache must also be used: each
    line prepared once (to measure it, before training), against once per load without it. 1 MiB keeps about 30 of the 48 lines
    (35 KB each): the rest are prepared on every load, and training says so once."""
    prepared = prepare_calls(monkeypatch)
    items = read_manifest(tiny_data["train"])
    states, counts, messages = {}, {}, {}
    for cache_mb in (0, 1, 64):
        prepared.clear()
        out = tmp_path / str(cache_mb) / "m.pt"
        messages[cache_mb] = Messages()
        train(items, output=str(out), run_dir=str(out.parent / "run"), extractor=PREPARED_IMAGES,
              config=TrainConfig(max_steps=18, batch_size=8, seed=4, eval_every=9, augment_warmup=0.0,
                                 num_workers=0, cache_mb=cache_mb),
              shape=NetworkShape(hidden=16, channels=(8, 8, 8, 8)), monitor=messages[cache_mb])
        counts[cache_mb] = len(prepared)
        states[cache_mb] = torch.load(out.parent / "run" / "resume.pt", weights_only=True)["model"]
    for cache_mb in (1, 64):
        assert all(torch.equal(states[0][key], states[cache_mb][key]) for key in states[0])
    # The start reads every line in full once to measure its prepared width (48); without a
    # cache each of the 18 x 8 loads prepares again, with room for all none does.
    assert counts[0] == 48 + 18 * 8
    assert counts[64] == 48
    assert 48 < counts[1] < counts[0]
    notes = [line for line in messages[1].lines if "--cache-mb" in line]
    assert len(notes) == 1 and "--cache-mb 1 keeps" in notes[0] and "no room for more" in notes[0]
    assert not [line for mb in (0, 64) for line in messages[mb].lines if "--cache-mb" in line]


def test_validation_keeps_its_prepared_lines_and_scores_what_it_scored_without(tiny_data, tmp_path, monkeypatch):
    """Validation reads the same lines, un-augmented, at every validation: with room each is
    prepared once in the run, and the scores and weights are those of a run that keeps none."""
    val_items = read_manifest(tiny_data["val"])
    val_where = {item.where for item in val_items}
    prepared = prepare_calls(monkeypatch)
    items = read_manifest(tiny_data["train"])
    histories, states, val_prepares = {}, {}, {}
    for cache_mb in (0, 64):
        prepared.clear()
        out = tmp_path / str(cache_mb) / "m.pt"
        result = train(items, output=str(out), run_dir=str(out.parent / "run"), extractor=PREPARED_IMAGES,
                       val_items=val_items, codec=Codec.from_texts(i.text for i in [*items, *val_items]),
                       config=TrainConfig(max_steps=12, batch_size=8, seed=5, eval_every=4, num_workers=0,
                                          cache_mb=cache_mb),
                       shape=NetworkShape(hidden=16, channels=(8, 8, 8, 8)))
        histories[cache_mb] = [{k: v for k, v in entry.items() if k != "ms_per_step"} for entry in result.history]
        states[cache_mb] = torch.load(out.parent / "run" / "resume.pt", weights_only=True)["model"]
        val_prepares[cache_mb] = sum(where in val_where for where in prepared)
    assert histories[0] == histories[64] and len(histories[0]) == 3
    assert all(torch.equal(states[0][key], states[64][key]) for key in states[0])
    assert val_prepares[0] == 3 * len(val_items)
    assert val_prepares[64] == len(val_items)


def test_validation_keeps_its_lines_where_training_keeps_none():
    training = PreparedCache.for_training(64, workers=0)
    assert PreparedCache.for_validation(training, 64) is training  # one budget for both
    own = PreparedCache.for_validation(PreparedCache.for_training(64, workers=2), 64)
    assert own.budget_bytes == 64 * 2**20  # validation loads in the training process even then
    assert PreparedCache.for_validation(PreparedCache.for_training(0, workers=2), 0).budget_bytes == 0


def test_measuring_the_lines_fills_the_cache_with_the_lines_training_will_load(image_items):
    too_long = replace(image_items[0], text="x" * 400, source="crafted:1")  # too narrow for its text
    items = [*image_items, too_long]
    cache = PreparedCache(1 << 30)
    kept, report = prepare_training_items(items, Codec.from_texts(i.text for i in items), PREPARED_IMAGES, (2, 2),
                                          exact_frames=True, cache=cache)
    assert report.too_short == ["crafted:1"] and len(kept) == len(image_items)
    assert len(cache) == len(image_items)  # the rejected line is not kept
    assert cache.used_bytes == sum(PREPARED_IMAGES.prepare(item).nbytes for item in image_items)
    for entry in kept:
        line = cache.get(entry.item, lambda: pytest.fail("measured, so kept"))
        assert np.array_equal(line.values, PREPARED_IMAGES.prepare(entry.item).values)
        assert entry.frames == line.values.shape[1]


@pytest.fixture
def hostile_mix(image_items, tmp_path):
    """The tiny lines with two broken files, a line too narrow for its text and an empty
    transcript among them."""
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    (tmp_path / "m.jsonl").write_text('{"path": "broken.png", "text": "ab"}\n{"path": "broken.png", "text": "cd"}\n',
                                      encoding="utf-8")
    first_bad, second_bad = read_manifest(tmp_path / "m.jsonl")
    too_long = replace(image_items[0], text="x" * 400, source="crafted:1")
    empty = replace(image_items[1], text="", source="crafted:2")
    return [image_items[0], first_bad, *image_items[1:3], too_long, empty, second_bad, *image_items[3:]]


@pytest.mark.parametrize("exact", [True, False])
def test_measuring_in_worker_processes_gives_what_measuring_here_gives(hostile_mix, monkeypatch, exact):
    """Training measures its lines in as many processes as it has threads: the same items, sizes,
    report and kept inputs (equal, and read-only as prepare gives them) as in one process."""
    monkeypatch.setattr(data, "POOL_FROM", 1)  # a pool even for these few lines, one line a task
    monkeypatch.setattr(data, "_CHUNK", 1)
    codec = Codec.from_texts(item.text for item in hostile_mix)
    results = {}
    for processes in (1, 2):
        cache = PreparedCache(1 << 30)
        kept, report = prepare_training_items(hostile_mix, codec, PREPARED_IMAGES, (2, 2), skip_bad=True,
                                              exact_frames=exact, cache=cache, processes=processes)
        results[processes] = kept, report, cache
    (kept_here, report_here, cache_here), (kept_pool, report_pool, cache_pool) = results[1], results[2]
    assert kept_pool == kept_here and len(kept_here) == 6
    assert report_pool == report_here
    assert len(report_here.bad_files) == 2 and report_here.empty_text == ["crafted:2"]
    assert report_here.too_short == ["crafted:1"]  # read in full either way: its header could not tell
    assert len(cache_pool) == len(cache_here) == (6 if exact else 0)
    assert cache_pool.used_bytes == cache_here.used_bytes
    for entry in kept_here if exact else []:
        here = cache_here.get(entry.item, lambda: pytest.fail("kept"))
        pooled = cache_pool.get(entry.item, lambda: pytest.fail("kept"))
        assert np.array_equal(pooled.values, here.values) and pooled.step == here.step and pooled.pad == here.pad
        assert not pooled.values.flags.writeable


def test_measuring_in_worker_processes_stops_at_the_first_bad_file_in_manifest_order(hostile_mix, monkeypatch):
    monkeypatch.setattr(data, "POOL_FROM", 1)
    codec = Codec.from_texts(item.text for item in hostile_mix)
    errors = []
    for processes in (1, 2):
        with pytest.raises(FeatureError) as caught:
            prepare_training_items(hostile_mix, codec, PREPARED_IMAGES, (2, 2), exact_frames=True,
                                   cache=PreparedCache(1 << 30), processes=processes)
        errors.append(str(caught.value))
    assert errors[0] == errors[1] and "m.jsonl:1" in errors[0]


def test_an_unexpected_error_in_a_measuring_process_is_raised_here(image_items, monkeypatch):
    monkeypatch.setattr(data, "POOL_FROM", 1)

    def broken(self, item, at_least=0, exact=False, prepare=None):
        raise ValueError("a bug, not a bad file")

    monkeypatch.setattr(ImageFeatures, "frames_hint", broken)  # forked workers inherit it
    with pytest.raises(RuntimeError, match="ValueError: a bug, not a bad file"):
        prepare_training_items(image_items, Codec.from_texts(i.text for i in image_items), PREPARED_IMAGES, (2, 2),
                               exact_frames=True, processes=2)


def test_a_run_keeps_inputs_only_where_its_own_process_loads_them():
    assert PreparedCache.for_training(1024, workers=0).budget_bytes == 1024 * 2**20
    assert PreparedCache.for_training(0, workers=0).budget_bytes == 0
    assert PreparedCache.for_training(1024, workers=2).budget_bytes == 0  # workers start afresh each epoch


@pytest.mark.parametrize("value", [-1, True, 1.5, 2**40])
def test_the_cache_budget_is_checked(value):
    with pytest.raises(OptionError, match="--cache-mb"):
        TrainConfig(cache_mb=value)


def test_the_cli_refuses_a_negative_cache_budget(tiny_data, tmp_path):
    result = CliRunner().invoke(app, ["train", str(tiny_data["train"]), "-o", str(tmp_path / "m.pt"),
                                      "--cache-mb", "-1"])
    assert result.exit_code == 2 and "--cache-mb" in result.output
