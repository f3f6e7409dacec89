"""Checks shared by the per-line image steps a model records (--deslant, --center-normalize):
the step reaches every command that reads lines, and audio refuses it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from ctctool.cli import app

runner = CliRunner()
SPEECH_TRAIN = Path(__file__).resolve().parent.parent / "data" / "speech" / "train.jsonl"


def check_step_model(model: Path, tiny_data: dict, tmp_path: Path, flag: str, *, reader: int) -> None:
    """``model`` (trained with ``flag``) asks for a format-``reader`` ctctool, aligns every
    character inside its own line, and ``flag`` is refused for audio. (With --init the flag is
    allowed: test_finetune.py.)"""
    from ctctool.checkpoint import read_model_file

    assert read_model_file(str(model))["min_reader_version"] == reader  # older readers would skip the step
    aligned = runner.invoke(app, ["align", str(model), str(tiny_data["train"]), "--format", "jsonl"])
    assert aligned.exit_code == 0, aligned.stderr
    rows = [json.loads(line) for line in aligned.stdout.splitlines()]
    assert len(rows) == 48
    for row in rows:  # padding or scaling maps to no page column outside the line
        width = Image.open(tiny_data["root"] / row["path"]).width
        assert all(0 <= c["start"] <= c["end"] <= width for c in row["chars"]), row["path"]
    audio = runner.invoke(app, [str(a) for a in ("train", SPEECH_TRAIN, flag, "-o", tmp_path / "a.pt")])
    assert audio.exit_code == 2 and f"{flag}: only image lines" in audio.stderr


def check_onnx_carries_step(model: Path, tiny_data: dict, tmp_path: Path, *, version: int) -> None:
    """The ONNX export of ``model`` says metadata format ``version`` and gives the same
    log-probabilities as the PyTorch model on 16 lines (so it applies the same step)."""
    from ctctool.checkpoint import load_model
    from ctctool.export import export_onnx
    from ctctool.inference import run_network
    from ctctool.manifest import read_manifest
    from ctctool.onnx_network import describe_onnx_model, load_onnx_model

    export_onnx(load_model(str(model)), str(tmp_path / "m.onnx"))
    assert describe_onnx_model(str(tmp_path / "m.onnx"))["format"].endswith(f" {version}")  # older readers refuse it
    onnx_model = load_onnx_model(str(tmp_path / "m.onnx"))
    assert onnx_model.extractor.config == load_model(str(model)).extractor.config
    items = read_manifest(tiny_data["train"])[:16]
    want = [out.log_probs for out in run_network(load_model(str(model)), items, batch_size=8)]
    got = [out.log_probs for out in run_network(onnx_model, items, batch_size=8)]
    assert all(g.shape == w.shape and np.abs(g - w).max() < 1e-4 for g, w in zip(got, want))


def train_step_model(tiny_data: dict, folder: Path, *flags: str) -> Path:
    """A tiny image model trained 2 steps with ``flags``: enough for every command's plumbing."""
    out = folder / "m.pt"
    result = runner.invoke(app, [str(a) for a in (
        "train", tiny_data["train"], "--val", tiny_data["val"], "-o", out, "--run-dir", folder / "run",
        "--max-steps", 2, "--batch-size", 8, "--hidden", 16, "--quiet", *flags)])
    assert result.exit_code == 0, result.stderr
    return out
