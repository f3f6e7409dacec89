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


@settings(max_examples=200, deadline=None)
@given(st.data(), st.sets(st.one_of(st.text("ab ", min_size=1, max_size=24), st.text("ab ", min_size=15, max_size=16)),
                          max_size=6))
def test_lm_text_leaves_out_test_transcripts_and_lines_holding_a_long_one(tmp_path_factory, data, tests):
    """The LM never reads a test line: the indexed search leaves out exactly what a plain
    substring search over every test transcript would. Lines are built around test
    transcripts, so lines holding one (at its start, middle or end) are common."""
    piece = st.one_of(st.just(""), st.text("ab ", max_size=8))
    inner = st.sampled_from(sorted(tests)) if tests else piece
    lines = data.draw(st.lists(st.builds(lambda a, b, c: a + b + c, piece, st.one_of(piece, inner), piece),
                               max_size=12))
    folder = tmp_path_factory.mktemp("lm")
    source = folder / "corpus.txt"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    kept = bench._lm_text([(source, "text")], set(tests), folder / "lm.txt").read_text(encoding="utf-8")
    long_tests = [test for test in tests if len(test) >= 15]
    expected = [t for t in source.read_text(encoding="utf-8").splitlines()
                if t.strip() and t not in tests and not any(test in t for test in long_tests)]
    assert kept == "\n".join(expected) + "\n"
