"""The word-LM benchmark's split and paired comparison: the README's claims about the peer
comparison rest on them (no test transcript is tuned on; the interval is over test lines)."""

import importlib.util
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

_SPEC = importlib.util.spec_from_file_location("bench_word_lm", Path(__file__).parent / "bench" / "word_lm.py")
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["a b", "c", "the cat", "a", "dog ran", "x y z"]), max_size=30))
def test_split_keeps_every_item_and_each_text_in_one_half(texts):
    inputs = list(range(len(texts)))
    val, test = bench.split_by_text(inputs, texts)
    assert sorted(k for k, _ in val + test) == inputs
    assert not {t for _, t in val} & {t for _, t in test}
    assert all(texts[k] == t for k, t in val + test)


def test_paired_difference_of_equal_outputs_is_zero():
    references = ["the cat sat", "on the mat", "a dog"]
    result = bench.paired_difference(["the cat sat", "on a mat", "a"], ["the cat sat", "on a mat", "a"], references)
    assert result == {"wer_diff": 0.0, "low": 0.0, "high": 0.0, "ours_better": 0, "peer_better": 0}


def test_paired_difference_counts_lines_and_brackets_the_difference():
    references = ["the cat sat", "on the mat", "a dog ran", "it is"]
    ours = ["the cat sat", "on the mat", "a dog ran", "it"]        # 1 word error
    peers = ["the cat sat", "on a mat", "a dog", "it is"]          # 2 word errors
    result = bench.paired_difference(ours, peers, references, resamples=500, seed=1)
    assert result["wer_diff"] == 100 * (1 - 2) / 11
    assert result["ours_better"] == 2 and result["peer_better"] == 1
    assert result["low"] <= result["wer_diff"] <= result["high"]
    assert bench.paired_difference(ours, peers, references, resamples=500, seed=1) == result  # seeded
