"""The models that ship: small, documented, loadable by name, and working out of the box on
lines they never saw (the figures their cards and the README give)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ctctool.models import bundled_models

REPO = Path(__file__).resolve().parent.parent


SHIPPED = bundled_models()


def test_the_bundled_models_are_the_ones_the_readme_promises():
    assert {card.name for card in SHIPPED} >= {"latin-print"}


@pytest.mark.parametrize("card", SHIPPED, ids=[card.name for card in SHIPPED])
def test_each_bundled_model_is_small_documented_and_loads(card):
    from ctctool.checkpoint import load_model

    assert card.file_bytes <= 20 * 1024 * 1024
    assert card.rebuild.startswith("make ") and card.metrics
    for figures in card.metrics.values():
        assert 0 <= figures["cer"] < 1 and figures["lines"] > 0
    loaded = load_model(card.name)
    assert loaded.modality == card.modality


def test_latin_print_spells_its_whole_alphabet_and_reads_lines_it_never_saw():
    """The card's promise: printable ASCII, typographic quotes and dashes, Latin-1. The bundled
    OCR test lines are public-domain text in DejaVu / Liberation / FreeFont, not the model's
    training lines; it must read them well without any training by the user."""
    from ctctool.checkpoint import load_model
    from ctctool.manifest import read_manifest
    from ctctool.metrics import ErrorSummary, score_line
    from ctctool.recognition import build_decode_options, decode_items

    loaded = load_model("latin-print")
    labels = set(loaded.codec.labels)
    expected = {chr(c) for c in range(0x20, 0x7F)} | {chr(c) for c in range(0xA1, 0x100) if c != 0xAD}
    assert expected | set("‘’“”–—…€") <= labels
    items = read_manifest(REPO / "data" / "ocr" / "test.jsonl")[:40]
    options = build_decode_options(loaded.codec, beam=1)
    summary = ErrorSummary()
    for item, result in zip(items, decode_items(loaded, items, options=options)):
        summary.add(score_line(item.id, item.path, item.text, result.text))
    assert summary.cer < 0.05, summary.cer


def test_decode_takes_a_bundled_name_right_after_install(tmp_path):
    """`ls scans/*.png | ctctool decode latin-print - --format jsonl` from the README, as a user runs it."""
    lines = sorted((REPO / "data" / "ocr" / "lines").glob("test-0000[0-2].png"))
    result = subprocess.run([sys.executable, "-m", "ctctool", "decode", "latin-print", "-", "--format", "jsonl"],
                            input="\n".join(map(str, lines)) + "\n", capture_output=True, text=True, cwd=tmp_path,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["path"] for row in rows] == list(map(str, lines))
    assert all(len(row["text"]) > 10 for row in rows)


def test_en_digits_hears_engines_and_voices_it_never_heard():
    """The card's promise for speech, on clips no en-digits recipe made: data/speech/test-heldout
    is espeak-ng voices the recipe holds out (en-029, f4, m6, klatt2), test-engines flite and
    festival voices (five of its six are in en-digits' training, with other utterances, speeds
    and pitches; flite rms is held out). It must read them without any training by the user."""
    from ctctool.checkpoint import load_model
    from ctctool.manifest import read_manifest
    from ctctool.metrics import ErrorSummary, score_line
    from ctctool.recognition import build_decode_options, decode_items

    loaded = load_model("en-digits")
    assert loaded.modality == "audio" and set("abcdefghijklmnopqrstuvwxyz ") >= set(loaded.codec.labels) - {"'"}
    options = build_decode_options(loaded.codec, beam=1)
    for name, limit in (("test-heldout", 0.10), ("test-engines", 0.15)):
        items = read_manifest(REPO / "data" / "speech" / f"{name}.jsonl")[:60]
        summary = ErrorSummary()
        for item, result in zip(items, decode_items(loaded, items, options=options)):
            summary.add(score_line(item.id, item.path, item.text, result.text))
        assert summary.wer < limit, (name, summary.wer)


# ---------------------------------------------------------------- the shipped ONNX exports


@pytest.mark.parametrize("card", bundled_models(), ids=lambda card: card.name)
def test_each_bundled_model_ships_a_current_onnx_export(card):
    """A re-trained .pt without `make models-onnx` would silently fall back to PyTorch: this fails instead."""
    from ctctool.fileio import file_sha256
    from ctctool.onnx_network import load_onnx_model

    export = card.path.with_suffix(".onnx")
    assert export.is_file(), f"run make models-onnx: {export} is missing"
    load_onnx_model(str(export), source_sha256=file_sha256(str(card.path)))  # raises when stale
    assert export.stat().st_size <= 20 * 1024 * 1024


def _network_kind(spec, runtime="auto", device="cpu"):
    from ctctool.cli.common import Backend, Runtime, load_for_inference

    loaded, _ = load_for_inference(spec, Runtime(threads=1, device=device), backend=Backend(runtime=runtime))
    return type(loaded.network).__name__


def test_bundled_models_run_their_export_on_the_cpu_unless_told_otherwise():
    assert _network_kind("latin-print") == "OnnxNetwork"
    assert _network_kind("latin-print", runtime="onnx") == "OnnxNetwork"
    assert _network_kind("latin-print", runtime="torch") != "OnnxNetwork"
    card = next(card for card in bundled_models() if card.name == "latin-print")
    assert _network_kind(str(card.path)) != "OnnxNetwork"  # a path is run as given


def test_a_stale_export_or_no_onnxruntime_falls_back_to_pytorch(tmp_path, monkeypatch):
    import importlib.util
    import shutil

    import ctctool.models as models

    for suffix in (".pt", ".json"):
        shutil.copy(models.BUNDLED_DIR / f"latin-print{suffix}", tmp_path / f"latin-print{suffix}")
    shutil.copy(models.BUNDLED_DIR / "en-digits.onnx", tmp_path / "latin-print.onnx")  # another model's export
    monkeypatch.setattr(models, "BUNDLED_DIR", tmp_path)
    assert _network_kind("latin-print") != "OnnxNetwork"
    shutil.copy(Path(models.__file__).parent / "latin-print.onnx", tmp_path / "latin-print.onnx")  # its own
    assert _network_kind("latin-print") == "OnnxNetwork"
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    assert _network_kind("latin-print") != "OnnxNetwork"


def test_the_export_reads_the_same_text_as_pytorch(tmp_path):
    lines = [json.loads(line) for line in (REPO / "data/ocr/test.jsonl").read_text().splitlines()[:40]]
    paths = "".join(str(REPO / "data/ocr" / line["path"]) + "\n" for line in lines)
    texts = {}
    for runtime in ("auto", "torch"):
        done = subprocess.run([sys.executable, "-m", "ctctool", "decode", "latin-print", "-", "--runtime", runtime,
                               "--threads", "1"], input=paths, capture_output=True, text=True, check=True)
        texts[runtime] = done.stdout
    assert texts["auto"] == texts["torch"] and texts["auto"].count("\n") == 40
