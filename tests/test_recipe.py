"""The training recipe: augmentation policies and operations, the weight average, size presets."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from ctctool.augmentation import AUDIO_OPS, IMAGE_OPS, AugmentPolicy
from ctctool.augmentation.audio import (
    augment_waveform,
    band_limited,
    reverberate,
    spec_augment,
    telephone,
    vtlp_factor,
)
from ctctool.augmentation.image import _margins, augment_line, gaussian_blur, remap
from ctctool.averaging import WeightAverage
from ctctool.cli import app
from ctctool.errors import CheckpointError, OptionError
from ctctool.features.audio import mel_filterbank, vtlp_warp
from ctctool.model import SIZE_PRESETS, CTCRecognizer, ModelConfig, count_parameters, network_shape
from ctctool.train import ONECYCLE_END, ONECYCLE_START, TrainConfig, ctc_objective, lr_factor


def line_image(width: int = 120, height: int = 32, seed: int = 0) -> np.ndarray:
    """A fake text line: a few bright 'letters' on a dark background with blank margins."""
    rng = np.random.default_rng(seed)
    values = np.zeros((height, width), dtype=np.float32)
    for x in range(10, width - 10, 12):
        values[8:24, x:x + 6] = rng.uniform(0.7, 1.0)
    return values


# ---------------------------------------------------------------- policies


def test_policy_parsing_and_errors():
    assert AugmentPolicy.parse("strong,-elastic,-reverb") == AugmentPolicy("strong", frozenset({"elastic", "reverb"}))
    assert str(AugmentPolicy.parse(" default , -wave ")) == "default,-wave"
    assert AugmentPolicy.parse(True) == AugmentPolicy() and not AugmentPolicy.parse(False).active
    for spec, message in (("huge", "unknown preset 'huge'"), ("default,-nope", "unknown operation 'nope'"),
                          ("default,elastic", "leave out as -NAME"), ("", "expected a preset")):
        with pytest.raises(OptionError, match=message):
            AugmentPolicy.parse(spec)
    assert TrainConfig(augment=False).augment == "none" and TrainConfig(augment="light,-blur").augment == "light,-blur"
    assert AugmentPolicy("default", frozenset({"blur"})).chance("blur", 0.3) == 0.0
    assert AugmentPolicy("light").chance("affine", 0.7) == pytest.approx(0.21)
    assert AugmentPolicy("strong").scaled(1.0).chance("specaugment", 1.0) == 1.0


# ---------------------------------------------------------------- images


@given(st.integers(0, 2**31), st.sampled_from(["light", "default", "strong"]), st.integers(20, 300))
def test_augmented_lines_keep_height_range_and_are_seeded(seed, preset, width):
    values = line_image(width)
    policy = AugmentPolicy(preset)
    a = augment_line(values, random.Random(seed), policy)
    b = augment_line(values, random.Random(seed), policy)
    assert np.array_equal(a, b)
    assert a.shape[0] == 32 and a.dtype == np.float32 and a.shape[1] >= 4
    assert np.isfinite(a).all() and a.min() >= 0.0 and a.max() <= 1.0


def test_every_image_operation_left_out_is_the_identity():
    values = line_image()
    policy = AugmentPolicy("strong", frozenset(IMAGE_OPS))
    for seed in range(20):
        assert np.array_equal(augment_line(values, random.Random(seed), policy), values)
    assert augment_line(values, random.Random(0), AugmentPolicy("none")) is values


@pytest.mark.parametrize("op", IMAGE_OPS)
def test_each_image_operation_changes_some_lines_on_its_own(op):
    values = line_image()
    policy = AugmentPolicy("strong", frozenset(IMAGE_OPS) - {op})
    changed = sum(not np.array_equal(augment_line(values, random.Random(s), policy), values) for s in range(30))
    assert changed >= 3, op


@given(st.integers(0, 2**31), st.sampled_from([0.5, 1.0]))
def test_letter_jitter_keeps_the_letters_in_order_and_the_line_width(seed, strength):
    """Per-letter jitter is a monotone warp: eight bars, each standing for a letter, come out
    in the same order, still eight, on a line of the same width; their spacing changes."""
    values = np.zeros((32, 240), np.float32)
    starts = [12 + 28 * i for i in range(8)]
    for x in starts:
        values[8:24, x:x + 4] = 1.0
    from ctctool.augmentation.image import _letters

    ys, xs = np.mgrid[0:32, 0:240].astype(np.float32)
    u, v, slant = _letters(240, 32, random.Random(seed), strength, ys - 16.0)
    assert np.all(np.diff(u[0]) > 0) and np.isclose(u[0, 0], -120) and np.isclose(u[0, -1], 119)
    assert np.abs(slant).max() <= 0.4 * strength + 1e-6
    out = remap(values, u + 120.0 + slant * v, v + 16.0)
    middle = out[16] > 0.5  # the centre row: each bar is one run of ink
    runs = np.flatnonzero(np.diff(middle.astype(np.int8)) == 1)
    assert len(runs) == 8 and out.shape == values.shape
    assert not np.allclose(np.diff(runs), 28, atol=0.5)  # letters moved by different amounts


# augment_line(line_image(120), Random(seed), "strong") before the per-letter jitter existed
# (commit f666f90): width and ink sum of the output. Any change to the random draws moves both.
BEFORE_LETTERS = {0: (141, 718.6897), 1: (112, 809.4207), 2: (139, 759.0170), 3: (142, 733.5870),
                  4: (105, 811.8602), 5: (120, 736.4170)}


@pytest.mark.parametrize("seed", sorted(BEFORE_LETTERS))
def test_letter_jitter_left_out_gives_the_lines_of_the_recipe_before_it(seed):
    """``-letters`` takes no random draw, so every other operation sees the numbers it saw before
    the jitter joined the presets: the ablation and resumed older runs reproduce them."""
    out = augment_line(line_image(120), random.Random(seed), AugmentPolicy("strong", frozenset({"letters"})))
    width, ink = BEFORE_LETTERS[seed]
    assert out.shape == (32, width) and out.sum() == pytest.approx(ink, abs=0.01)
    with_letters = augment_line(line_image(120), random.Random(seed), AugmentPolicy("strong"))
    assert not (with_letters.shape == out.shape and np.allclose(with_letters, out))


@given(st.integers(0, 2**31), st.integers(0, 40), st.integers(0, 40))
def test_margin_changes_never_cut_ink(seed, left, right):
    values = np.pad(line_image(60), ((0, 0), (left, right)))
    out = _margins(values, random.Random(seed), 1.0)
    assert np.isclose(out.sum(), values.sum())  # every ink pixel survives
    assert out.shape[0] == values.shape[0]


def test_remap_identity_and_shift():
    values = line_image()
    ys, xs = np.mgrid[0:32, 0:120].astype(np.float32)
    assert np.allclose(remap(values, xs, ys), values)
    shifted = remap(values, xs - 3, ys)
    assert np.allclose(shifted[:, 3:], values[:, :-3]) and not shifted[:, :3].any()


def test_blur_keeps_mean_away_from_edges():
    values = np.zeros((32, 64), dtype=np.float32)
    values[16, 32] = 1.0
    blurred = gaussian_blur(values, 1.0)
    assert blurred.sum() == pytest.approx(1.0, rel=1e-5) and blurred.max() < 0.2


# ---------------------------------------------------------------- audio

RATE = 16000


def speechlike(seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    rng = np.random.default_rng(seed)
    return (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) +
            0.01 * rng.normal(size=t.size)).astype(np.float32)


def band_energy(samples: np.ndarray, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(samples)) ** 2
    hz = np.fft.rfftfreq(len(samples), 1 / RATE)
    return float(spectrum[(hz >= low) & (hz < high)].sum())


def test_reverberation_keeps_length_and_level_and_smears_in_time():
    dry = np.zeros(RATE, dtype=np.float64)
    dry[1000] = 1.0
    wet = reverberate(dry, RATE, random.Random(2))
    assert wet.shape == dry.shape
    assert np.sqrt(np.mean(wet ** 2)) == pytest.approx(np.sqrt(np.mean(dry ** 2)), rel=1e-6)
    assert np.abs(wet[1200:]).max() > 0.001  # energy arrives after the click: a tail
    assert np.abs(wet[:1000]).max() == pytest.approx(0.0, abs=1e-9)  # and none before it


def test_telephone_band_removes_low_and_high_frequencies():
    t = np.arange(RATE) / RATE
    mix = np.sin(2 * np.pi * 100 * t) + np.sin(2 * np.pi * 1000 * t) + np.sin(2 * np.pi * 6000 * t)
    out = telephone(mix, RATE, random.Random(1))
    assert band_energy(out, 900, 1100) > 0.5 * band_energy(mix, 900, 1100)
    assert band_energy(out, 50, 150) < 0.01 * band_energy(mix, 50, 150)
    assert band_energy(out, 5500, 6500) < 0.01 * band_energy(mix, 5500, 6500)


def test_lower_bandwidth_removes_what_lies_above_its_cutoff():
    t = np.arange(RATE) / RATE
    mix = np.sin(2 * np.pi * 1000 * t) + np.sin(2 * np.pi * 6500 * t)
    for seed in range(20):  # default strength: cutoffs of 3.5-5.5 kHz
        out = band_limited(mix, RATE, random.Random(seed), k=0.5)
        assert out.shape == mix.shape
        assert band_energy(out, 900, 1100) > 0.99 * band_energy(mix, 900, 1100)
        assert band_energy(out, 6000, 7000) < 1e-3 * band_energy(mix, 6000, 7000)
    # a clip whose own band ends below the lowest cutoff (8 kHz audio) is left as it is
    narrow = np.sin(2 * np.pi * 1000 * np.arange(8000) / 8000)
    assert np.array_equal(band_limited(narrow, 8000, random.Random(0)), narrow)


# augment_waveform(speechlike(), RATE, Random(seed), "strong") and the VTLP factor drawn after it,
# before the lower bandwidth joined the presets (commit 563d103): length, energy, factor. Any
# change to the random draws moves them.
BEFORE_BANDWIDTH = {0: (16000, 1080.5548, 1.06), 1: (14926, 1008.6948, 1.0), 2: (16000, 1113.0085, 0.99),
                    3: (15859, 648.3811, 1.0), 4: (17321, 0.9034, 1.09), 5: (16000, 1080.5548, 1.0)}


@pytest.mark.parametrize("seed", sorted(BEFORE_BANDWIDTH))
def test_bandwidth_left_out_gives_the_clips_of_the_recipe_before_it(seed):
    """``-bandwidth`` takes no random draw, so the other operations, and the VTLP factor drawn after
    them from the same generator, see the numbers they saw before it: the ablation and resumed
    older runs reproduce them."""
    policy = AugmentPolicy("strong", frozenset({"bandwidth"}))
    rng = random.Random(seed)
    out = augment_waveform(speechlike(), RATE, rng, policy)
    length, energy, warp = BEFORE_BANDWIDTH[seed]
    assert len(out) == length and float(np.sum(out.astype(np.float64) ** 2)) == pytest.approx(energy, abs=1e-3)
    assert vtlp_factor(rng, policy) == warp
    changed = [not np.array_equal(augment_waveform(speechlike(), RATE, random.Random(s), AugmentPolicy("strong")),
                                  augment_waveform(speechlike(), RATE, random.Random(s), policy)) for s in range(6)]
    assert any(changed)  # with it, some clips differ


def test_vtlp_warp_is_monotonic_keeps_the_top_edge_and_moves_the_bands():
    hz = np.linspace(0, 8000, 200)
    for warp in (0.9, 0.95, 1.05, 1.1):
        warped = vtlp_warp(hz, warp, 8000.0)
        assert np.all(np.diff(warped) > 0) and warped[-1] == pytest.approx(8000.0)
        assert warped[10] == pytest.approx(warp * hz[10])
    plain = mel_filterbank(16000, 512, 64, 20.0, 0.0)
    assert not np.allclose(plain, mel_filterbank(16000, 512, 64, 20.0, 0.0, 1.08))
    factors = {vtlp_factor(random.Random(s)) for s in range(100)}
    assert 1.0 in factors and all(0.9 <= f <= 1.11 and round(f, 2) == f for f in factors)
    assert vtlp_factor(random.Random(0), AugmentPolicy("default", frozenset({"vtlp"}))) == 1.0


def test_waveform_augmentation_is_seeded_and_all_ops_off_is_identity():
    samples = speechlike()
    a = augment_waveform(samples, RATE, random.Random(9))
    assert np.array_equal(a, augment_waveform(samples, RATE, random.Random(9)))
    off = AugmentPolicy("strong", frozenset(AUDIO_OPS))
    for seed in range(10):
        assert np.allclose(augment_waveform(samples, RATE, random.Random(seed), off), samples)
        values = np.ones((64, 50), dtype=np.float32)
        assert np.array_equal(spec_augment(values, random.Random(seed), off), values)


# ---------------------------------------------------------------- weight average


def test_weight_average_follows_the_formula_and_round_trips():
    network = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    average = WeightAverage(network, decay=0.5)
    start = network[0].weight.detach().clone()
    with torch.no_grad():
        network[0].weight.add_(1.0)
        network[1].num_batches_tracked.fill_(7)
    average.update(network)  # warm-up decay (1+0)/(10+0) = 0.1
    assert torch.allclose(average.network[0].weight, 0.1 * start + 0.9 * (start + 1.0))
    assert int(average.network[1].num_batches_tracked) == 7  # counters are copied, not averaged
    with torch.no_grad():
        network[0].weight.add_(1.0)
    for _ in range(100):
        average.update(network)
    assert average.current_decay() == 0.5
    assert torch.allclose(average.network[0].weight, network[0].weight, atol=1e-6)
    assert not any(p.requires_grad for p in average.network.parameters())
    copy = WeightAverage(network, decay=0.5)
    copy.load_state_dict(average.state_dict(), "r.pt")
    assert copy.updates == 101 and torch.equal(copy.network[0].weight, average.network[0].weight)
    with pytest.raises(CheckpointError, match="r.pt: ema:"):
        copy.load_state_dict({"updates": 1, "weights": {"nope": torch.zeros(1)}}, "r.pt")


def test_trained_model_file_holds_the_averaged_weights(tiny_data, tmp_path):
    from ctctool.checkpoint import read_model_file
    from ctctool.features import default_extractor
    from ctctool.manifest import read_manifest
    from ctctool.model import NetworkShape
    from ctctool.train import train

    items = read_manifest(tiny_data["train"])
    train(items, output=str(tmp_path / "m.pt"), run_dir=str(tmp_path / "run"), extractor=default_extractor("image"),
          val_items=read_manifest(tiny_data["val"]), config=TrainConfig(max_steps=6, batch_size=8, ema=0.9),
          shape=NetworkShape(hidden=16, channels=(8, 8, 8)))
    saved = read_model_file(str(tmp_path / "m.pt"))["state_dict"]
    resume = torch.load(tmp_path / "run" / "resume.pt", weights_only=True)
    assert resume["ema"]["updates"] == 6
    assert all(torch.equal(saved[k], resume["ema"]["weights"][k]) for k in saved)
    assert any(not torch.equal(saved[k], resume["model"][k]) for k in saved if saved[k].is_floating_point())


def test_the_weight_average_never_changes_the_weights_trained(tiny_data, tmp_path):
    """README: a run with --ema 0 trains the very same weights as the default run of its seed, so
    the bench's `-ema` rows are a paired comparison (only which weights are saved differs)."""
    from ctctool.features import default_extractor
    from ctctool.manifest import read_manifest
    from ctctool.model import NetworkShape
    from ctctool.train import train

    items, val = read_manifest(tiny_data["train"]), read_manifest(tiny_data["val"])
    live, losses = {}, {}
    for name, ema in (("averaged", 0.9), ("last", None)):
        train(items, output=str(tmp_path / f"{name}.pt"), run_dir=str(tmp_path / name),
              extractor=default_extractor("image"), val_items=val,
              config=TrainConfig(max_steps=6, batch_size=8, ema=ema, eval_every=2, seed=3),
              shape=NetworkShape(hidden=16, channels=(8, 8, 8)))
        live[name] = torch.load(tmp_path / name / "resume.pt", weights_only=True)["model"]
        losses[name] = [row["loss"] for row in map(json.loads, (tmp_path / name / "log.jsonl").read_text().splitlines())]
    assert len(losses["last"]) == 3 and losses["averaged"] == losses["last"]
    assert all(torch.equal(live["averaged"][k], live["last"][k]) for k in live["last"])


# ---------------------------------------------------------------- size presets


def test_size_presets_grow_and_explicit_parts_override():
    counts = []
    for name in ("tiny", "small", "base", "large"):
        config = ModelConfig.for_modality("image", 32, 80, SIZE_PRESETS[name])
        counts.append(count_parameters(CTCRecognizer(config)))
    assert counts == sorted(counts) and counts[0] * 10 < counts[-1]
    assert network_shape("base") == SIZE_PRESETS["base"]
    shape = network_shape("tiny", hidden=40, layers=3)
    assert (shape.hidden, shape.layers, shape.channels) == (40, 3, SIZE_PRESETS["tiny"].channels)
    with pytest.raises(OptionError, match="--preset must be one of"):
        network_shape("huge")


def test_train_command_rejects_bad_recipe_options(tiny_data, tmp_path):
    runner = CliRunner()
    base = ["train", str(tiny_data["train"]), "-o", str(tmp_path / "m.pt"), "--max-steps", "1", "--device", "cpu"]
    for extra, message in ((["--augment", "wild"], "unknown preset 'wild'"),
                           (["--ema", "1.5"], "--ema must be a decay"),
                           (["--preset", "huge"], "--preset must be one of"),
                           (["--schedule", "linear"], "--schedule must be one of"),
                           (["--label-smoothing", "1"], "--label-smoothing must be a weight"),
                           (["--dropout", "1"], "--dropout must be a probability in [0, 1)"),
                           (["--dropout", "-0.1"], "--dropout must be a probability in [0, 1)"),
                           (["--weight-decay", "-1"], "--weight-decay must be a finite number >= 0"),
                           (["--weight-decay", "nan"], "--weight-decay must be a finite number >= 0")):
        result = runner.invoke(app, base + extra)
        assert result.exit_code == 2, (extra, result.output)
        assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "m.pt").exists()


def test_train_command_preset_and_options_reach_the_model(tiny_data, tmp_path):
    from ctctool.checkpoint import read_model_file

    runner = CliRunner()
    result = runner.invoke(app, ["train", str(tiny_data["train"]), "--val", str(tiny_data["val"]), "-o",
                                 str(tmp_path / "m.pt"), "--max-steps", "2", "--device", "cpu", "--quiet",
                                 "--preset", "tiny", "--augment", "light,-elastic", "--ema", "0",
                                 "--schedule", "onecycle", "--label-smoothing", "0.05",
                                 "--dropout", "0.35", "--weight-decay", "0.05",
                                 "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    payload = read_model_file(str(tmp_path / "m.pt"))
    assert payload["model_config"]["lstm_layers"] == 1 and payload["model_config"]["lstm_hidden"] == 64
    assert payload["model_config"]["dropout"] == 0.35
    assert CTCRecognizer(ModelConfig(**payload["model_config"])).dropout.p == 0.35
    assert payload["training"]["train_config"]["weight_decay"] == 0.05
    assert payload["training"]["train_config"]["augment"] == "light,-elastic"
    assert payload["training"]["train_config"]["ema"] is None
    assert payload["training"]["train_config"]["schedule"] == "onecycle"
    assert payload["training"]["train_config"]["label_smoothing"] == 0.05


def test_augmentation_warmup_grows_from_nothing_and_scales_every_operation():
    from ctctool.augmentation import warmup_scale

    assert [warmup_scale(s, 100, 0.3) for s in (0, 15, 30, 99)] == [0.0, 0.5, 1.0, 1.0]
    assert warmup_scale(0, 100, 0.0) == 1.0
    half = AugmentPolicy("default").scaled(0.5)
    assert half.chance("affine", 0.7) == pytest.approx(0.21) and half.strength() == 0.25
    assert not AugmentPolicy("strong").scaled(0.0).active
    with pytest.raises(OptionError, match="--augment-warmup"):
        TrainConfig(augment_warmup=1.5)


def test_dataset_applies_the_scale_carried_by_its_key(tiny_data):
    from ctctool.data import TrainingDataset, TrainingItem
    from ctctool.features import default_extractor
    from ctctool.manifest import read_manifest

    item = read_manifest(tiny_data["train"])[0]
    dataset = TrainingDataset([TrainingItem(item, (1,), 10)], default_extractor("image"), augment="strong")
    plain = default_extractor("image").load(item).values
    assert np.array_equal(dataset[(0, 7, 0.0)][0], plain)  # scale 0: the warm-up's first step
    changed = [not np.array_equal(dataset[(0, seed, 1.0)][0], plain) for seed in range(10)]
    assert sum(changed) >= 8
    assert np.array_equal(dataset[(0, 7)][0], dataset[(0, 7, 1.0)][0])  # no scale = full


# ---------------------------------------------------------------- objective and schedule
def _ctc_batch(seed: int, classes: int = 6):
    generator = torch.Generator().manual_seed(seed)
    log_probs = torch.randn(3, 12, classes, generator=generator).log_softmax(dim=2)  # [batch, frames, classes]
    out_lengths = torch.tensor([12, 9, 7])
    targets = torch.tensor([1, 2, 3, 4, 2, 2, 5, 1])
    target_lengths = torch.tensor([3, 3, 2])
    return log_probs, out_lengths, targets, target_lengths


@given(st.integers(0, 2**16), st.floats(0.01, 0.9))
def test_label_smoothing_mixes_ctc_with_the_per_frame_cross_entropy_to_uniform(seed, weight):
    from torch.nn import functional as F

    log_probs, out_lengths, targets, target_lengths = _ctc_batch(seed)
    ctc = F.ctc_loss(log_probs.transpose(0, 1), targets, out_lengths, target_lengths, blank=0, reduction="mean",
                     zero_infinity=True)
    assert torch.equal(ctc_objective(log_probs, out_lengths, targets, target_lengths, 0.0), ctc)
    # by hand: per item, -mean over classes of log p, summed over its valid frames, per target label
    per_item = [-log_probs[b, :int(out_lengths[b])].mean(dim=1).sum() / int(target_lengths[b]) for b in range(3)]
    expected = (1 - weight) * ctc + weight * torch.stack(per_item).mean()
    got = ctc_objective(log_probs, out_lengths, targets, target_lengths, weight)
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-6)
    # padding frames past an item's length never count
    padded = log_probs.clone()
    padded[1, 9:] = torch.full((3, 6), -50.0)
    assert torch.allclose(ctc_objective(padded, out_lengths, targets, target_lengths, weight), got, rtol=1e-6)


def test_label_smoothing_pulls_peaky_posteriors_toward_uniform():
    """The smoothing term is smallest (log V per frame) for uniform posteriors and its gradient
    lowers the top class of a peaky frame: it discourages the one-hot spikes CTC converges to."""
    log_probs, out_lengths, targets, target_lengths = _ctc_batch(0)
    logits = (torch.randn(3, 12, 6, generator=torch.Generator().manual_seed(1)) * 8).requires_grad_(True)
    uniform = torch.full((3, 12, 6), 1 / 6).log()
    smooth = lambda lp: (ctc_objective(lp, out_lengths, targets, target_lengths, 0.5)  # noqa: E731
                         - 0.5 * ctc_objective(lp, out_lengths, targets, target_lengths, 0.0)) / 0.5
    assert float(smooth(uniform)) < float(smooth(logits.detach().log_softmax(dim=2)))
    smooth(logits.log_softmax(dim=2)).backward()
    top = logits.detach().argmax(dim=2)
    assert bool((logits.grad[0, :, :].gather(1, top[0, :, None]) > 0).all())  # descent lowers the top logit


@given(st.integers(20, 5000))
def test_onecycle_rises_to_the_peak_then_falls_to_its_floor(total):
    factors = [lr_factor(step, total, 100, 0.02, "onecycle") for step in range(total + 1)]
    peak = int(np.argmax(factors))
    assert factors[0] == pytest.approx(ONECYCLE_START)
    assert factors[peak] == pytest.approx(1.0) and abs(peak - 0.3 * total) <= 1
    assert all(a <= b + 1e-12 for a, b in zip(factors[:peak], factors[1:peak + 1]))
    assert all(a >= b - 1e-12 for a, b in zip(factors[peak:], factors[peak + 1:]))
    assert factors[-1] == pytest.approx(ONECYCLE_END)
    # the default shape is untouched by the new argument
    assert lr_factor(50, total, 100, 0.02) == lr_factor(50, total, 100, 0.02, "cosine")


def test_train_defaults_onecycle_and_smoothing_from_scratch_and_not_when_fine_tuning(tiny_data, tmp_path):
    from ctctool.checkpoint import read_model_file

    runner = CliRunner()
    base = ["--val", str(tiny_data["val"]), "--max-steps", "2", "--device", "cpu", "--quiet", "--preset", "tiny"]
    result = runner.invoke(app, ["train", str(tiny_data["train"]), "-o", str(tmp_path / "a.pt"),
                                 "--run-dir", str(tmp_path / "ra"), *base])
    assert result.exit_code == 0, result.output
    config = read_model_file(str(tmp_path / "a.pt"))["training"]["train_config"]
    assert (config["schedule"], config["label_smoothing"], config["weight_decay"]) == ("onecycle", 0.1, 0.01)
    result = runner.invoke(app, ["train", str(tiny_data["train"]), "-o", str(tmp_path / "b.pt"), "--init",
                                 str(tmp_path / "a.pt"), "--run-dir", str(tmp_path / "rb"), *base[:-2]])
    assert result.exit_code == 0, result.output
    config = read_model_file(str(tmp_path / "b.pt"))["training"]["train_config"]
    assert (config["schedule"], config["label_smoothing"], config["lr"]) == ("cosine", 0.0, 5e-4)
    # README: for a long run on a new kind of line, the from-scratch recipe is passed with --init
    result = runner.invoke(app, ["train", str(tiny_data["train"]), "-o", str(tmp_path / "d.pt"), "--init",
                                 str(tmp_path / "a.pt"), "--run-dir", str(tmp_path / "rd"), "--lr", "2e-3",
                                 "--schedule", "onecycle", "--label-smoothing", "0.1", *base[:-2]])
    assert result.exit_code == 0, result.output
    config = read_model_file(str(tmp_path / "d.pt"))["training"]["train_config"]
    assert (config["schedule"], config["label_smoothing"], config["lr"]) == ("onecycle", 0.1, 2e-3)
    assert read_model_file(str(tmp_path / "a.pt"))["model_config"]["dropout"] == 0.2
    result = runner.invoke(app, ["train", str(tiny_data["train"]), "-o", str(tmp_path / "c.pt"), "--init",
                                 str(tmp_path / "a.pt"), "--dropout", "0.4", *base[:-2]])
    assert result.exit_code == 2 and "--dropout: the features and network shape come from the --init" in result.output


def _remap_by_rows_and_columns(values, src_x, src_y):
    """Bilinear sampling as first written, indexing the padded image by (row, column): the
    reference for the flat takes that replaced it."""
    height, width = values.shape
    padded = np.zeros((height + 2, width + 2), dtype=np.float32)
    padded[1:-1, 1:-1] = values
    x = np.clip(src_x + 1.0, 0.0, width + 1.0)
    y = np.clip(src_y + 1.0, 0.0, height + 1.0)
    x0 = np.minimum(np.floor(x).astype(np.int64), width)
    y0 = np.minimum(np.floor(y).astype(np.int64), height)
    fx, fy = x - x0, y - y0
    top = padded[y0, x0] * (1 - fx) + padded[y0, x0 + 1] * fx
    bottom = padded[y0 + 1, x0] * (1 - fx) + padded[y0 + 1, x0 + 1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


@given(seed=st.integers(0, 2**32 - 1), height=st.integers(1, 12), width=st.integers(1, 30))
def test_remap_samples_exactly_as_indexing_by_row_and_column(seed, height, width):
    """Points inside, between, on the edges of and far outside the image: the same float32 bits."""
    from ctctool.augmentation.image import bilinear_taps, remap, sample

    generator = np.random.default_rng(seed)
    values = generator.random((height, width), dtype=np.float32)
    src_x = generator.uniform(-3, width + 3, (height + 2, width + 5)).astype(np.float32)
    src_y = generator.uniform(-3, height + 3, src_x.shape).astype(np.float32)
    src_x[0, :3] = (-1.0, float(width), float(width - 1))
    expected = _remap_by_rows_and_columns(values, src_x, src_y)
    assert remap(values, src_x, src_y).tobytes() == expected.tobytes()
    other = generator.random((height, width), dtype=np.float32)  # taps shared between two images
    assert sample(other, bilinear_taps(src_x, src_y, values.shape)).tobytes() == \
        _remap_by_rows_and_columns(other, src_x, src_y).tobytes()
