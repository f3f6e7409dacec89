"""Centre-line normalization (train --center-normalize): the centre line, the band, and a model
that carries the step into every command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from image_steps import check_onnx_carries_step, check_step_model, train_step_model
from PIL import Image
from typer.testing import CliRunner

from ctctool.cli import app
from ctctool.errors import ConfigError
from ctctool.features.center import (
    _shift_columns,
    band_height,
    centre_line,
    centre_normalize,
    relative_ink,
)
from ctctool.features.image import ImageFeatureConfig, ImageFeatures
from ctctool.manifest import read_manifest

runner = CliRunner()


def letters(height: int, width: int, rows_of, letter_height: float) -> np.ndarray:
    """Ink blobs 6 px wide every 10 px, each ``letter_height`` rows tall and centred on
    ``rows_of(column)``: a line of small letters whose centre may wander."""
    values = np.zeros((height, width), dtype=np.float32)
    for start in range(8, width - 14, 10):
        centre = rows_of(start + 3)
        top, bottom = int(round(centre - letter_height / 2)), int(round(centre + letter_height / 2))
        values[max(0, top):max(0, bottom), start:start + 6] = 1.0
    return values


def ink_centres(values: np.ndarray) -> np.ndarray:
    """Per inked column, the mean row of its ink."""
    rows = np.arange(values.shape[0], dtype=np.float64)[:, None]
    inked = values.sum(axis=0) > 0.5
    return ((values * rows).sum(axis=0)[inked] / values.sum(axis=0)[inked])


def test_centre_line_follows_a_wavy_line_and_the_result_is_straight():
    # A baseline that rises and falls 10 rows of 64 over about 15 line heights, as a hand's does
    wave = lambda x: 32 + 10 * np.sin(x / 150.0)  # noqa: E731 -- rows of a 64-row working image
    values = letters(64, 1200, wave, 16)
    centre = centre_line(values)
    inner = slice(100, 1100)  # away from the ends, where the smoothing sees past the line
    assert np.abs(centre[inner] - wave(np.arange(1200))[inner]).max() < 3.0
    out = centre_normalize(values, 32, 12000)
    assert out.shape[0] == 32
    # Before: the ink's centre wanders over 20 rows of 64; after, a few rows of 32 at most.
    assert np.ptp(ink_centres(values)) > 18
    centres = ink_centres(out)
    assert np.ptp(centres[centres.size // 10:-(centres.size // 10)]) < 3


def test_loose_and_tight_crops_of_one_line_come_out_alike():
    tight = letters(64, 400, lambda x: 32, 40)  # letters fill most of the crop
    loose = letters(64, 400, lambda x: 32, 20)  # the same letters half as tall in a loose crop
    # Scaled to the height the crop sets, the two differ 2-fold in letter height...
    assert ((tight.sum(axis=1) > 0).sum()) >= 2 * ((loose.sum(axis=1) > 0).sum())
    a, b = centre_normalize(tight, 32, 12000), centre_normalize(loose, 32, 12000)
    # ...normalized, their letters are about as tall (the band follows the ink, not the crop).
    tall = lambda v: int((v.max(axis=1) > 0.5).sum())  # noqa: E731
    assert abs(tall(a) - tall(b)) <= 2
    assert 0.35 < (tall(a) / 32) < 0.65  # about half the band: room above and below for ascenders


def test_blank_and_one_dash_lines_stay_bounded():
    blank = np.zeros((64, 300), dtype=np.float32)
    out = centre_normalize(blank, 32, 12000)
    assert out.shape == (32, 150) and not out.any()
    assert band_height(blank, centre_line(blank)) is None
    dash = np.zeros((64, 300), dtype=np.float32)
    dash[31:33, 100:200] = 1.0  # no spread at all: the band is still at least half the height
    out = centre_normalize(dash, 32, 12000)
    assert out.shape[0] == 32 and out.shape[1] <= 300


def test_the_result_never_passes_max_width():
    values = letters(64, 2000, lambda x: 32, 8)  # small letters would be blown up 4-fold
    out = centre_normalize(values, 32, 600)
    assert out.shape[0] == 32 and 590 <= out.shape[1] <= 600
    assert out.max() > 0.5  # the ink is still there, at a smaller scale


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.float32, st.tuples(st.integers(16, 80), st.integers(1, 300)),
                  elements=st.floats(0.0, 1.0, width=32)),
       st.integers(8, 48), st.sampled_from(["fixed", "relative"]))
def test_any_line_gives_a_finite_bounded_deterministic_result(values, height, ink):
    out = centre_normalize(values, height, 1000, ink)
    assert out.shape[0] == height and 1 <= out.shape[1] <= 1000
    assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0
    assert np.array_equal(out, centre_normalize(values.copy(), height, 1000, ink))


def on_grey_paper(clean: np.ndarray, paper: float, seed: int) -> np.ndarray:
    """``clean`` (ink 1, paper 0) as a poor scan: the paper at ``paper`` of full ink, the ink at
    full, and speckle of standard deviation 0.05 (13 grey levels) over all of it. (Speckle of a
    fifth of the paper-to-ink contrast or more still widens the band: at paper 0.5 and 0.1 the
    line comes out 0.6x its clean width, against 0.27x with the fixed level.)"""
    noise = np.random.default_rng(seed).normal(0.0, 0.05, clean.shape)
    return np.clip(paper + (1.0 - paper) * clean + noise, 0.0, 1.0).astype(np.float32)


@pytest.mark.parametrize("paper", [0.2, 0.35, 0.5])
def test_relative_ink_sizes_a_grey_speckled_scan_like_its_clean_twin(paper):
    """With ink above a fixed 0.3, grey paper and speckle count as ink: the band grows with the
    whole crop and the line is squashed (README, "Not on degraded scans yet"). Measured against
    the line's own paper and ink, the scan comes out about as wide as the clean line."""
    clean = letters(64, 800, lambda x: 32, 16)
    scan = on_grey_paper(clean, paper, seed=3)
    width = lambda v, ink: centre_normalize(v, 32, 12000, ink).shape[1]  # noqa: E731
    assert width(clean, "fixed") == width(clean, "relative")
    assert width(scan, "fixed") < 0.8 * width(clean, "fixed")
    assert abs(width(scan, "relative") / width(clean, "relative") - 1.0) < 0.1
    # The band is cut from the scan's own values: its paper is still grey, nothing is rescaled.
    out = centre_normalize(scan, 32, 12000, "relative")
    assert abs(float(np.median(out)) - paper) < 0.1


@settings(max_examples=40, deadline=None)
@given(st.integers(16, 80), st.integers(40, 400), st.integers(0, 2 ** 32 - 1))
def test_relative_ink_leaves_a_clean_line_as_the_fixed_level_does(height, width, seed):
    """Paper at 0 and at least 1% of pixels at full ink (any rendered line): the levels are 0 and
    1, so both ways measure the same ink and give the same result, bit for bit."""
    rng = np.random.default_rng(seed)
    values = np.zeros((height, width), dtype=np.float32)
    for start in range(0, width - 4, int(rng.integers(5, 20))):
        top = int(rng.integers(0, height - 3))
        values[top:top + int(rng.integers(3, height - top + 1)), start:start + 3] = rng.uniform(0.4, 1.0)
    values[height // 2, :max(1, width // 50) * 2] = 1.0  # the strokes' own core: full ink
    values.flat[rng.choice(values.size, size=values.size // 100 + 1, replace=False)] = 1.0
    if float(np.median(values)) != 0.0:
        return  # mostly ink: not a clean line on white paper
    assert np.array_equal(relative_ink(values), values)
    assert np.array_equal(centre_normalize(values, 32, 12000, "relative"), centre_normalize(values, 32, 12000, "fixed"))


def test_a_line_without_contrast_is_only_scaled():
    """Uniform grey (a blank scan, or one tone filling the crop) holds no ink to measure: it is
    scaled like a blank line, not stretched into a band of noise."""
    grey = np.full((64, 300), 0.45, dtype=np.float32)
    assert not relative_ink(grey).any()
    out = centre_normalize(grey, 32, 12000, "relative")
    assert out.shape == (32, 150) and np.allclose(out, 0.45)
    with pytest.raises(ValueError):
        centre_normalize(grey, 32, 12000, "paper")


@settings(max_examples=60, deadline=None)
@given(st.integers(4, 40), st.integers(1, 60), st.integers(4, 90), st.integers(0, 2 ** 32 - 1))
def test_shift_columns_reads_each_column_from_its_own_row(height, width, rows, seed):
    """The run-by-run slice copies give what reading every column on its own gives."""
    rng = np.random.default_rng(seed)
    values = rng.random((height, width), dtype=np.float32)
    tops = np.cumsum(rng.normal(0.0, 1.5, width)).astype(np.float32) + rng.uniform(-rows, height)
    got = _shift_columns(values, tops, rows)
    want = np.zeros((rows, width), dtype=np.float32)
    for column in range(width):
        for row in range(rows):
            source = int(np.floor(tops[column] + 0.5)) + row
            if 0 <= source < height:
                want[row, column] = values[source, column]
    assert np.array_equal(got, want)


def wavy_line_png(path: Path, width: int = 1000) -> None:
    values = letters(80, width, lambda x: 40 + 14 * np.sin(x / 180.0), 18)
    Image.fromarray(np.uint8(255 - 255 * values)).save(path)


def test_features_center_normalize_and_keep_page_positions(tmp_path):
    wavy_line_png(tmp_path / "line.png")
    (tmp_path / "m.jsonl").write_text(json.dumps({"path": "line.png", "text": "x"}) + "\n")
    item = read_manifest(tmp_path / "m.jsonl")[0]
    plain = ImageFeatures(ImageFeatureConfig()).load(item)
    normal = ImageFeatures(ImageFeatureConfig(center_normalize=True)).load(item)
    assert normal.values.shape[0] == 32 and normal.values.dtype == np.float32
    # The wave, in letter heights: most of one before, a small part of one after.
    tall = lambda v: int((v.max(axis=1) > 0.5).sum())  # noqa: E731
    wander = lambda v: np.ptp(np.sort(ink_centres(v))[v.shape[1] // 20:-(v.shape[1] // 20)]) / tall(v)  # noqa: E731
    assert wander(plain.values) > 0.5 and wander(normal.values) < 0.25
    # Columns are scaled, never moved: the first and last frames map to the line's ends.
    assert normal.axis.start == 0.0 and normal.axis.extent == 1000
    assert normal.axis.position(0) == 0.0
    assert abs(normal.axis.position(normal.values.shape[1]) - 1000) < 1e-6
    with pytest.raises(ConfigError):
        ImageFeatureConfig(center_normalize="yes")
    with pytest.raises(ConfigError, match="center_ink"):
        ImageFeatureConfig(center_normalize=True, center_ink="paper")
    # A file written before center_ink existed measured ink against the fixed level, and still does.
    assert ImageFeatureConfig.from_dict({"center_normalize": True}).center_ink == "fixed"


def test_format_3_models_keep_the_fixed_level_through_init_and_resume(centred_model, tiny_data, tmp_path):
    """A model (or an interrupted run) from before ``center_ink`` keeps measuring against the
    fixed level: its weights learnt lines as that level sized them. It asks only for a format-3
    reader. A parent without centre normalization that a fine-tune turns it on for gets today's
    relative level."""
    import torch

    from ctctool.checkpoint import atomic_torch_save, load_model, read_model_file

    def rewrite(features: dict, path: Path) -> Path:
        payload = read_model_file(str(centred_model))
        payload["features"] = features
        payload["min_reader_version"] = 3 if features.get("center_normalize") else 1
        atomic_torch_save(payload, str(path))
        return path

    base = {k: v for k, v in load_model(str(centred_model)).extractor.config_dict().items() if k != "center_ink"}
    old = rewrite(base, tmp_path / "old.pt")
    plain = rewrite({**base, "center_normalize": False}, tmp_path / "plain.pt")
    assert load_model(str(old)).extractor.config.center_ink == "fixed"

    def fine_tune(parent: Path, name: str, *flags: str):
        out = tmp_path / f"{name}.pt"
        result = runner.invoke(app, [str(a) for a in (
            "train", tiny_data["train"], "-o", out, "--init", parent, "--max-steps", 1, "--batch-size", 8,
            "--run-dir", tmp_path / name, "--quiet", "--device", "cpu", *flags)])
        assert result.exit_code == 0, result.stderr
        return out

    kept = fine_tune(old, "kept", "--center-normalize")
    assert load_model(str(kept)).extractor.config.center_ink == "fixed"
    assert read_model_file(str(kept))["min_reader_version"] == 3
    turned_on = fine_tune(plain, "on", "--center-normalize")
    assert load_model(str(turned_on)).extractor.config.center_ink == "relative"
    assert read_model_file(str(turned_on))["min_reader_version"] == 4
    # An interrupted run whose config.json predates the field resumes with the fixed level.
    config_path = tmp_path / "on" / "config.json"
    config = json.loads(config_path.read_text())
    del config["features"]["center_ink"]
    config_path.write_text(json.dumps(config))
    result = runner.invoke(app, [str(a) for a in (
        "train", tiny_data["train"], "-o", turned_on, "--init", plain, "--max-steps", 2, "--batch-size", 8,
        "--run-dir", tmp_path / "on", "--quiet", "--device", "cpu", "--resume")])
    assert result.exit_code == 0, result.stderr
    assert torch.load(tmp_path / "on" / "resume.pt", weights_only=True)["state"]["step"] == 2
    assert load_model(str(turned_on)).extractor.config.center_ink == "fixed"


@pytest.fixture(scope="module")
def centred_model(tiny_data, tmp_path_factory):
    return train_step_model(tiny_data, tmp_path_factory.mktemp("center"), "--center-normalize")


def test_train_center_normalize_records_it_and_aligns_inside_each_line(centred_model, tiny_data, tmp_path):
    from ctctool.checkpoint import load_model

    assert load_model(str(centred_model)).extractor.config.center_normalize is True
    assert load_model(str(centred_model)).extractor.config.center_ink == "relative"
    # A format-2 ctctool would read the lines un-normalized, a format-3 one measure their ink
    # against the fixed level: the file asks for a format-4 reader.
    check_step_model(centred_model, tiny_data, tmp_path, "--center-normalize", reader=4)


def test_onnx_export_carries_center_normalize(centred_model, tiny_data, tmp_path):
    pytest.importorskip("onnxruntime")
    check_onnx_carries_step(centred_model, tiny_data, tmp_path, version=4)


def test_hostile_and_extreme_images_give_error_rows_or_text(centred_model, tiny_data, tmp_path):
    """Every hostile image becomes one error row; odd but valid lines (all ink, no ink, one
    pixel tall, very wide and thin) are read without a crash; the good lines are all read."""
    from hostile import write_corpus

    cases = [case for case in write_corpus(tmp_path / "hostile") if case.modality == "image"]
    extremes = {"all-ink": np.zeros((40, 300)), "blank": np.full((40, 300), 255), "one-row": np.zeros((1, 300)),
                "thin-wide": np.zeros((8, 2400))}  # 9,600 columns at 32 px: under --max-width
    for name, pixels in extremes.items():
        Image.fromarray(np.uint8(pixels)).save(tmp_path / f"{name}.png")
    good = [json.loads(line) for line in tiny_data["val"].read_text().splitlines()[:2]]
    records = [dict(good[0], path=str(tiny_data["val"].parent / good[0]["path"]))]
    records += [dict(case.record, path=str(tmp_path / "hostile" / case.record["path"])) for case in cases]
    records += [{"path": str(tmp_path / f"{name}.png"), "text": "x"} for name in extremes]
    records += [dict(good[1], path=str(tiny_data["val"].parent / good[1]["path"]))]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    result = runner.invoke(app, ["decode", str(centred_model), str(manifest), "--format", "jsonl", "--keep-going"])
    assert result.exit_code == 3 and "Traceback" not in result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == len(records)
    assert ["error" in row for row in rows] == [False] + [True] * len(cases) + [False] * (len(extremes) + 1)


def test_training_drops_a_line_that_normalization_makes_too_narrow_for_its_transcript(tmp_path):
    """A cheap size hint would keep it (CTC would then give it an infinite loss, zeroed): the
    exact width is counted whenever half the plain width might not be enough."""
    from ctctool.codec import Codec
    from ctctool.data import prepare_training_items

    pixels = np.full((40, 400), 255, dtype=np.uint8)
    pixels[:, 8:392:6] = 0  # strokes the whole crop tall: the band is twice the line, half the width
    Image.fromarray(pixels).save(tmp_path / "dense.png")
    text = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[:60]
    (tmp_path / "m.jsonl").write_text(json.dumps({"path": "dense.png", "text": text}) + "\n")
    items = read_manifest(tmp_path / "m.jsonl")
    codec = Codec.from_texts([text])
    plain = ImageFeatures(ImageFeatureConfig())
    normal = ImageFeatures(ImageFeatureConfig(center_normalize=True))
    assert plain.frames_hint(items[0]) == 320 and normal.load(items[0]).values.shape[1] == 160
    kept, report = prepare_training_items(items, codec, plain, (2, 2, 1, 1))  # 80 CTC frames for 60 labels
    assert len(kept) == 1 and not report.too_short
    kept, report = prepare_training_items(items, codec, normal, (2, 2, 1, 1))  # 40 frames: too few
    assert not kept and report.too_short == [items[0].where]
    # A line with room to spare is not loaded at all: the hint stands.
    assert normal.frames_hint(items[0], at_least=100) == 320


def test_new_image_models_normalize_and_a_resume_keeps_the_runs_features(tiny_data, tmp_path):
    """Centre normalization is the default for new image models; a resumed run reads its lines as
    it started to (config.json), whatever today's default, and refuses a flag that disagrees."""
    from ctctool.checkpoint import load_model

    def train(*extra):
        return runner.invoke(app, [str(a) for a in (
            "train", tiny_data["train"], "-o", tmp_path / "m.pt", "--run-dir", tmp_path / "run", "--batch-size", 8,
            "--hidden", 16, "--quiet", *extra)])

    fresh = runner.invoke(app, [str(a) for a in (
        "train", tiny_data["train"], "-o", tmp_path / "d.pt", "--run-dir", tmp_path / "d-run", "--max-steps", 1,
        "--batch-size", 8, "--hidden", 16, "--quiet")])
    assert fresh.exit_code == 0, fresh.stderr
    assert load_model(str(tmp_path / "d.pt")).extractor.config.center_normalize is True
    first = train("--max-steps", 2, "--no-center-normalize")
    assert first.exit_code == 0, first.stderr
    refused = train("--max-steps", 4, "--resume", "--center-normalize")
    assert refused.exit_code == 2 and "--center-normalize" in refused.stderr and "--resume" in refused.stderr
    resumed = train("--max-steps", 4, "--resume")
    assert resumed.exit_code == 0, resumed.stderr
    import torch

    assert torch.load(tmp_path / "run" / "resume.pt", weights_only=True)["state"]["step"] == 4  # went on from 2
    assert load_model(str(tmp_path / "m.pt")).extractor.config.center_normalize is False
