"""End-to-end training checks (make test-slow): real data, real learning, a few minutes each."""

from __future__ import annotations

import pytest
from conftest import REPO

from ctctool.evaluation import evaluate_items
from ctctool.features import default_extractor
from ctctool.manifest import read_manifest
from ctctool.recognition import DecodeOptions
from ctctool.train import TrainConfig, train

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("modality, folder, steps, metric, limit", [
    ("image", "ocr", 1050, "cer", 0.10),
    ("audio", "speech", 800, "wer", 0.30),
])
def test_training_learns_the_bundled_data(tmp_path, modality, folder, steps, metric, limit):
    data = REPO / "data" / folder
    result = train(read_manifest(data / "train.jsonl"), output=str(tmp_path / "m.pt"), run_dir=str(tmp_path / "run"),
                   extractor=default_extractor(modality), val_items=read_manifest(data / "val.jsonl"),
                   config=TrainConfig(max_steps=steps, eval_every=steps // 2, seed=0))
    last = result.history[-1]
    assert last[metric] < limit, result.history
    from ctctool.checkpoint import load_model

    report = evaluate_items(load_model(str(tmp_path / "m.pt")), read_manifest(data / "val.jsonl"),
                            options=DecodeOptions(beam=16))
    assert getattr(report.summary, metric) <= last[metric] + 0.02  # beam search is no worse than greedy


def test_init_union_learns_a_new_character(tmp_path):
    """A digits model fine-tuned with --alphabet union reads '+' between digits, which its parent
    never saw, on synthetic lines it did not train on; and it still reads plain digits."""
    import random

    from PIL import ImageFont
    from typer.testing import CliRunner

    from ctctool.checkpoint import load_model
    from ctctool.cli import app

    font = tmp_path / "Aileron.ttf"
    font.write_bytes(ImageFont.load_default(size=20).font_bytes)
    rng = random.Random(5)

    def digits() -> str:
        return "".join(rng.choice("0123456789") for _ in range(rng.randint(2, 5)))

    corpora = {"parent": [f"{digits()} {digits()}" for _ in range(600)],
               "child": [f"{digits()}+{digits()}" for _ in range(300)],
               "test": [f"{digits()}+{digits()}" for _ in range(60)] + [f"{digits()} {digits()}" for _ in range(20)]}
    runner = CliRunner()
    for name, lines in corpora.items():
        (tmp_path / f"{name}.txt").write_text("\n".join(lines) + "\n")
        result = runner.invoke(app, ["synth", str(tmp_path / f"{name}.txt"), "-o", str(tmp_path / name), "--fonts",
                                     str(font), "--degrade", "none,light", "--height", "32", "--seed",
                                     str(len(name)), "--workers", "1", "--quiet"])
        assert result.exit_code == 0, result.output
    common = ["--batch-size", "16", "--quiet", "--device", "cpu", "--seed", "0"]
    result = runner.invoke(app, ["train", str(tmp_path / "parent" / "manifest.jsonl"), "-o", str(tmp_path / "p.pt"),
                                 "--run-dir", str(tmp_path / "prun"), "--max-steps", "400", "--preset", "tiny",
                                 "--val", str(tmp_path / "parent" / "manifest.jsonl"), "--eval-every", "400",
                                 *common])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["train", str(tmp_path / "child" / "manifest.jsonl"), "-o", str(tmp_path / "c.pt"),
                                 "--run-dir", str(tmp_path / "crun"), "--max-steps", "250", "--init",
                                 str(tmp_path / "p.pt"), "--alphabet", "union", "--val",
                                 str(tmp_path / "child" / "manifest.jsonl"), "--eval-every", "250", *common])
    assert result.exit_code == 0, result.output
    assert "+" not in load_model(str(tmp_path / "p.pt")).codec.labels
    model = load_model(str(tmp_path / "c.pt"))
    items = read_manifest(str(tmp_path / "test" / "manifest.jsonl"))
    report = evaluate_items(model, items, options=DecodeOptions(beam=1))
    plus = [row for row in report.lines if "+" in row.reference]
    read_plus = sum(row.hypothesis.count("+") == 1 for row in plus)
    assert read_plus >= 0.9 * len(plus), f"'+' read in {read_plus} of {len(plus)} lines"
    assert report.summary.cer < 0.05


def test_a_built_wheel_carries_the_bundled_models(tmp_path):
    """`pip install ctctool` must bring latin-print with it: build the wheel as a user would
    (isolated build, Cython from the registry) and look inside."""
    import subprocess
    import sys
    import zipfile

    from ctctool.models import bundled_models

    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(tmp_path)],
                   check=True, timeout=900)
    wheel = next(tmp_path.glob("ctctool-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for card in bundled_models():
        assert f"ctctool/models/{card.name}.pt" in names and f"ctctool/models/{card.name}.json" in names


def test_the_eval_report_renders_in_a_real_browser(tmp_path):
    """Headless Chromium (apt-get install chromium) opens the report offline and draws it: the
    screenshot is not blank, and the worst lines' pictures make dark pixels in the lower part."""
    import shutil
    import subprocess

    import numpy as np
    from PIL import Image
    from typer.testing import CliRunner

    from ctctool.cli import app

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no chromium (apt-get install chromium)")
    report = tmp_path / "report.html"
    done = CliRunner().invoke(app, ["eval", "latin-print", str(REPO / "data/ocr/test-unseen-fonts.jsonl"),
                                    "--beam", "1", "--report", str(report)])
    assert done.exit_code == 0, done.output
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    f"--screenshot={shot}", "--window-size=1100,4200", report.as_uri()],
                   capture_output=True, timeout=180, check=True)
    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.shape == (4200, 1100)
    assert (pixels < 128).mean() > 0.01  # text, tables and line images were drawn
    assert (pixels[2400:] < 100).mean() > 0.005  # the worst lines' section, pictures included
