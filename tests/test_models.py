"""The registry of bundled models: names resolve wherever a model is taken, cards are checked,
and a broken card is a clear error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ctctool.errors import CheckpointError
from ctctool.models import BUNDLED_DIR, bundled_model, bundled_models, resolve_model

REPO = Path(__file__).resolve().parent.parent
CARD = {"description": "a test model", "modality": "image", "training_data": "six steps on tiny lines",
        "licence": "MIT", "rebuild": "pytest", "metrics": {"val": {"cer": 0.5, "wer": 0.9, "lines": 8}}}


@pytest.fixture()
def registry(tmp_path, tiny_model) -> Path:
    shutil.copy(tiny_model, tmp_path / "tiny-lines.pt")
    (tmp_path / "tiny-lines.json").write_text(json.dumps(CARD))
    (tmp_path / "no-weights.json").write_text(json.dumps(CARD))  # a card without its model: not listed
    return tmp_path


def test_a_name_resolves_to_its_file_and_a_path_to_itself(registry, tiny_model):
    assert resolve_model("tiny-lines", registry) == str(registry / "tiny-lines.pt")
    assert resolve_model(str(tiny_model), registry) == str(tiny_model)
    assert [card.name for card in bundled_models(registry)] == ["tiny-lines"]
    card = bundled_model("tiny-lines", registry)
    assert card.metrics["val"]["cer"] == 0.5 and card.file_bytes == tiny_model.stat().st_size


def test_a_name_wins_over_a_file_of_that_name_and_dot_slash_reaches_the_file(registry, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_model("tiny-lines", registry) == str(registry / "tiny-lines.pt")
    (tmp_path / "mine").write_bytes(b"x")
    assert resolve_model("./mine", registry) == "./mine"


@pytest.mark.parametrize("spec", ["tiny-linez", "no-weights", "../tiny-lines", "Tiny-Lines"])
def test_an_unknown_name_is_an_error_listing_the_bundled_names(registry, spec):
    with pytest.raises(CheckpointError, match=r"no such model file, and not a bundled model name \(bundled: tiny-lines\)"):
        resolve_model(spec, registry)


@pytest.mark.parametrize("change", [{"licence": None}, {"modality": 3}, {"metrics": [1, 2]}, "not json"])
def test_a_broken_card_names_the_card_and_the_field(registry, change):
    card_path = registry / "tiny-lines.json"
    if isinstance(change, str):
        card_path.write_text("{" + change)
        expected = "unreadable model card"
    else:
        card_path.write_text(json.dumps({**CARD, **change}))
        expected = f"{next(iter(change))}: expected"
    with pytest.raises(CheckpointError, match=f"tiny-lines.json: .*{expected}"):
        bundled_model("tiny-lines", registry)


def test_library_and_commands_take_a_name(registry, monkeypatch, tiny_data, capsys):
    from typer.testing import CliRunner

    import ctctool
    import ctctool.models
    from ctctool.cli import app

    monkeypatch.setattr(ctctool.models, "BUNDLED_DIR", registry)
    loaded = ctctool.load_model("tiny-lines")
    assert loaded.path == str(registry / "tiny-lines.pt")
    runner = CliRunner()
    listing = runner.invoke(app, ["models", "--json"])
    assert listing.exit_code == 0, listing.output
    rows = json.loads(listing.output)
    assert [row["name"] for row in rows] == ["tiny-lines"]
    assert rows[0]["alphabet_size"] == len(loaded.codec.labels) and rows[0]["metrics"] == CARD["metrics"]
    plain = runner.invoke(app, ["models"], env={"COLUMNS": "80"})
    assert plain.exit_code == 0 and "tiny-lines: image" in plain.output
    assert max(map(len, plain.output.splitlines())) <= 80 and CARD["licence"].split()[0] in plain.output
    info = runner.invoke(app, ["info", "tiny-lines", "--json"])
    assert info.exit_code == 0, info.output
    assert json.loads(info.output)["card"]["training_data"] == CARD["training_data"]
    evaluated = runner.invoke(app, ["eval", "tiny-lines", str(tiny_data["val"]), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.output)["lines"] == 8
    wrong = runner.invoke(app, ["decode", "tiny-linez", "-"], input="x.png\n")
    assert wrong.exit_code != 0 and "not a bundled model name (bundled: tiny-lines)" in wrong.output
    child = registry / "child.pt"
    tuned = runner.invoke(app, ["train", str(tiny_data["val"]), "-o", str(child), "--init", "tiny-lines",
                                "--max-steps", "2", "--batch-size", "4", "--run-dir", str(registry / "run"),
                                "--quiet", "--device", "cpu"])
    assert tuned.exit_code == 0, tuned.output
    parent = ctctool.load_model(str(child)).metadata["parent"]
    assert parent["model"] == "tiny-lines" and len(parent["sha256"]) == 64


def test_the_package_data_declaration_covers_every_bundled_file():
    """A wheel carries ctctool/models/* only if pyproject says so; `make test-slow` builds one to check."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = declared["ctctool.models"]
    for path in BUNDLED_DIR.iterdir():
        if path.suffix in (".pt", ".json"):
            assert any(path.match(pattern) for pattern in patterns), path
