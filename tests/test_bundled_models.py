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
