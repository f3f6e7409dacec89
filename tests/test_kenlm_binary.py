"""KenLM binary word LMs: recognized by their magic bytes whatever the file is called, refused with
a message that says what to install when the kenlm module is missing, refused in combinations
the Python-side scorer cannot join, and, when kenlm is installed, scored exactly as the ARPA
back-off arithmetic says (our own reader as the reference) with the search still exact."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_word_lm import _labelling_totals, corpus

from ctctool.codec import Codec
from ctctool.decoding.kenlm_binary import KENLM_MAGIC, is_kenlm_binary
from ctctool.decoding.word_lm import BOS, EOS, build_kneser_ney
from ctctool.errors import ConfigError, OptionError
from ctctool.recognition import build_decode_options

LABELS = [" ", "a", "b", "c"]


def fake_binary(tmp_path, name="words.klm"):
    path = tmp_path / name
    path.write_bytes(KENLM_MAGIC + b" format version 5\n\0" + b"\0" * 64)
    return str(path)


def test_kenlm_binaries_are_known_by_their_magic_not_their_name(tmp_path):
    assert is_kenlm_binary(fake_binary(tmp_path, "lm.bin")) and is_kenlm_binary(fake_binary(tmp_path, "lm"))
    (tmp_path / "chars.npz").write_bytes(b"PK\x03\x04")
    assert not is_kenlm_binary(str(tmp_path / "chars.npz")) and not is_kenlm_binary(str(tmp_path / "missing"))


def test_without_the_kenlm_module_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "kenlm", None)  # import kenlm now raises ImportError
    path = fake_binary(tmp_path)
    with pytest.raises(ConfigError, match=r"needs the kenlm module \(pip install 'ctctool\[kenlm\]'\)"):
        build_decode_options(Codec(LABELS), lm=path)


def test_the_cli_reports_a_missing_kenlm_module_in_one_line(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from ctctool.cli import app

    monkeypatch.setitem(sys.modules, "kenlm", None)
    path = fake_binary(tmp_path)
    image = tmp_path / "line.png"
    from PIL import Image

    Image.new("L", (40, 32), 255).save(image)
    done = CliRunner().invoke(app, ["decode", "latin-print", str(image), "--lm", path])
    assert done.exit_code != 0 and "pip install 'ctctool[kenlm]'" in done.stderr
    assert "Traceback" not in done.output


def test_a_kenlm_binary_joins_no_other_scorer(tmp_path):
    path = fake_binary(tmp_path)
    (tmp_path / "words.txt").write_text("ab\n", encoding="utf-8")
    for extra in ({"lexicon": str(tmp_path / "words.txt")}, {"hotwords": ["ab"]}):
        with pytest.raises(OptionError, match="give the ARPA file instead"):
            build_decode_options(Codec(LABELS), lm=path, **extra)


SENTENCES = [["ab", "a"], ["a", "ab", "b"], ["b", "ba", "cab"], ["ab"], ["c", "a"]]


@pytest.fixture(scope="module")
def kenlm_model(tmp_path_factory):
    kenlm = pytest.importorskip("kenlm")
    model = build_kneser_ney(SENTENCES, order=3)
    path = tmp_path_factory.mktemp("kenlm") / "words.arpa"
    model.save(str(path))
    return model, kenlm.Model(str(path))  # the same scoring API a binary file gets


def test_the_scorer_totals_equal_the_arpa_arithmetic(kenlm_model):
    from ctctool.decoding.kenlm_binary import KenLMBinaryScorer

    model, theirs = kenlm_model
    alpha, beta, unk = 0.7, 0.4, -2.5
    scorer = KenLMBinaryScorer(theirs, LABELS, alpha=alpha, beta=beta, unk_offset=unk)
    for text in ["ab a", "a ab b", "cab  ba", " b", "ccc a", "ab "]:
        state, total = scorer.start_state(), 0.0
        for char in text:
            delta, state = scorer.score_partial_token(state, LABELS.index(char) + 1)
            total += delta
        total += scorer.score_final(state)
        words, history, expected = text.split(), [BOS], 0.0
        for word in [*words, EOS]:
            expected += alpha * math.log(10) * model.log10_prob(history, word)
            if word != EOS:
                expected += beta + (0.0 if word in model.vocabulary else unk)
            history.append(word)
        assert total == pytest.approx(expected, abs=1e-4), text  # kenlm stores floats


@given(st.integers(0, 2**32 - 1), st.integers(2, 5), st.floats(0.1, 2.0), st.floats(-1.0, 1.0))
@settings(max_examples=25, deadline=None)
def test_a_wide_unpruned_beam_with_a_kenlm_model_finds_the_best_labelling(kenlm_model, seed, frames, alpha, beta):
    from ctctool.decoding import prefix_beam_search
    from ctctool.decoding.kenlm_binary import KenLMBinaryScorer

    scorer = KenLMBinaryScorer(kenlm_model[1], LABELS, alpha=alpha, beta=beta, unk_offset=-3.0)
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.0, size=(frames, 5))
    log_probs = (logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)).astype(np.float32)
    totals = _labelling_totals(log_probs, scorer)
    top = prefix_beam_search(log_probs, beam_width=5 ** frames, prune_log_prob=float("-inf"), scorers=scorer)
    assert top[0].score + top[0].lm_score == pytest.approx(max(totals.values()), abs=1e-6)


def test_decode_options_take_a_kenlm_file_and_the_search_uses_it(kenlm_model, tmp_path, monkeypatch):
    from ctctool.decoding import kenlm_binary, prefix_beam_search

    arpa_path = tmp_path / "words.arpa"
    build_kneser_ney(corpus(seed=1), order=2).save(str(arpa_path))
    monkeypatch.setattr(kenlm_binary, "is_kenlm_binary", lambda path: True)  # an ARPA file stands in
    monkeypatch.setattr("ctctool.recognition.is_kenlm_binary", lambda path: True)
    options = build_decode_options(Codec(LABELS), lm=str(arpa_path), alpha=1.0)
    assert isinstance(options.scorers, kenlm_binary.KenLMBinaryScorer)
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 1.0, size=(12, 5))
    log_probs = (logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)).astype(np.float32)
    assert prefix_beam_search(log_probs, beam_width=8, scorers=options.scorers)


def test_a_damaged_kenlm_binary_is_an_input_error_naming_the_file(tmp_path):
    pytest.importorskip("kenlm")
    from ctctool.decoding.kenlm_binary import load_kenlm
    from ctctool.errors import InputFileError

    path = tmp_path / "damaged.klm"
    path.write_bytes(KENLM_MAGIC + b" format version 5\n\0" + bytes(range(256)) * 20)
    with pytest.raises(InputFileError, match="damaged.klm: KenLM cannot read this LM"):
        load_kenlm(str(path))


def test_the_arpa_loader_points_a_kenlm_binary_to_the_scorer_that_reads_it(tmp_path):
    from ctctool.decoding.word_lm import WordLMScorer

    with pytest.raises(ConfigError, match="is a KenLM binary, not ARPA: score it with .*KenLMBinaryScorer"):
        WordLMScorer(fake_binary(tmp_path), LABELS)
