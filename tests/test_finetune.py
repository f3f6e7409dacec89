"""train --init: start from a model's weights, keep / extend / replace its alphabet."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from ctctool.checkpoint import describe_model, load_model
from ctctool.cli import app
from ctctool.errors import CodecError, OptionError
from ctctool.finetune import FINE_TUNE_LR, fine_tune_start
from ctctool.train import TrainConfig

runner = CliRunner()


def _relabelled(tiny_data, tmp_path: Path, suffix: str, count: int = 24) -> Path:
    """The tiny training lines with ``suffix`` appended to every transcript (plumbing only: the
    images do not show it)."""
    for image in (tiny_data["root"] / "lines").iterdir():
        (tmp_path / "lines").mkdir(exist_ok=True)
        shutil.copy(image, tmp_path / "lines" / image.name)
    rows = [json.loads(line) for line in tiny_data["train"].read_text().splitlines()[:count]]
    manifest = tmp_path / "new.jsonl"
    manifest.write_text("".join(json.dumps({**row, "text": row["text"] + suffix}) + "\n" for row in rows))
    return manifest


def _new_chars(model) -> str:
    return "".join(ch for ch in "@~^§" if ch not in model.codec.labels)[:2]


def test_union_appends_labels_and_keeps_the_parents_predictions(tiny_model):
    parent = load_model(str(tiny_model))
    new = _new_chars(parent)
    start = fine_tune_start(parent, [f"ab{new}"], "union", seed=3)
    assert start.codec.labels == parent.codec.labels + tuple(sorted(new))
    assert start.model_config.num_classes == parent.codec.size + len(new)
    old_state = parent.network.state_dict()
    for key, value in start.state_dict.items():
        if key.startswith("output."):
            assert torch.equal(value[: parent.codec.size], old_state[key])
        else:
            assert torch.equal(value, old_state[key])
    from ctctool.model import CTCRecognizer

    child = CTCRecognizer(start.model_config)
    child.load_state_dict(start.state_dict)
    child.eval()
    features = torch.rand(2, 1, 32, 120)
    lengths = torch.tensor([120, 90])
    with torch.no_grad():
        before, _ = parent.network(features, lengths)
        after, _ = child(features, lengths)
    assert torch.equal(before.argmax(-1), after.argmax(-1))  # new labels start unlikely
    assert start.parent["alphabet"] == "union" and start.parent["labels_added"] == "".join(sorted(new))


def test_keep_refuses_new_characters_with_a_hint_and_lenient_skips(tiny_model):
    parent = load_model(str(tiny_model))
    new = _new_chars(parent)
    with pytest.raises(CodecError, match="--alphabet union"):
        fine_tune_start(parent, [f"a{new}"], "keep")
    start = fine_tune_start(parent, [f"a{new}"], "keep", lenient=True)
    assert start.codec == parent.codec
    with pytest.raises(OptionError, match="keep, union, replace"):
        fine_tune_start(parent, ["a"], "merge")


def test_replace_starts_a_new_output_layer_and_keeps_the_rest(tiny_model):
    parent = load_model(str(tiny_model))
    start = fine_tune_start(parent, ["xyz 123"], "replace", seed=0)
    assert start.codec.labels == tuple(sorted("xyz 123"))
    assert start.state_dict["output.weight"].shape[0] == start.codec.size
    assert torch.equal(start.state_dict["conv.0.0.weight"], parent.network.state_dict()["conv.0.0.weight"])


def test_cli_init_union_trains_records_the_parent_and_learns_the_labels(tiny_model, tiny_data, tmp_path):
    parent = load_model(str(tiny_model))
    new = _new_chars(parent)
    manifest = _relabelled(tiny_data, tmp_path, new)
    out = tmp_path / "child.pt"
    result = runner.invoke(app, ["train", str(manifest), "--val", str(manifest), "-o", str(out), "--init",
                                 str(tiny_model), "--alphabet", "union", "--max-steps", "3", "--batch-size", "8",
                                 "--eval-every", "3", "--run-dir", str(tmp_path / "run"), "--quiet",
                                 "--device", "cpu"])
    assert result.exit_code == 0, result.output
    child = load_model(str(out))
    assert child.codec.labels[: len(parent.codec.labels)] == parent.codec.labels
    assert set(new) <= set(child.codec.labels)
    assert child.extractor.config_dict() == parent.extractor.config_dict()
    info = describe_model(str(out))["training"]["parent"]
    assert info["alphabet"] == "union" and info["labels_added"] == "".join(sorted(new))
    assert info["sha256"] and info["model"] == str(tiny_model)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["train_config"]["lr"] == FINE_TUNE_LR < TrainConfig.lr  # the gentler default of fine-tuning


def test_cli_init_may_change_how_lines_are_prepared_and_resume_keeps_it(tiny_model, tiny_data, tmp_path):
    """Deslant and centre normalization are line preparation, not network shape: a fine-tune may
    switch them on; the child records them, and a resume continues with them."""
    parent = load_model(str(tiny_model))
    assert not parent.extractor.config.center_normalize and not parent.extractor.config.deslant
    out, run = tmp_path / "child.pt", tmp_path / "run"
    args = ["train", str(tiny_data["train"]), "--val", str(tiny_data["val"]), "-o", str(out), "--init",
            str(tiny_model), "--alphabet", "union", "--max-steps", "2", "--batch-size", "8", "--eval-every", "2",
            "--run-dir", str(run), "--quiet", "--device", "cpu"]
    result = runner.invoke(app, [*args, "--center-normalize", "--deslant"])
    assert result.exit_code == 0, result.output
    child = load_model(str(out)).extractor.config_dict()
    # Turned on by the fine-tune: measured against each line's own paper (center_ink, format 4).
    assert child == {**parent.extractor.config_dict(), "center_normalize": True, "center_ink": "relative",
                     "deslant": True}
    assert json.loads((run / "config.json").read_text())["features"]["center_normalize"] is True
    refused = runner.invoke(app, [*args, "--resume", "--max-steps", "3", "--no-center-normalize"])
    assert refused.exit_code == 2 and "--no-center-normalize: the run in" in refused.stderr
    resumed = runner.invoke(app, [*args, "--resume", "--max-steps", "3"])  # flags left out: the run's
    assert resumed.exit_code == 0, resumed.output
    assert load_model(str(out)).extractor.config_dict() == child
    speech = Path(__file__).resolve().parents[1] / "data" / "speech" / "val.jsonl"
    result = runner.invoke(app, ["train", str(speech), "-o", str(tmp_path / "s.pt"), "--init", "en-digits",
                                 "--center-normalize"])
    assert result.exit_code == 2 and "--center-normalize: only image lines" in result.stderr
    result = runner.invoke(app, ["train", str(speech), "-o", str(tmp_path / "s.pt"), "--no-center-normalize"])
    assert result.exit_code == 2 and "--no-center-normalize: only image lines" in result.stderr  # not ignored


@pytest.mark.parametrize(("args", "message"), [
    (["--height", "48"], "--height: the features and network shape come from the --init model"),
    (["--preset", "tiny", "--hidden", "64"], "--preset, --hidden"),
    (["--alphabet", "merge"], "keep, union, replace"),
])
def test_cli_init_conflicting_flags_are_usage_errors(tiny_model, tiny_data, tmp_path, args, message):
    result = runner.invoke(app, ["train", str(tiny_data["train"]), "-o", str(tmp_path / "m.pt"), "--init",
                                 str(tiny_model), *args])
    assert result.exit_code == 2 and message in result.stderr


def test_cli_alphabet_mode_without_init_and_wrong_modality(tiny_model, tiny_data, tmp_path):
    result = runner.invoke(app, ["train", str(tiny_data["train"]), "-o", str(tmp_path / "m.pt"), "--alphabet",
                                 "union"])
    assert result.exit_code == 2 and "needs --init" in result.stderr and "./union" in result.stderr
    speech = Path(__file__).resolve().parents[1] / "data" / "speech" / "val.jsonl"
    result = runner.invoke(app, ["train", str(speech), "-o", str(tmp_path / "m.pt"), "--init", str(tiny_model)])
    assert result.exit_code == 1 and "image model cannot start training on audio" in result.stderr
