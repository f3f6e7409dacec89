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
