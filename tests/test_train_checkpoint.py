from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest
import torch
from stop_at import Interrupt, StopAt

from ctctool.checkpoint import describe_model, load_model, read_model_file
from ctctool.errors import CheckpointError, CodecError, ConfigError
from ctctool.features import default_extractor
from ctctool.manifest import read_manifest
from ctctool.model import NetworkShape
from ctctool.train import SilentMonitor, TrainConfig, lr_factor, train

SMALL = NetworkShape(hidden=32, channels=(8, 16, 16, 16))


def run(tiny_data, out, config, **kwargs):
    return train(read_manifest(tiny_data["train"]), output=str(out), run_dir=str(out.parent / "run"),
                 extractor=default_extractor("image"), config=config, shape=SMALL, **kwargs)


def test_loss_falls_on_a_few_steps(tiny_data, tmp_path):
    result = run(tiny_data, tmp_path / "m.pt",
                 TrainConfig(max_steps=40, batch_size=8, seed=3, eval_every=10, augment=False, lr=3e-3))
    losses = [h["loss"] for h in result.history]
    assert len(losses) == 4 and losses[-1] < 0.7 * losses[0]
    assert os.path.exists(tmp_path / "m.pt") and os.path.exists(tmp_path / "run" / "resume.pt")


def test_model_file_is_self_contained_and_safe(tiny_model):
    payload = torch.load(tiny_model, map_location="cpu", weights_only=True)  # no code can run
    assert payload["format"] == "ctctool-model" and payload["modality"] == "image"
    assert payload["features"]["height"] == 32 and payload["time_stride"]["input_frames_per_output"] == 4
    assert payload["training"]["steps"] == 6 and payload["training"]["seed"] == 1
    model = load_model(str(tiny_model))
    assert model.codec.size == model.model_config.num_classes
    info = describe_model(str(tiny_model))
    assert info["alphabet_size"] == len(model.codec.labels) and info["parameters"] > 1000


def test_bad_model_files(tmp_path, tiny_model):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"definitely not a zip")
    with pytest.raises(CheckpointError, match="not a ctctool model file or it is corrupt"):
        read_model_file(str(junk))
    with pytest.raises(CheckpointError, match="no such model file"):
        read_model_file(str(tmp_path / "missing.pt"))
    payload = torch.load(tiny_model, weights_only=True)
    payload["min_reader_version"] = 99
    torch.save(payload, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="upgrade ctctool"):
        read_model_file(str(tmp_path / "future.pt"))
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="format tag"):
        read_model_file(str(tmp_path / "other.pt"))


@pytest.mark.parametrize(("batch_size", "accumulate", "batch_in_epoch"), [(8, 1, 2), (4, 2, 4)])
def test_resume_after_a_kill_between_checkpoints_is_bit_exact(tiny_data, tmp_path, batch_size, accumulate,
                                                              batch_in_epoch):
    """Killed at step 10 (checkpoints at 4, 8, 12: the last one mid-epoch), resumed from step 8,
    run to 16: every weight and optimizer moment equals the uninterrupted run's bit for bit, the
    loss history is identical, and log.jsonl holds each validation once. With --accumulate 2,
    each step takes two batches of 4 (the resume state counts batches: 2 steps into epoch 2)."""
    config = TrainConfig(max_steps=16, batch_size=batch_size, seed=5, eval_every=4,
                         accumulate=accumulate)  # 6 steps per epoch
    straight = run(tiny_data, tmp_path / "a" / "m.pt", config)
    (tmp_path / "c").mkdir()
    assert run_until_interrupt(tiny_data, tmp_path / "c" / "m.pt", config, monitor=StopAt(10)) is None
    state = torch.load(tmp_path / "c" / "run" / "resume.pt", weights_only=True)["state"]
    assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (8, 1, batch_in_epoch)
    resumed = run(tiny_data, tmp_path / "c" / "m.pt", config, resume=True)
    assert resumed.steps == 16
    a = torch.load(tmp_path / "a" / "run" / "resume.pt", weights_only=True)
    c = torch.load(tmp_path / "c" / "run" / "resume.pt", weights_only=True)
    for key in a["model"]:
        assert torch.equal(a["model"][key], c["model"][key]), key
    for key, moments in a["optimizer"]["state"].items():
        for name, value in moments.items():
            assert torch.equal(value, c["optimizer"]["state"][key][name]), (key, name)
    assert a["ema"]["updates"] == c["ema"]["updates"] == 16  # the weight average resumes exactly too
    for key, value in a["ema"]["weights"].items():
        assert torch.equal(value, c["ema"]["weights"][key]), key
    assert [h["loss"] for h in straight.history] == [h["loss"] for h in resumed.history]
    logged = [json.loads(line)["step"] for line in (tmp_path / "c" / "run" / "log.jsonl").read_text().splitlines()]
    assert logged == [4, 8, 12, 16]
    assert not [p for p in os.listdir(tmp_path / "c" / "run") if p.startswith(".ctctool-tmp-")]


def test_a_run_begun_before_an_augmentation_operation_existed_resumes_without_it(tiny_data, tmp_path):
    """A resume file written before the per-letter jitter joined the presets (it records no
    ``augment_ops``) continues with ``default,-letters`` (and ``-bandwidth``), the inputs the run began with: the
    weights equal an uninterrupted ``-letters`` run's bit for bit, and differ from today's
    default's, so the test would catch the jitter slipping into a resumed old run."""
    old = TrainConfig(max_steps=16, batch_size=8, seed=5, eval_every=4, augment="default,-letters",
                      augment_warmup=0.0)
    straight = run(tiny_data, tmp_path / "a" / "m.pt", old)
    today = run(tiny_data, tmp_path / "t" / "m.pt", replace(old, augment="default"))
    assert [h["loss"] for h in straight.history] != [h["loss"] for h in today.history]
    (tmp_path / "c").mkdir()
    assert run_until_interrupt(tiny_data, tmp_path / "c" / "m.pt", old, monitor=StopAt(10)) is None
    resume_path = tmp_path / "c" / "run" / "resume.pt"
    state = torch.load(resume_path, weights_only=True)
    assert "letters" in state.pop("augment_ops")
    torch.save(state, resume_path)  # as the code before it wrote the file
    messages = []

    class Monitor(SilentMonitor):
        def message(self, text):
            messages.append(text)

    resumed = run(tiny_data, tmp_path / "c" / "m.pt", replace(old, augment="default"), resume=True,
                  monitor=Monitor())
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in straight.history]
    a = torch.load(tmp_path / "a" / "run" / "resume.pt", weights_only=True)
    c = torch.load(resume_path, weights_only=True)
    assert all(torch.equal(a["model"][key], c["model"][key]) for key in a["model"])
    # the file knew neither the jitter nor the lower bandwidth (2026-12-07), so both stay out
    assert c["train_config"]["augment"] == "default,-bandwidth,-letters" and "letters" in c["augment_ops"]
    assert any("default,-bandwidth,-letters" in text and "letters existed" in text for text in messages), messages


def test_a_run_that_recorded_its_operations_resumes_without_those_added_since():
    """A resume file that lists the operations its run knew (since 2026-12-05) resumes without
    the ones added after them, whatever else the run left out; one that knew them all as it was."""
    from ctctool.augmentation import OPERATIONS
    from ctctool.train import augmentation_of_run

    recorded = {"augment_ops": [op for op in OPERATIONS if op != "letters"]}
    assert augmentation_of_run(TrainConfig(augment="default,-reverb"), recorded,
                               SilentMonitor()).augment == "default,-letters,-reverb"
    assert augmentation_of_run(TrainConfig(), {"augment_ops": list(OPERATIONS)}, SilentMonitor()).augment == "default"
    # a run of 2026-12-05/06 knew the jitter but not the lower bandwidth
    before_bandwidth = {"augment_ops": [op for op in OPERATIONS if op != "bandwidth"]}
    assert augmentation_of_run(TrainConfig(), before_bandwidth, SilentMonitor()).augment == "default,-bandwidth"
    assert augmentation_of_run(TrainConfig(augment="none"), recorded, SilentMonitor()).augment == "none"


def test_loader_workers_do_not_change_what_is_trained(tiny_data, tmp_path):
    """--workers defaults to DataLoader workers on a GPU and on larger CPUs: safe only because
    each item's augmentation comes from its own seed, not from the process that loads it. The
    same run with 0 and 2 workers ends on the same weights, bit for bit, and records its count."""
    def weights(workers):
        config = TrainConfig(max_steps=6, batch_size=8, seed=7, eval_every=6, num_workers=workers)
        run(tiny_data, tmp_path / str(workers) / "m.pt", config)
        state = torch.load(tmp_path / str(workers) / "run" / "resume.pt", weights_only=True)
        assert state["train_config"]["num_workers"] == workers
        return state["model"]

    inline, loaded = weights(0), weights(2)
    assert all(torch.equal(inline[key], loaded[key]) for key in inline)


def test_an_unset_worker_count_is_resolved_for_the_device_and_recorded(tiny_data, tmp_path, monkeypatch):
    import ctctool.threads as threads

    monkeypatch.setattr(threads, "usable_cores", lambda: 16)
    assert (threads.default_workers(gpu=True), threads.default_workers(gpu=False)) == (4, 4)
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    assert (threads.default_workers(gpu=True), threads.default_workers(gpu=False)) == (1, 0)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")  # torchrun: 8 processes share the node's 16 cores
    monkeypatch.setattr(threads, "usable_cores", lambda: 16)
    assert (threads.default_workers(gpu=True), threads.default_workers(gpu=False)) == (1, 0)
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    config = TrainConfig(max_steps=2, batch_size=8, seed=7, eval_every=2)
    assert config.num_workers is None
    run(tiny_data, tmp_path / "m.pt", config)  # on the CPU with "2 cores": no workers
    state = torch.load(tmp_path / "run" / "resume.pt", weights_only=True)
    assert state["train_config"]["num_workers"] == 0


def test_accumulated_small_batches_train_like_one_large_batch(tiny_data, tmp_path):
    """Batches of 4 with --accumulate 4 against batches of 16: the same items per step, so the
    same loss curve within noise (BatchNorm statistics and the bucketing of items into batches
    differ); plain batches of 4 for the same steps see a quarter of the items and stray further.
    (Measured: within 1.2% of the large batch's curve; plain batches of 4, 2-3%.)"""
    def curve(batch_size, accumulate, name):
        config = TrainConfig(max_steps=30, batch_size=batch_size, accumulate=accumulate, seed=2, eval_every=6,
                             augment=False, lr=3e-3, ema=None, warmup_steps=5, schedule="cosine",
                             label_smoothing=0.0)
        return [h["loss"] for h in run(tiny_data, tmp_path / name / "m.pt", config).history]

    large, accumulated, small = curve(16, 1, "large"), curve(4, 4, "accumulated"), curve(4, 1, "small")
    assert large[-1] < 0.6 * large[0]
    assert all(abs(a - b) <= 0.03 * b for a, b in zip(accumulated, large)), (accumulated, large)
    assert sum(abs(a - b) for a, b in zip(accumulated, large)) < sum(abs(a - b) for a, b in zip(small, large))


def test_max_time_stops_cleanly_with_the_model_and_resume_state_and_resume_goes_on(tiny_data, tmp_path):
    config = TrainConfig(max_steps=100_000, batch_size=8, seed=4, eval_every=50_000, max_time=1.0)
    first = run(tiny_data, tmp_path / "m.pt", config)
    assert first.out_of_time and first.stopped_early and 0 < first.steps < 100_000
    assert first.history[-1]["step"] == first.steps and os.path.exists(tmp_path / "m.pt")
    state = torch.load(tmp_path / "run" / "resume.pt", weights_only=True)["state"]
    assert state["step"] == first.steps
    again = run(tiny_data, tmp_path / "m.pt", config, resume=True)
    assert again.out_of_time and again.steps > first.steps
    with pytest.raises(Exception, match="--max-time must be a positive duration"):
        TrainConfig(max_time=0.0)
    with pytest.raises(Exception, match="--accumulate must be a whole number"):
        TrainConfig(accumulate=0)


def run_until_interrupt(*args, **kwargs):
    try:
        return run(*args, **kwargs)
    except Interrupt:
        return None


def test_resume_without_state_and_unknown_alphabet(tiny_data, tmp_path):
    with pytest.raises(CheckpointError, match="nothing to resume"):
        run(tiny_data, tmp_path / "m.pt", TrainConfig(max_steps=2), resume=True)
    from ctctool.codec import Codec

    with pytest.raises(CodecError, match="not in the alphabet"):
        run(tiny_data, tmp_path / "m.pt", TrainConfig(max_steps=2), codec=Codec.from_texts(["abc"]))


def test_config_validation():
    with pytest.raises(ConfigError):
        TrainConfig(batch_size=0)
    assert lr_factor(0, 100, 10, 0.1) == pytest.approx(0.1)
    assert lr_factor(10, 100, 10, 0.1) == pytest.approx(1.0)
    assert lr_factor(100, 100, 10, 0.1) == pytest.approx(0.1)


def test_a_resume_after_the_recipe_defaults_changed_continues_the_run_as_it_began(tiny_data, tmp_path, monkeypatch):
    """A run begun with the defaults and killed at step 6 is resumed by a ctctool whose default
    learning rate and label smoothing differ: left unsaid, they are the run's, and the weights
    end equal to the uninterrupted run's bit for bit (an upgrade does not change a run midway)."""
    from typer.testing import CliRunner

    from ctctool.cli import app, progress

    runner = CliRunner()

    def args(folder):
        return [str(a) for a in ("train", tiny_data["train"], "--val", tiny_data["val"], "-o", folder / "m.pt",
                                 "--run-dir", folder / "run", "--max-steps", 8, "--eval-every", 4, "--batch-size", 8,
                                 "--hidden", 16, "--no-center-normalize", "--quiet", "--device", "cpu")]

    assert runner.invoke(app, args(tmp_path / "a")).exit_code == 0
    with monkeypatch.context() as patch:
        patch.setattr(progress, "make_monitor", lambda quiet, opening=(): StopAt(6))
        assert runner.invoke(app, args(tmp_path / "c")).exit_code == 1  # the CLI reports the Interrupt
    assert torch.load(tmp_path / "c" / "run" / "resume.pt", weights_only=True)["state"]["step"] == 4
    monkeypatch.setattr(TrainConfig, "lr", 1e-3)  # an upgrade's new defaults
    monkeypatch.setattr(TrainConfig, "label_smoothing", 0.3)
    resumed = runner.invoke(app, [*args(tmp_path / "c"), "--resume"])
    assert resumed.exit_code == 0, resumed.stderr
    a = torch.load(tmp_path / "a" / "run" / "resume.pt", weights_only=True)
    c = torch.load(tmp_path / "c" / "run" / "resume.pt", weights_only=True)
    assert c["train_config"]["lr"] == 2e-3 and c["train_config"]["label_smoothing"] == 0.1
    assert all(torch.equal(a["model"][key], c["model"][key]) for key in a["model"])
    # A flag given on the resume still wins over the run's value.
    again = runner.invoke(app, [*args(tmp_path / "c"), "--resume", "--max-steps", 9, "--label-smoothing", 0.2])
    assert again.exit_code == 0, again.stderr
    assert torch.load(tmp_path / "c" / "run" / "resume.pt", weights_only=True)["train_config"]["label_smoothing"] == 0.2


def test_batches_are_grouped_by_prepared_widths_and_an_older_run_resumes_with_header_ones(tiny_data, tmp_path,
                                                                                        monkeypatch):
    """New runs group each epoch's batches by the widths lines have once prepared (centre
    normalization makes a line 0.5-2x its plainly scaled width, so grouping by header sizes padded
    batches). A run begun before that (its resume file has no ``bucket_lengths``) resumes with the
    header sizes it began with, and ends equal to its uninterrupted self bit for bit."""
    import ctctool.train as training
    from ctctool.codec import Codec
    from ctctool.data import bucketed_batches, prepare_training_items
    from ctctool.features.image import ImageFeatureConfig, ImageFeatures
    from ctctool.model import ModelConfig

    extractor = ImageFeatures(ImageFeatureConfig(center_normalize=True, center_ink="relative"))
    items = read_manifest(tiny_data["train"])
    codec = Codec.from_texts(item.text for item in items)
    pools = ModelConfig.for_modality("image", 32, codec.size, SMALL).pool_time
    header, _ = prepare_training_items(items, codec, extractor, pools)
    exact, _ = prepare_training_items(items, codec, extractor, pools, exact_frames=True)
    assert [e.frames for e in exact] == [extractor.load(e.item).values.shape[1] for e in exact]
    assert [e.frames for e in exact] != [e.frames for e in header]
    # The two measures draw different batches in both epochs the resumed steps fall in.
    for epoch in (0, 1):
        by = {name: [[i for i, _ in b] for b in bucketed_batches([e.frames for e in prepared], 8, seed=2, epoch=epoch)]
              for name, prepared in (("header", header), ("exact", exact))}
        assert by["header"] != by["exact"]

    config = TrainConfig(max_steps=9, batch_size=8, seed=2, eval_every=3)

    def train_in(folder, **kwargs):
        return train(items, output=str(folder / "m.pt"), run_dir=str(folder / "run"), extractor=extractor,
                     config=config, shape=SMALL, codec=codec, **kwargs)

    train_in(tmp_path / "new")
    assert torch.load(tmp_path / "new" / "run" / "resume.pt", weights_only=True)["bucket_lengths"] == "prepared"
    with monkeypatch.context() as patch:  # the ctctool of before: header sizes, no key in the file
        patch.setattr(training, "bucket_lengths_of_run", lambda resumed: "header")
        train_in(tmp_path / "old")
        with pytest.raises(Interrupt):
            train_in(tmp_path / "cut", monitor=StopAt(5))
    state = torch.load(tmp_path / "cut" / "run" / "resume.pt", weights_only=True)
    assert state["state"]["step"] == 3
    del state["bucket_lengths"]
    torch.save(state, tmp_path / "cut" / "run" / "resume.pt")
    train_in(tmp_path / "cut", resume=True)
    old = torch.load(tmp_path / "old" / "run" / "resume.pt", weights_only=True)
    cut = torch.load(tmp_path / "cut" / "run" / "resume.pt", weights_only=True)
    new = torch.load(tmp_path / "new" / "run" / "resume.pt", weights_only=True)
    assert cut["bucket_lengths"] == "header"
    assert all(torch.equal(old["model"][key], cut["model"][key]) for key in old["model"])
    assert not all(torch.equal(old["model"][key], new["model"][key]) for key in old["model"])
