"""Prefix beam search: exact against brute force, compiled == Python twin, scorers, bad input."""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ctctool.decoding import (
    BACKEND,
    CharNgramLM,
    Scorer,
    compile_scorers,
    greedy_decode,
    prefix_beam_search,
    prefix_beam_search_batch,
)
from ctctool.errors import ConfigError, DecodeInputError

NO_PRUNE = float("-inf")
needs_ext = pytest.mark.skipif(BACKEND != "cython", reason="compiled extension not built")


def collapse(path):
    out, previous = [], 0
    for label in path:
        if label and label != previous:
            out.append(label)
        previous = label
    return tuple(out)


def labelling_log_probs(log_probs: np.ndarray) -> dict[tuple[int, ...], float]:
    """Brute force: log P(labelling) = logsumexp over every path that collapses to it."""
    frames, classes = log_probs.shape
    paths = np.array(list(itertools.product(range(classes), repeat=frames)))
    scores = log_probs[np.arange(frames), paths].astype(np.float64).sum(axis=1)
    grouped: dict[tuple[int, ...], list[float]] = {}
    for path, score in zip(paths.tolist(), scores):
        grouped.setdefault(collapse(path), []).append(score)
    return {k: float(np.logaddexp.reduce(v)) for k, v in grouped.items()}


def ctc_log_prob(log_probs: np.ndarray, labels) -> float:
    if not labels:
        return float(log_probs[:, 0].astype(np.float64).sum())
    loss = torch.nn.functional.ctc_loss(torch.from_numpy(log_probs).double()[:, None, :], torch.tensor([labels]),
                                        torch.tensor([log_probs.shape[0]]), torch.tensor([len(labels)]),
                                        reduction="sum")
    return -float(loss)


def labellings_up_to(log_probs: np.ndarray) -> int:
    """How many label sequences of at most T labels there are: a beam this wide never drops a
    prefix (3,280 for the largest matrices drawn, 7 frames and 3 labels)."""
    frames, classes = log_probs.shape
    return sum((classes - 1) ** length for length in range(frames + 1))


@st.composite
def log_prob_matrices(draw, max_frames=7, max_classes=4, min_frames=1):
    frames = draw(st.integers(min_frames, max_frames))
    classes = draw(st.integers(2, max_classes))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    # 25: frames so peaky that prefix scores differ by more than 40 nats, where the compiled
    # log-add skips log1p (it must stay bit-identical to the twin's)
    logits = rng.normal(0, draw(st.sampled_from([0.5, 2.0, 5.0, 25.0])), size=(frames, classes))
    if draw(st.booleans()):  # -inf entries: impossible symbols at some frames
        mask = rng.random((frames, classes)) < 0.2
        mask[:, 0] = False
        logits[mask] = -np.inf
    log_probs = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    return log_probs.astype(np.float32)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(log_prob_matrices())
def test_wide_unpruned_beam_is_exact(log_probs):
    truth = labelling_log_probs(log_probs)
    best = max(truth.values())
    wide = labellings_up_to(log_probs)  # at least the number of distinct prefixes
    for backend in ("cython", "python") if BACKEND == "cython" else ("python",):
        top = prefix_beam_search(log_probs, beam_width=wide, prune_log_prob=NO_PRUNE, backend=backend)[0]
        assert truth[top.labels] == pytest.approx(best, abs=1e-6)  # the most probable labelling (ties allowed)
        assert top.score == pytest.approx(ctc_log_prob(log_probs, top.labels), abs=1e-4)  # == -CTC loss


@settings(max_examples=60, deadline=None)
@given(log_prob_matrices())
def test_nbest_scores_are_exact_labelling_probabilities(log_probs):
    truth = labelling_log_probs(log_probs)
    hyps = prefix_beam_search(log_probs, beam_width=labellings_up_to(log_probs), nbest=5, prune_log_prob=NO_PRUNE)
    expected = sorted(truth.values(), reverse=True)[: len(hyps)]
    assert [h.score for h in hyps] == pytest.approx(expected, abs=1e-4)
    assert len({h.labels for h in hyps}) == len(hyps)


def compare_backends(log_probs, beam, nbest, prune, top_k, scorers=None, beam_prune=math.inf):
    a = prefix_beam_search(log_probs, beam, nbest, prune_log_prob=prune, top_k=top_k, scorers=scorers,
                           backend="cython", beam_prune=beam_prune)
    b = prefix_beam_search(log_probs, beam, nbest, prune_log_prob=prune, top_k=top_k, scorers=scorers,
                           backend="python", beam_prune=beam_prune)
    # Same operations in the same order: bit-identical, not merely close.
    assert [h.labels for h in a] == [h.labels for h in b]
    assert [h.score for h in a] == [h.score for h in b]
    assert [h.lm_score for h in a] == [h.lm_score for h in b]
    assert [h.spans for h in a] == [h.spans for h in b]
    assert [h.confidences for h in a] == [h.confidences for h in b]
    return a


@needs_ext
@settings(max_examples=150, deadline=None)
@given(log_prob_matrices(max_frames=40, max_classes=12), st.integers(1, 20), st.integers(1, 4),
       st.sampled_from([NO_PRUNE, -6.9, -3.0, -1.0]), st.sampled_from([0, 1, 3]),
       st.sampled_from([math.inf, 10.0, 2.0, 0.5, 0.0]))
def test_compiled_and_python_backends_agree(log_probs, beam, nbest, prune, top_k, beam_prune):
    compare_backends(log_probs, beam, nbest, prune, top_k, beam_prune=beam_prune)


@given(log_prob_matrices(max_frames=30, max_classes=8), st.integers(2, 32), st.floats(0.0, 12.0))
@settings(max_examples=60, deadline=None)
def test_beam_pruning_keeps_the_best_path_of_each_frame_and_only_narrows(log_probs, beam, beam_prune):
    """Pruning by score only drops prefixes: a huge threshold changes nothing, and the result
    of any threshold is one of the labellings the search can produce (its score is finite)."""
    off = prefix_beam_search(log_probs, beam, 3, beam_prune=math.inf)
    assert prefix_beam_search(log_probs, beam, 3, beam_prune=1e9) == off
    pruned = prefix_beam_search(log_probs, beam, 3, beam_prune=beam_prune)
    assert pruned and all(math.isfinite(h.score) for h in pruned) and len(pruned) <= len(off)
    with pytest.raises(ConfigError, match="beam_prune must be 0 or more"):
        prefix_beam_search(log_probs, beam, beam_prune=-1.0)


@needs_ext
@pytest.mark.parametrize("case", ["T=1", "all blank", "repeat", "-inf", "V=2", "empty"])
def test_edge_cases_agree(case):
    rng = np.random.default_rng(1)
    if case == "T=1":
        lp = np.log(np.array([[0.2, 0.5, 0.3]], dtype=np.float32))
    elif case == "all blank":
        lp = np.log(np.tile(np.array([[0.97, 0.01, 0.01, 0.01]], dtype=np.float32), (9, 1)))
    elif case == "repeat":  # a, blank, a: "aa", not "a"
        lp = np.log(np.array([[0.05, 0.9, 0.05], [0.9, 0.05, 0.05], [0.05, 0.9, 0.05]], dtype=np.float32))
    elif case == "-inf":
        lp = np.log(rng.dirichlet(np.ones(5), size=12)).astype(np.float32)
        lp[:, 3] = -np.inf
    elif case == "V=2":
        lp = np.log(rng.dirichlet(np.ones(2), size=15)).astype(np.float32)
    else:
        lp = np.zeros((0, 4), dtype=np.float32)
    for beam in (1, 4, 64):
        hyps = compare_backends(lp, beam, 3, NO_PRUNE, 0)
        if case == "repeat":
            assert hyps[0].labels == (1, 1) and hyps[0].spans == ((0, 0), (2, 2))
        if case == "all blank":
            assert hyps[0].labels == ()
        if case == "-inf":
            assert all(3 not in h.labels for h in hyps)


@settings(max_examples=60, deadline=None)
@given(log_prob_matrices(max_frames=30, max_classes=8))
def test_beam_of_one_is_greedy(log_probs):
    greedy = greedy_decode(log_probs)
    (hyp,) = prefix_beam_search(log_probs, beam_width=1)
    assert hyp.labels == greedy.labels and hyp.score == greedy.score and hyp.spans == greedy.spans


def test_spans_follow_the_peaks():
    probs = np.full((10, 3), 0.02, dtype=np.float32)
    for t, label in enumerate([0, 1, 1, 0, 0, 2, 2, 2, 0, 0]):
        probs[t, label] = 0.96
    (hyp,) = prefix_beam_search(np.log(probs), beam_width=8)
    assert hyp.labels == (1, 2) and hyp.spans == ((1, 2), (5, 7))
    assert hyp.confidences == pytest.approx((0.96, 0.96), rel=1e-4)


@pytest.mark.parametrize("backend", ["python", pytest.param("cython", marks=needs_ext)])
def test_spans_stay_valid_when_the_band_keeps_only_a_dead_end(backend):
    """Peaky frames where the 40-nat Viterbi band keeps only states that cannot spell "a a": the
    alignment must widen the band, not backtrack through dropped states (it returned garbage
    spans and a NaN confidence, or divided by zero in the twin)."""
    log_probs = np.array([[-73.7, -1.8e-11, -36.7, -24.7],
                          [-58.3, -1.7e-12, -30.5, -27.1],
                          [-28.2, -9.0e-13, -28.8, -54.9]], dtype=np.float32)
    hyps = prefix_beam_search(log_probs, 2, 3, backend=backend)
    repeated = next(h for h in hyps if h.labels == (1, 1))
    assert repeated.spans == ((0, 0), (2, 2))
    assert repeated.confidences == pytest.approx((1.0, 1.0))
    from ctctool.ctc import viterbi

    assert viterbi(log_probs, (1, 1), band=40.0, backend=backend).path == (1, 0, 1)


@settings(max_examples=80, deadline=None)
@given(log_prob_matrices(max_frames=12, max_classes=5), st.integers(1, 8), st.integers(1, 4))
def test_every_hypothesis_has_ordered_spans_inside_the_input(log_probs, beam, nbest):
    for backend in ("python", "cython") if BACKEND == "cython" else ("python",):
        for hyp in prefix_beam_search(log_probs, beam, nbest, prune_log_prob=NO_PRUNE, backend=backend):
            previous_last = -1
            for (first, last), confidence in zip(hyp.spans, hyp.confidences):
                assert previous_last < first <= last < log_probs.shape[0]
                assert 0.0 < confidence <= 1.0
                previous_last = last


@pytest.mark.parametrize("bad, message", [
    (np.zeros((3, 4), dtype=np.int64), "float32"),
    (np.zeros((2, 3, 4), dtype=np.float32), "2-D"),
    (np.full((3, 4), np.nan, dtype=np.float32), "NaN"),
    ([[0.0, 0.0]], "numpy array"),
])
def test_bad_input_raises_clearly(bad, message):
    with pytest.raises(DecodeInputError, match=message):
        prefix_beam_search(bad)


def test_mismatched_classes_and_bad_options():
    lp = np.log(np.full((4, 5), 0.2, dtype=np.float32))
    with pytest.raises(DecodeInputError, match="5 classes but the codec has 7"):
        prefix_beam_search(lp, num_classes=7)
    with pytest.raises(ConfigError):
        prefix_beam_search(lp, beam_width=0)
    with pytest.raises(ConfigError, match="built for 3 classes"):
        prefix_beam_search(lp, scorers=compile_scorers("ab", beta=1.0))


def test_batch_matches_single_in_order():
    rng = np.random.default_rng(7)
    batch = [np.log(rng.dirichlet(np.ones(6) * 0.3, size=int(rng.integers(1, 60)))).astype(np.float32)
             for _ in range(12)]
    single = [prefix_beam_search(lp, 8, 2) for lp in batch]
    assert prefix_beam_search_batch(batch, 8, 2, num_threads=2) == single
    assert prefix_beam_search_batch(batch, 8, 2, num_threads=1) == single


def test_pure_python_switch_and_version():
    env = {**os.environ, "CTCTOOL_PUREPYTHON": "1"}
    out = subprocess.run([sys.executable, "-c", "from ctctool.decoding import BACKEND; print(BACKEND)"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "python"


# ---------------------------------------------------------------- scorers

CORPUS = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog", "that is the cat"]


def test_char_lm_is_a_proper_distribution_and_round_trips(tmp_path):
    lm = CharNgramLM.build(CORPUS, order=4)
    for state in range(len(lm.backoff_state)):
        total = sum(math.exp(lm.step(state, s)[0]) for s in range(lm.num_symbols - 1))  # all but start symbol
        assert total == pytest.approx(1.0, abs=1e-9)
    assert lm.score_text("the cat") > lm.score_text("teh cta")
    path = tmp_path / "lm.bin"
    lm.save(str(path))
    again = CharNgramLM.load(str(path))
    assert again.score_text("the dog sat") == lm.score_text("the dog sat")
    assert again.score_text("zebra!") == lm.score_text("zebra!")  # unknown characters back off to <unk>


def ambiguous_frames(labels: str, word: str, other: str):
    """Frames that spell ``word`` but make each differing position a near tie with ``other``."""
    index = {c: i + 1 for i, c in enumerate(labels)}
    rows = []
    for a, b in zip(word, other):
        row = np.full(len(labels) + 1, 0.01)
        if a == b:
            row[index[a]] = 0.9
        else:
            row[index[a]], row[index[b]] = 0.46, 0.44
        rows.append(row / row.sum())
        blank = np.full(len(labels) + 1, 0.01)
        blank[0] = 0.9
        rows.append(blank / blank.sum())
    return np.log(np.array(rows, dtype=np.float32))


def test_lm_lexicon_and_hotwords_change_close_calls_and_backends_agree():
    labels = sorted(set("".join(CORPUS)))
    frames = ambiguous_frames(labels, "tha cat", "the cat")  # acoustics slightly prefer "tha"
    plain = prefix_beam_search(frames, 16)[0]
    assert "".join(labels[i - 1] for i in plain.labels) == "tha cat"
    for name, scorers in {
        "lm": compile_scorers(labels, lm=CharNgramLM.build(CORPUS, order=4), alpha=1.0),
        "lexicon": compile_scorers(labels, lexicon=["the", "cat", "dog"]),
        "hotword": compile_scorers(labels, hotwords=[("the", 1.0)]),
    }.items():
        hyps = compare_backends(frames, 16, 3, -6.9, 0, scorers) if BACKEND == "cython" else \
            prefix_beam_search(frames, 16, 3, scorers=scorers)
        assert "".join(labels[i - 1] for i in hyps[0].labels) == "the cat", name
        assert hyps[0].total_score == pytest.approx(hyps[0].score + hyps[0].lm_score)


def test_scorers_changed_after_a_search_take_effect_and_copies_leave_the_compiled_state():
    """The compiled search keeps a prepared struct per scorer bundle; a changed weight or table
    must rebuild it, and pickles / copies must not carry it."""
    import copy
    import pickle

    labels = sorted(set("".join(CORPUS)))
    frames = ambiguous_frames(labels, "tha cat", "the cat")
    lm = CharNgramLM.build(CORPUS, order=4)
    text = lambda hyp: "".join(labels[i - 1] for i in hyp.labels)  # noqa: E731
    scorers = compile_scorers(labels, lm=lm, alpha=1.0)
    assert text(prefix_beam_search(frames, 16, scorers=scorers)[0]) == "the cat"
    scorers.alpha = 0.0  # the LM no longer counts: the acoustics' "tha cat" wins again
    changed = prefix_beam_search(frames, 16, 3, scorers=scorers)
    fresh = prefix_beam_search(frames, 16, 3, scorers=compile_scorers(labels, lm=lm, alpha=0.0))
    assert text(changed[0]) == "tha cat"
    assert [(h.labels, h.score, h.lm_score) for h in changed] == [(h.labels, h.score, h.lm_score) for h in fresh]
    scorers.lm, scorers.hotwords = None, compile_scorers(labels, hotwords=[("the", 1.0)]).hotwords
    scorers.hotword_end = compile_scorers(labels, hotwords=[("the", 1.0)]).hotword_end
    assert text(prefix_beam_search(frames, 16, scorers=scorers)[0]) == "the cat"
    for clone in (pickle.loads(pickle.dumps(scorers)), copy.deepcopy(scorers), copy.copy(scorers)):
        assert "_prepared" not in vars(clone)
        assert text(prefix_beam_search(frames, 16, scorers=clone)[0]) == "the cat"


def test_hotword_bonus_is_withdrawn_when_the_word_diverges():
    labels = list(" aehtx")
    scorers = compile_scorers(labels, hotwords=[("thx", 1.0)])  # too weak to force an "x" in
    frames = ambiguous_frames(labels, "the a", "tha a")
    hyp = prefix_beam_search(frames, 16, scorers=scorers)[0]
    # "th" matches the hotword's start but neither "the" nor "tha" completes it: no net bonus
    assert hyp.lm_score == pytest.approx(0.0, abs=1e-9)


@needs_ext
@settings(max_examples=60, deadline=None)
@given(log_prob_matrices(max_frames=30, max_classes=7), st.integers(1, 12), st.floats(0, 2), st.floats(-1, 1),
       st.booleans(), st.booleans())
def test_backends_agree_with_scorers(log_probs, beam, alpha, beta, use_lexicon, use_hot):
    labels = list(" abcdef")[: log_probs.shape[1] - 1]
    assume(len(labels) >= 3 or not use_lexicon)  # the lexicon needs "a" and "b"
    lm = CharNgramLM.build(["abc abd", "bad cab", "fed bead", "a b c"], order=3)
    scorers = compile_scorers(labels, lm=lm, alpha=alpha, beta=beta,
                              lexicon=["a", "ab", "ba", "b", "c", "cab"] if use_lexicon else None,
                              hotwords=[("ab", 1.5), ("ba", 0.5), ("a b", 0.7), ("ab ba", 1.1)] if use_hot else None)
    compare_backends(log_probs, beam, 3, -6.9, 0, scorers)


class ForbidLabel(Scorer):
    def __init__(self, label):
        self.label = label

    def start_state(self):
        return None

    def score_partial_token(self, state, label):
        return (float("-inf"), state) if label == self.label else (0.0, state)

    def score_final(self, state):
        return 0.0


def test_custom_scorer_plugs_into_the_search():
    probs = np.full((6, 3), 0.05, dtype=np.float32)
    probs[:, 2] = 0.9
    probs /= probs.sum(axis=1, keepdims=True)
    hyp = prefix_beam_search(np.log(probs), 8, scorers=ForbidLabel(2))[0]
    assert 2 not in hyp.labels


@pytest.mark.parametrize("backend", ["cython", "python"] if BACKEND == "cython" else ["python"])
def test_phrase_hotwords_span_spaces_and_keep_a_completed_word(backend):
    """Bonuses along a labelling, read off the scorer state machine: the phrase "turn left"
    earns its bonus across the space; "turn" alone (also a hotword) keeps its bonus when the
    phrase is not completed; a phrase left unfinished gives back what it earned."""
    labels = list(" eflnrtu")
    ids = {c: i + 1 for i, c in enumerate(labels)}
    frames = 12

    def bonus(text, hotwords):
        scorers = compile_scorers(labels, hotwords=hotwords)
        log_probs = np.full((frames * len(text), len(labels) + 1), -30.0, dtype=np.float32)
        for k, char in enumerate(text):  # each character certain for `frames` frames, blanks between
            log_probs[k * frames:(k + 1) * frames - 2, ids[char]] = 0.0
            log_probs[(k + 1) * frames - 2:(k + 1) * frames, 0] = 0.0
        top = prefix_beam_search(log_probs, 4, scorers=scorers, backend=backend)[0]
        assert "".join(labels[i - 1] for i in top.labels) == text
        return top.lm_score

    phrase = [("turn left", 1.0)]
    assert bonus("turn left", phrase) == pytest.approx(9.0)  # 9 characters, space included
    assert bonus("turn lent", phrase) == pytest.approx(0.0)  # unfinished: withdrawn
    both = [("turn left", 1.0), ("turn", 2.0)]
    assert bonus("turn lent", both) == pytest.approx(4 * 2.0)  # "turn" completed: kept
    assert bonus("turn left", both) == pytest.approx(4 * 2.0 + 5 * 1.0)
