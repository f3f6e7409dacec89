"""Word n-gram LMs: modified Kneser-Ney estimates equal a direct evaluation of the formulas,
every context's distribution sums to one after an ARPA round trip, and bad ARPA files are
refused by file and line."""

from __future__ import annotations

import gzip
import json
import math
import random
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_beam import labelling_log_probs  # the brute force the character LM's exactness test uses

from ctctool.decoding.word_lm import (
    BOS,
    EOS,
    UNK,
    WordNgramLM,
    build_kneser_ney,
    kneser_ney_discounts,
)
from ctctool.errors import ConfigError, InputFileError


def corpus(seed: int, lines: int = 400) -> list[list[str]]:
    """Digit-string sentences with some structure (bigram habits), so counts of 1..4 all occur."""
    rng = random.Random(seed)
    words = "zero one two three four five six seven eight nine oh".split()
    sentences = []
    for _ in range(lines):
        sentence = [rng.choice(words)]
        for _ in range(rng.randint(0, 6)):
            sentence.append(words[(words.index(sentence[-1]) + rng.choice([1, 1, 2, 5])) % len(words)])
        sentences.append(sentence)
    return sentences


def brute_force_kn(sentences, order):
    """The interpolated modified Kneser-Ney formulas evaluated directly from the sentences: no
    tables, no backoff weights; a second implementation to check the first against."""
    padded = [[BOS, *s, EOS] for s in sentences]
    occurrences = [Counter() for _ in range(order + 1)]  # by length
    for sentence in padded:
        for n in range(1, order + 1):
            for i in range(len(sentence) - n + 1):
                occurrences[n][tuple(sentence[i:i + n])] += 1
    vocabulary = {w for s in sentences for w in s} | {EOS, UNK}

    def adjusted(g):
        if len(g) == order or g[0] == BOS:
            return occurrences[len(g)][g]
        return sum(1 for longer in occurrences[len(g) + 1] if longer[1:] == g)

    counts_by_length = {n: {g: adjusted(g) for g in occurrences[n] if g != (BOS,)} for n in range(1, order + 1)}

    def discount(n, count):
        if count == 0:
            return 0.0
        found = kneser_ney_discounts(Counter(counts_by_length[n].values())) or (0.5, 1.0, 1.5)
        return found[min(count, 3) - 1]

    def p(word, history):
        n = len(history) + 1
        extensions = {g: c for g, c in counts_by_length[n].items() if g[:-1] == history}
        total = sum(extensions.values())
        if total == 0:
            return p(word, history[1:])
        gamma = sum(discount(n, c) for c in extensions.values()) / total
        count = extensions.get((*history, word), 0)
        lower = 1 / len(vocabulary) if not history else p(word, history[1:])
        return max(count - discount(n, count), 0.0) / total + gamma * lower

    return p, vocabulary


@pytest.mark.parametrize("order", [1, 2, 3])
def test_kneser_ney_equals_the_formulas_after_an_arpa_round_trip(order, tmp_path):
    sentences = corpus(seed=order, lines=300)
    model = build_kneser_ney(sentences, order=order)
    model.save(str(tmp_path / "lm.arpa"))
    loaded = WordNgramLM.load_arpa(str(tmp_path / "lm.arpa"))
    p, vocabulary = brute_force_kn(sentences, order)
    histories = {tuple(s[i:i + order - 1]) for s in ([BOS, *x, EOS] for x in sentences)
                 for i in range(len(s) - order + 2)} if order > 1 else {()}
    histories |= {("seven", "oh")[: order - 1], ("nine", "nine")[: order - 1]}  # and some never seen
    for history in histories:
        if EOS in history:
            continue
        for word in vocabulary:
            expected = p(word, history)
            assert math.isclose(10 ** loaded.log10_prob(list(history), word), expected, rel_tol=1e-6), \
                (history, word)


@pytest.mark.parametrize("order", [2, 3, 4])
def test_every_context_distribution_sums_to_one(order, tmp_path):
    sentences = corpus(seed=10 + order)
    model = build_kneser_ney(sentences, order=order)
    model.save(str(tmp_path / "lm.arpa.gz"))
    loaded = WordNgramLM.load_arpa(str(tmp_path / "lm.arpa.gz"))
    predicted = sorted(loaded.vocabulary - {BOS})
    contexts = [list(words) for n in range(order - 1) for words in loaded.ngrams[n]][:300] + [[], ["unseen"]]
    for context in contexts:
        total = sum(10 ** loaded.log10_prob(context, word) for word in predicted)
        assert abs(total - 1) < 1e-6, context


@given(st.lists(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=6), min_size=1, max_size=25),
       st.integers(1, 4))
@settings(max_examples=40, deadline=None)
def test_any_corpus_gives_a_proper_model(sentences, order):
    model = build_kneser_ney(sentences, order=order)
    predicted = sorted(model.vocabulary - {BOS})
    for context in ([], ["a"], ["b", "a"], [BOS], [BOS, "c"]):
        total = sum(10 ** model.log10_prob(context, word) for word in predicted)
        assert abs(total - 1) < 1e-6
    assert model.log10_prob(["a"], "never-seen") == model.log10_prob(["a"], UNK) < 0


def test_discounts_come_from_counts_of_counts_or_the_fallback():
    assert kneser_ney_discounts(Counter({1: 100, 2: 40, 3: 20, 4: 10})) == pytest.approx(
        (1 - 2 * (100 / 180) * 40 / 100, 2 - 3 * (100 / 180) * 20 / 40, 3 - 4 * (100 / 180) * 10 / 20))
    assert kneser_ney_discounts(Counter({1: 5, 2: 0, 3: 1, 4: 1})) is None
    model = build_kneser_ney([["a", "b"]], order=2)
    assert model.discounts == [(0.5, 1.0, 1.5)] * 2


def test_reserved_tokens_and_empty_corpora_are_refused():
    with pytest.raises(ConfigError, match="no words"):
        build_kneser_ney([[], []])
    with pytest.raises(ConfigError, match="reserves"):
        build_kneser_ney([["a", "<s>"]])


GOOD = "\\data\\\nngram 1=3\nngram 2=1\n\n\\1-grams:\n-99\t<s>\t-0.3\n-0.5\ta\t-0.2\n-0.4\t</s>\n\n" \
       "\\2-grams:\n-0.1\t<s> a\n\n\\end\\\n"


@pytest.mark.parametrize(("text", "message"), [
    (GOOD.replace("ngram 2=1", "ngram 2=2"), "says 2 2-grams, the section holds 1"),
    (GOOD.replace("\\end\\\n", ""), "no \\\\end\\\\ line"),
    (GOOD.replace("-0.5\ta", "minus\ta"), ":7: probability or backoff is not a number"),
    (GOOD.replace("-0.5\ta", "0.5\ta"), ":7: log10 probability must be finite and <= 0"),
    (GOOD.replace("-0.5\ta", "nan\ta"), ":7: log10 probability must be finite"),
    (GOOD.replace("-0.4\t</s>", "-0.4\ta"), ":8: n-gram 'a' listed twice"),
    (GOOD.replace("ngram 1=3", "ngram 1=300000000"), "more than 200,000,000 n-grams"),
    (GOOD.replace("\\2-grams:", "\\3-grams:"), "out of order or not declared"),
    (GOOD.replace("-0.1\t<s> a", "-0.1\t<s> a b c"), r"expected log10-prob, 2 word\(s\)"),
    ("just some text\n", "no \\\\end\\\\ line"),
])
def test_bad_arpa_files_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "bad.arpa"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputFileError, match=message) as caught:
        WordNgramLM.load_arpa(str(path))
    assert str(path) in str(caught.value)


def test_arpa_files_read_plain_and_gzip_and_unknown_words_back_off(tmp_path):
    (tmp_path / "lm.arpa").write_text(GOOD, encoding="utf-8")
    with gzip.open(tmp_path / "lm.arpa.gz", "wt", encoding="utf-8") as handle:
        handle.write(GOOD)
    for name in ("lm.arpa", "lm.arpa.gz"):
        model = WordNgramLM.load_arpa(str(tmp_path / name))
        assert model.order == 2 and model.log10_prob([BOS], "a") == pytest.approx(-0.1)
        assert model.log10_prob(["a"], EOS) == pytest.approx(-0.2 + -0.4)  # backoff(a) + p(</s>)
        assert model.log10_prob(["a"], "zebra") == pytest.approx(-0.2 - 99)  # no <unk> in the file
    with pytest.raises(InputFileError, match="cannot read"):
        WordNgramLM.load_arpa(str(tmp_path / "missing.arpa"))
    (tmp_path / "binary.arpa.gz").write_bytes(b"\x1f\x8b\x08garbage")
    with pytest.raises(InputFileError, match="binary.arpa.gz"):
        WordNgramLM.load_arpa(str(tmp_path / "binary.arpa.gz"))


def test_kenlm_reads_our_arpa_files_to_the_same_scores(tmp_path):
    kenlm = pytest.importorskip("kenlm")
    sentences = corpus(seed=7)
    model = build_kneser_ney(sentences, order=3)
    model.save(str(tmp_path / "lm.arpa"))
    theirs = kenlm.Model(str(tmp_path / "lm.arpa"))
    for sentence in [*sentences[:50], ["nine", "oh", "zebra"], ["one"]]:
        assert theirs.score(" ".join(sentence), bos=True, eos=True) == pytest.approx(
            model.score_sentence(sentence), abs=1e-4)


def test_lm_build_word_writes_arpa_that_reads_back(tmp_path):
    from typer.testing import CliRunner

    from ctctool.cli import app

    text = tmp_path / "corpus.txt"
    text.write_text("\n".join(" ".join(s) for s in corpus(seed=3)) + "\n", encoding="utf-8")
    runner = CliRunner()
    done = runner.invoke(app, ["lm", "build", str(text), "-o", str(tmp_path / "lm.arpa"), "--word", "--order", "3"])
    assert done.exit_code == 0, done.output
    assert "word 3-gram LM" in done.stderr
    model = WordNgramLM.load_arpa(str(tmp_path / "lm.arpa"))
    assert model.order == 3 and "seven" in model.vocabulary
    assert model.score_sentence(["one", "two"]) > model.score_sentence(["two", "one", "one", "one"])
    wrong = runner.invoke(app, ["lm", "build", str(text), "-o", str(tmp_path / "lm.bin"), "--word"])
    assert wrong.exit_code == 2 and "name the output .arpa" in wrong.stderr
    chars = runner.invoke(app, ["lm", "build", str(text), "-o", str(tmp_path / "c.bin")])
    assert chars.exit_code == 0 and "order 6" in chars.stderr


def _labelling_totals(log_probs, scorer):
    """Brute force: every labelling's CTC log-probability plus the scorer's total for it."""
    totals = {}
    for labels, acoustic in labelling_log_probs(log_probs).items():
        state, lm = scorer.start_state(), 0.0
        for label in labels:
            delta, state = scorer.score_partial_token(state, label)
            lm += delta
        totals[labels] = acoustic + lm + scorer.score_final(state)
    return totals


@given(st.integers(0, 2**32 - 1), st.integers(2, 6), st.floats(0.1, 2.0), st.floats(-1.0, 1.0))
@settings(max_examples=40, deadline=None)
def test_with_a_word_lm_a_wide_unpruned_beam_finds_the_best_combined_score(seed, frames, alpha, beta):
    import numpy as np

    from ctctool.decoding import prefix_beam_search
    from ctctool.decoding.word_lm import WordLMScorer

    labels = [" ", "a", "b"]
    model = build_kneser_ney([["ab", "a"], ["a", "ab", "b"], ["b", "ba"], ["ab"]], order=2)
    scorer = WordLMScorer(model, labels, alpha=alpha, beta=beta, unk_offset=-3.0)
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.0, size=(frames, 4))
    log_probs = (logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)).astype(np.float32)
    totals = _labelling_totals(log_probs, scorer)
    top = prefix_beam_search(log_probs, beam_width=4 ** frames, prune_log_prob=float("-inf"), scorers=scorer)[0]
    assert top.score + top.lm_score == pytest.approx(max(totals.values()), abs=1e-6)


def test_the_word_lm_prefers_known_words_and_takes_its_lookahead_back():
    from ctctool.decoding.word_lm import WordLMScorer

    model = build_kneser_ney(corpus(seed=5), order=3)
    labels = list(" abcdefghijklmnopqrstuvwxyz")
    scorer = WordLMScorer(model, labels, alpha=1.0, beta=0.0)

    def total(text):
        state, score = scorer.start_state(), 0.0
        for char in text:
            delta, state = scorer.score_partial_token(state, labels.index(char) + 1)
            score += delta
        return score + scorer.score_final(state)

    expected = math.log(10) * (model.log10_prob([BOS], "one") + model.log10_prob([BOS, "one"], "two")
                               + model.log10_prob(["one", "two"], EOS))
    assert total("one two") == pytest.approx(expected) == pytest.approx(total("one  two"))
    assert total("one two") > total("one twx")  # an unknown word costs


def test_decode_takes_an_arpa_lm(tmp_path):
    from typer.testing import CliRunner

    from ctctool.cli import app

    repo = Path(__file__).resolve().parent.parent
    runner = CliRunner()
    arpa = tmp_path / "words.arpa.gz"
    built = runner.invoke(app, ["lm", "build", str(repo / "data/ocr/train.jsonl"), "-o", str(arpa), "--word"])
    assert built.exit_code == 0, built.output
    test = str(repo / "data/ocr/test.jsonl")
    plain = runner.invoke(app, ["eval", "latin-print", test, "--json"])
    with_lm = runner.invoke(app, ["eval", "latin-print", test, "--json", "--lm", str(arpa), "--alpha", "0.3"])
    assert plain.exit_code == with_lm.exit_code == 0, with_lm.output
    assert abs(json.loads(with_lm.stdout)["cer"] - json.loads(plain.stdout)["cer"]) < 0.01  # a gentle LM
    strong = runner.invoke(app, ["eval", "latin-print", test, "--json", "--lm", str(arpa), "--alpha", "3",
                                 "--unk-offset", "-30"])
    assert json.loads(strong.stdout)["cer"] != json.loads(plain.stdout)["cer"]  # the LM does steer the search
    mixed = runner.invoke(app, ["eval", "latin-print", test, "--json", "--lm", str(arpa), "--hotword", "Ishmael"])
    assert mixed.exit_code == 0, mixed.output  # word LM and hotwords together, in the compiled search
    chars = tmp_path / "chars.npz"
    assert runner.invoke(app, ["lm", "build", str(repo / "data/ocr/train.jsonl"), "-o", str(chars)]).exit_code == 0
    both = runner.invoke(app, ["eval", "latin-print", test, "--json", "--lm", str(arpa), "--lm", str(chars),
                               "--char-alpha", "0.2", "--alpha", "0.3"])
    assert both.exit_code == 0, both.output
    two = runner.invoke(app, ["decode", "latin-print", test, "--lm", str(arpa), "--lm", str(arpa)])
    assert two.exit_code == 2 and "at most one character LM" in two.output
    bad = runner.invoke(app, ["decode", "latin-print", test, "--lm", str(arpa), "--unk-offset", "nan"])
    assert bad.exit_code == 2 and "--unk-offset must be a finite number" in bad.output


def test_the_library_scores_with_a_word_lm(tmp_path):
    import numpy as np

    import ctctool
    from ctctool.decoding import WordLMScorer, WordNgramLM, prefix_beam_search

    model = build_kneser_ney(corpus(seed=9), order=2)
    model.save(str(tmp_path / "lm.arpa"))
    lm = WordNgramLM.load_arpa(str(tmp_path / "lm.arpa"))
    labels = list(" eino")
    scorer = WordLMScorer(lm, labels, alpha=1.0)
    log_probs = np.log(np.full((12, 6), 1 / 6, dtype=np.float32))
    top = prefix_beam_search(log_probs, 16, scorers=scorer)[0]
    assert top.lm_score != 0.0
    line = Path(__file__).resolve().parent.parent / "data/ocr/lines/test-00000.png"
    model = ctctool.load_model("latin-print")
    plain = next(iter(ctctool.recognize(model, [line], beam=8)))
    steered = next(iter(ctctool.recognize(model, [line], beam=8, lm=str(tmp_path / "lm.arpa"), alpha=2.0,
                                          unk_offset=-20.0)))
    assert plain.lm_score == 0.0 and steered.lm_score < 0.0  # the word LM scored the recognized words


# ---------------------------------------------------------------- the compiled word-LM tables


def _small_word_scorers(alpha, beta, unk_offset, *, char_lm=False, lexicon=False, hot=False):
    from ctctool.decoding.scorers import CharNgramLM, compile_scorers
    from ctctool.decoding.word_tables import bind_word_lm, compile_tables

    labels = [" ", "a", "b", "c"]
    model = build_kneser_ney([["ab", "a"], ["a", "ab", "b"], ["b", "ba", "cab"], ["ab"], ["c", "a"]], order=3)
    bound = bind_word_lm(compile_tables(model), labels, alpha=alpha, beta=beta, unk_offset=unk_offset)
    return labels, model, compile_scorers(
        labels, lm=CharNgramLM.build(["ab a", "a ab b", "cab ba"], order=3) if char_lm else None, alpha=0.4,
        lexicon=["a", "ab", "b", "ba", "cab", "c"] if lexicon else None,
        hotwords=[("ab", 1.0), ("b a", 0.6)] if hot else None, word_lm=bound)


@given(st.integers(0, 2**32 - 1), st.integers(1, 30), st.integers(1, 12), st.floats(0.0, 2.0), st.floats(-1.0, 1.0),
       st.booleans(), st.booleans(), st.booleans())
@settings(max_examples=80, deadline=None)
def test_compiled_and_python_searches_agree_bit_for_bit_with_a_word_lm(seed, frames, beam, alpha, beta, char_lm,
                                                                      lexicon, hot):
    import numpy as np
    from test_beam import compare_backends

    from ctctool.decoding.beam import BACKEND

    if BACKEND != "cython":
        pytest.skip("the compiled search is not built")
    _, _, scorers = _small_word_scorers(alpha, beta, -4.0, char_lm=char_lm, lexicon=lexicon, hot=hot)
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.5, size=(frames, 5))
    log_probs = (logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)).astype(np.float32)
    compare_backends(log_probs, beam, 3, -6.9, 0, scorers)


@given(st.integers(0, 2**32 - 1), st.integers(2, 5), st.floats(0.1, 2.0), st.booleans())
@settings(max_examples=30, deadline=None)
def test_word_and_character_lm_together_keep_the_search_exact(seed, frames, alpha, lexicon):
    """Brute force over every labelling: acoustic + the combined scorers' total (walked through
    the Python twin's arithmetic); the wide unpruned compiled beam finds the best."""
    import numpy as np

    from ctctool.decoding import prefix_beam_search
    from ctctool.decoding.beam_py import _BuiltinScoring

    _, _, scorers = _small_word_scorers(alpha, 0.3, -3.0, char_lm=True, lexicon=lexicon)
    scoring = _BuiltinScoring(scorers)
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.0, size=(frames, 5))
    log_probs = (logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)).astype(np.float32)
    totals = {}
    for labels, acoustic in labelling_log_probs(log_probs).items():
        state, lm = scoring.start_state(), 0.0
        for label in labels:
            step = scoring.extend(state, label)
            if step is None:
                break
            lm, state = lm + step[0], step[1]
        else:
            totals[labels] = acoustic + lm + scoring.final(state)
    top = prefix_beam_search(log_probs, beam_width=5 ** frames, prune_log_prob=float("-inf"), scorers=scorers)
    assert top, "some labelling is allowed"
    assert top[0].score + top[0].lm_score == pytest.approx(max(totals.values()), abs=1e-6)


def test_the_tables_score_exactly_what_the_arpa_file_says():
    from ctctool.decoding.word_tables import EOS_ID, compile_tables

    model = build_kneser_ney(corpus(seed=11), order=4)
    tables = compile_tables(model)
    ids = tables.word_id()
    for sentence in corpus(seed=12, lines=60) + [["one", "qqq", "two"]]:
        state, history, total = tables.start, [BOS], 0.0
        for word in sentence:
            logp, state = tables.step(state, ids.get(word, 1))
            assert logp == pytest.approx(math.log(10) * model.log10_prob(history, word), abs=1e-9)
            history.append(word)
            total += logp
        assert tables.step(state, EOS_ID)[0] == pytest.approx(math.log(10) * model.log10_prob(history, EOS))


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 30)), unique=True, max_size=300))
@settings(max_examples=60, deadline=None)
def test_vectorized_hash_tables_find_every_entry_and_nothing_else(pairs):
    import numpy as np

    from ctctool.decoding.tables import TransitionTable

    entries = {(s, c): (i, float(i) / 7) for i, (s, c) in enumerate(pairs)}
    table = TransitionTable.build(entries, 31)
    for (state, symbol), hit in entries.items():
        assert table.get(state, symbol) == hit
    assert table.get(51, 0) is None and table.get(0, 31 - 31 + 30) == entries.get((0, 30))
    assert int((table.keys != -1).sum()) == len(entries) and len(table.keys) >= 2 * len(entries)
    assert np.unique(table.keys[table.keys != -1]).size == len(entries)


def test_arpa_tables_are_cached_next_to_the_file_and_rebuilt_when_stale_or_damaged(tmp_path, monkeypatch):
    from ctctool.decoding import word_tables

    path = tmp_path / "lm.arpa"
    build_kneser_ney(corpus(seed=2), order=3).save(str(path))
    first = word_tables.load_word_lm_tables(str(path))
    cache = Path(str(path) + word_tables.CACHE_SUFFIX)
    assert cache.exists()
    word_tables._MEMORY.clear()
    parsed = []
    original = word_tables.read_arpa
    monkeypatch.setattr(word_tables, "read_arpa", lambda p: parsed.append(p) or original(p))
    again = word_tables.load_word_lm_tables(str(path))  # from the disk cache: not parsed
    assert parsed == [] and again.words == first.words
    assert again.backoff_ln.tolist() == first.backoff_ln.tolist() and again.start == first.start
    for state in range(first.num_states):
        for word in range(len(first.words)):
            assert again.table.get(state, word) == first.table.get(state, word)
    assert word_tables.load_word_lm_tables(str(path)) is again  # in memory
    build_kneser_ney(corpus(seed=3), order=3).save(str(path))  # the file changed: the cache is stale
    word_tables._MEMORY.clear()
    changed = word_tables.load_word_lm_tables(str(path))
    assert parsed == [str(path)]
    assert any(changed.table.get(state, word) != first.table.get(state, word)
               for state in range(first.num_states) for word in range(len(first.words)))
    cache.write_bytes(b"PK\x03\x04 not really a zip")  # damaged: parsed again, not trusted
    word_tables._MEMORY.clear()
    word_tables.load_word_lm_tables(str(path))
    assert len(parsed) == 2


def test_a_folder_the_cache_cannot_be_written_to_still_loads(tmp_path, monkeypatch):
    import ctctool.fileio
    from ctctool.decoding import word_tables

    path = tmp_path / "lm.arpa"
    build_kneser_ney(corpus(seed=6), order=2).save(str(path))
    word_tables._MEMORY.clear()

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(ctctool.fileio, "atomic_write", refuse)
    tables = word_tables.load_word_lm_tables(str(path))
    assert tables.num_states > 1 and not Path(str(path) + word_tables.CACHE_SUFFIX).exists()


def test_a_crafted_cache_is_not_trusted(tmp_path):
    """Keys twice, or a next state outside the states: the cache is refused (and the ARPA file
    parsed again), since the compiled search would walk it without bounds checks."""
    import numpy as np

    from ctctool.decoding import word_tables
    from ctctool.fileio import file_sha256

    path = tmp_path / "lm.arpa"
    build_kneser_ney(corpus(seed=8), order=3).save(str(path))
    word_tables._MEMORY.clear()
    word_tables.load_word_lm_tables(str(path))
    cache = str(path) + word_tables.CACHE_SUFFIX
    digest = file_sha256(str(path))
    assert word_tables._read_cache(cache, digest) is not None
    with np.load(cache) as data:
        arrays = {name: data[name] for name in data.files}
    for name, change in (("keys", lambda a: np.concatenate([a[:1], a[:-1]])),
                         ("next_state", lambda a: a + 10**6)):
        crafted = dict(arrays, **{name: change(arrays[name])})
        bad = tmp_path / f"bad-{name}.npz"
        np.savez(bad, **crafted)
        assert word_tables._read_cache(str(bad), digest) is None, name
