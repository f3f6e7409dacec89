"""The ARPA reader: the compiled scanner and its readable reference read every file, good or
bad, to the same arrays or the same error; the vectorized table compiler gives what the ARPA
back-off arithmetic says, whichever way contexts are keyed; the vectorized hash tables can be
probed exactly as the compiled search probes them, wrap-around included."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_word_lm import GOOD, corpus

from ctctool.decoding import arpa
from ctctool.decoding.word_lm import BOS, EOS, WordNgramLM, build_kneser_ney
from ctctool.errors import InputFileError

compiled_only = pytest.mark.skipif(arpa._compiled is None, reason="built without the extension")


def read_both(path):
    """(compiled result or error text, reference result or error text)."""
    results = []
    for compiled in (True, False):
        try:
            results.append(arpa.read_arpa(str(path), compiled=compiled))
        except InputFileError as exc:
            results.append(str(exc))
    return results


def assert_same(ours, theirs):
    if isinstance(ours, str) or isinstance(theirs, str):
        assert ours == theirs
        return
    assert ours.tokens == theirs.tokens and ours.num_unigrams == theirs.num_unigrams
    for name in ("ngrams", "log10_prob", "log10_backoff"):
        for a, b in zip(getattr(ours, name), getattr(theirs, name), strict=True):
            assert a.shape == b.shape and np.array_equal(a, b), name


GOOD_NUMBERS = st.one_of(
    st.floats(-20, 0).map(lambda x: f"{x:.7f}"), st.floats(-20, 0).map(repr), st.floats(-1e-3, 0).map(lambda x: f"{x:e}"),
    st.sampled_from(["-0", "0", "-.5", "-99", "-1.2345678901234567890", "-0.0000000000000000000000001", "-" + "1" * 60]))
BAD_NUMBERS = st.sampled_from(["5.", "+1", "-inf", "nan", "-1.5.2", "0x1p3", "1_0", "-", "abc", "1" * 70, "-1e999"])
NUMBERS = st.integers(0, 29).flatmap(lambda pick: BAD_NUMBERS if pick == 0 else GOOD_NUMBERS)
WORDS = st.sampled_from(["a", "b", "c", "d", "e", "f", "<s>", "</s>", "<unk>", "é", "\\x", "a\\b", "ab", "ba"])
SPACE = st.sampled_from([" ", "\t", "  ", " \t", "\r"])


@st.composite
def arpa_text(draw):
    """An ARPA file, mostly well formed, sometimes not in any of the ways a file can be wrong."""
    order = draw(st.integers(1, 3))
    sections, counts = [], []
    for n in range(1, order + 1):
        lines = []
        for _ in range(draw(st.integers(0, 6))):
            words = draw(st.lists(WORDS, min_size=n, max_size=n))
            fields = [draw(NUMBERS), *words]
            if draw(st.booleans()):
                fields.append(draw(NUMBERS))
            if draw(st.integers(0, 19)) == 0:
                fields = fields[:draw(st.integers(0, len(fields)))] + draw(st.lists(WORDS, max_size=2))
            lines.append(draw(SPACE).join(fields) + (draw(SPACE) if draw(st.booleans()) else ""))
            if draw(st.integers(0, 5)) == 0:
                lines.append(draw(st.sampled_from(["", "  ", "", "  ", "", "\\junk", " \\x-grams:"])))
        sections.append(lines)
        counts.append(len([line for line in lines if line.split()]) + draw(st.sampled_from([0] * 8 + [-1, 1])))
    header = "\\data\\\n" + "".join(f"ngram {n}={max(0, c)}\n" for n, c in enumerate(counts, start=1))
    body = "".join(f"\n\\{n}-grams:\n" + "\n".join(lines) + "\n" for n, lines in enumerate(sections, start=1))
    return header + body + ("\n\\end\\\n" if draw(st.integers(0, 19)) else "")


@compiled_only
@given(arpa_text())
@settings(max_examples=300, deadline=None)
def test_compiled_scanner_and_reference_agree_on_any_file(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("arpa") / "lm.arpa"
    path.write_text(text, encoding="utf-8")
    assert_same(*read_both(path))


@compiled_only
@pytest.mark.parametrize(("old", "new"), [
    ("-0.5\ta", "minus\ta"), ("-0.5\ta", "0.5\ta"), ("-0.5\ta", "nan\ta"), ("-0.4\t</s>", "-0.4\ta"),
    ("ngram 1=3", "ngram 1=300000000"), ("\\2-grams:", "\\3-grams:"), ("-0.1\t<s> a", "-0.1\t<s> a b c"),
    ("ngram 2=1", "ngram 2=2"), ("ngram 2=1", "ngram 2=0"), ("\\end\\\n", ""), ("-0.5\ta", "-0x1p-1\ta"),
    ("-0.5\ta", "-0.5\ta\t-0.2\t-0.1"), ("\\1-grams:", "junk\n\\1-grams:"), ("\\1-grams:", "\\junk\n\\1-grams:"),
])
def test_compiled_scanner_and_reference_refuse_bad_files_alike(tmp_path, old, new):
    path = tmp_path / "bad.arpa"
    path.write_text(GOOD.replace(old, new, 1), encoding="utf-8")
    ours, theirs = read_both(path)
    assert isinstance(ours, str) and ours == theirs and str(path) in ours


@compiled_only
def test_compiled_scanner_reads_a_built_model_as_the_reference_does(tmp_path):
    path = tmp_path / "lm.arpa.gz"
    build_kneser_ney(corpus(seed=4), order=4).save(str(path))
    ours, theirs = read_both(path)
    assert_same(ours, theirs)
    assert ours.order == 4 and ours.num_unigrams == len(ours.tokens)


def test_a_header_that_overstates_its_counts_allocates_nothing_for_them(tmp_path):
    path = tmp_path / "big.arpa"
    path.write_text(GOOD.replace("ngram 2=1", "ngram 2=150000000"), encoding="utf-8")
    with pytest.raises(InputFileError, match="says 150000000 2-grams, the section holds 1"):
        arpa.read_arpa(str(path))  # would need 3.6 GB if the arrays were sized by the header


def test_words_outside_the_unigrams_are_kept_apart_and_not_scored(tmp_path):
    from ctctool.decoding.word_tables import compile_arrays

    path = tmp_path / "lm.arpa"
    path.write_text(GOOD.replace("ngram 2=1", "ngram 2=2").replace("-0.1\t<s> a\n", "-0.1\t<s> a\n-0.2\ta zebra\n"),
                    encoding="utf-8")
    arrays = arpa.read_arpa(str(path))
    assert arrays.tokens[:arrays.num_unigrams] == ["<s>", "a", "</s>"] and arrays.tokens[3:] == ["zebra"]
    tables = compile_arrays(arrays)
    assert "zebra" not in tables.words
    assert WordNgramLM.load_arpa(str(path)).ngrams[1][("a", "zebra")] == (-0.2, 0.0)


@pytest.mark.parametrize("keyed", ["packed", "hashed"])
def test_tables_score_the_arpa_arithmetic_whichever_way_contexts_are_keyed(keyed, monkeypatch):
    from ctctool.decoding import word_tables

    if keyed == "hashed":  # what a vocabulary too large to pack n words into 63 bits gets
        monkeypatch.setattr(word_tables._Contexts, "_exact", lambda self, n: n == 1)
    model = build_kneser_ney(corpus(seed=21), order=5)
    tables = word_tables.compile_tables(model)
    ids = tables.word_id()
    for sentence in corpus(seed=22, lines=80):
        state, history = tables.start, [BOS]
        for word in [*sentence, EOS]:
            logp, state = tables.step(state, ids.get(word, 1))
            assert logp == pytest.approx(math.log(10) * model.log10_prob(history, word), abs=1e-9)
            history.append(word)


def probe(table, state, symbol):
    """A lookup walked as the compiled search walks it: from the key's home slot, forward with
    wrap-around, until the key or an empty slot."""
    from ctctool.decoding.tables import slot_of

    key = state * table.num_symbols + symbol
    slot = slot_of(key, table.bits)
    for _ in range(len(table.keys)):
        if table.keys[slot] == key:
            return int(table.next_state[slot]), float(table.value[slot])
        if table.keys[slot] == -1:
            return None
        slot = (slot + 1) % len(table.keys)
    return None


@given(st.lists(st.tuples(st.integers(0, 200), st.integers(0, 40)), unique=True, max_size=400))
@settings(max_examples=80, deadline=None)
def test_vectorized_hash_tables_can_be_probed_like_the_compiled_search(pairs):
    from ctctool.decoding.tables import TransitionTable

    entries = {(s, c): (i, i / 3) for i, (s, c) in enumerate(pairs)}
    table = TransitionTable.build(entries, 41)
    for (state, symbol), hit in entries.items():
        assert probe(table, state, symbol) == hit
    for state in range(201, 205):
        assert probe(table, state, 0) is None


def test_keys_that_run_past_the_last_slot_wrap_to_the_first_free_ones():
    from ctctool.decoding.tables import TransitionTable, slot_of

    count = 20
    bits = int(np.ceil(np.log2(count * 2 + 1)))  # the capacity from_arrays picks for 20 keys
    last = [k for k in range(200_000) if slot_of(k, bits) == (1 << bits) - 1][:6]
    first = [k for k in range(200_000) if slot_of(k, bits) == 0 and k not in last][:2]
    others = [k for k in range(1000) if k not in last and k not in first][:count - len(last) - len(first)]
    keys = np.array(last + first + others, dtype=np.int64)
    table = TransitionTable.from_arrays(keys, np.zeros(len(keys), np.int64), np.arange(len(keys), dtype=np.int32),
                                        keys.astype(np.float64), 1)
    assert table.bits == bits
    for index, key in enumerate(keys.tolist()):
        assert probe(table, key, 0) == (index, float(key))


@compiled_only
@given(st.data())
@settings(max_examples=300, deadline=None)
def test_mutated_files_never_crash_and_both_scanners_agree(tmp_path_factory, data):
    """Hostile files are normal input: bytes flipped, inserted or cut anywhere in a good file
    end in the same arrays or the same one-line error from both scanners, never a crash."""
    raw = bytearray(GOOD.replace("ngram 2=1", "ngram 2=2")
                    .replace("-0.1\t<s> a\n", "-0.1\t<s> a\n-0.3\ta </s>\t-0.1\n").encode())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw)))
        kind = data.draw(st.sampled_from(["flip", "insert", "cut"]))
        byte = data.draw(st.sampled_from(list(b" \t\n\\-.0123456789aeinf<>/se\x00\r") + [0xC3, 0xA9, 0xFF]))
        if kind == "flip" and at < len(raw):
            raw[at] = byte
        elif kind == "insert":
            raw.insert(at, byte)
        else:
            del raw[at:at + data.draw(st.integers(1, 8))]
    path = tmp_path_factory.mktemp("fuzz") / "lm.arpa"
    path.write_bytes(bytes(raw))
    ours, theirs = read_both(path)
    assert_same(ours, theirs)
    if isinstance(ours, str):
        assert "\n" not in ours and str(path) in ours
