from __future__ import annotations

import editdistance
from hypothesis import given
from hypothesis import strategies as st

from ctctool.metrics import ErrorSummary, edit_ops, score_line


def test_hand_computed_breakdown():
    ops = edit_ops("kitten", "sitting")
    assert ops.substitutions == (("k", "s"), ("e", "i"))
    assert ops.insertions == ("g",) and ops.deletions == ()
    ops = edit_ops("abcd", "acd")
    assert ops.deletions == ("b",) and ops.errors == 1
    assert edit_ops("same", "same").errors == 0
    assert edit_ops("", "xy").insertions == ("x", "y")


def test_summary_rates_and_confusions():
    summary = ErrorSummary()
    summary.add(score_line("1", "a.png", "the cat", "the bat"))
    summary.add(score_line("2", "b.png", "a dog", "a dog"))
    summary.add(score_line("3", "c.png", "Hi", "hi"))
    assert summary.lines == 3 and summary.chars == 14 and summary.words == 5
    assert summary.char_errors == 2 and summary.cer == 2 / 14
    assert summary.word_errors == 2 and summary.wer == 2 / 5
    assert summary.substitutions == 2 and summary.insertions == summary.deletions == 0
    assert summary.confusions[("c", "b")] == 1 and summary.confusions[("H", "h")] == 1
    assert summary.case_insensitive_char_errors == 1


@given(st.text("abc ", max_size=12), st.text("abcd ", max_size=12))
def test_edit_ops_is_minimal(reference, hypothesis):
    assert edit_ops(reference, hypothesis).errors == editdistance.eval(reference, hypothesis)
