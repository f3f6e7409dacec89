"""Forced alignment and greedy decoding against brute force on tiny inputs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctctool.ctc import min_frames, viterbi
from ctctool.decoding import BACKEND, greedy_decode, prefix_beam_search
from ctctool.errors import AlignmentError, DecodeInputError


def collapse(path):
    out, previous = [], 0
    for label in path:
        if label != 0 and label != previous:
            out.append(label)
        previous = label
    return tuple(out)


def random_log_probs(rng, frames, classes):
    logits = rng.normal(0, 2, size=(frames, classes))
    return (logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)).astype(np.float32)


BACKENDS = ["python", "cython"] if BACKEND == "cython" else ["python"]


def forced_align(log_probs, labels, backend=None):
    return viterbi(log_probs, labels, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(2, 4), st.integers(0, 2**31), st.data())
def test_viterbi_matches_brute_force_best_path(backend, frames, classes, seed, data):
    rng = np.random.default_rng(seed)
    log_probs = random_log_probs(rng, frames, classes)
    labels = tuple(data.draw(st.lists(st.integers(1, classes - 1), min_size=0, max_size=frames)))
    best_score, best_path = -np.inf, None
    for path in itertools.product(range(classes), repeat=frames):
        if collapse(path) == labels:
            score = float(sum(log_probs[t, s] for t, s in enumerate(path)))
            if score > best_score:
                best_score, best_path = score, path
    if best_path is None:
        assert min_frames(labels) > frames
        with pytest.raises(AlignmentError, match="needs at least"):
            forced_align(log_probs, labels, backend)
        return
    alignment = forced_align(log_probs, labels, backend)
    assert alignment.score == pytest.approx(best_score, abs=1e-4)
    assert collapse(alignment.path) == labels
    assert float(sum(log_probs[t, s] for t, s in enumerate(alignment.path))) == pytest.approx(best_score, abs=1e-4)
    # spans are ordered, disjoint, and each label occupies exactly the frames of its span
    for k, (start, end) in enumerate(alignment.spans):
        assert 0 <= start <= end < frames
        assert all(alignment.path[t] == labels[k] for t in range(start, end + 1))
        if k:
            assert alignment.spans[k - 1][1] < start


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.integers(2, 8), st.integers(0, 2**31))
def test_backends_align_identically(frames, classes, seed):
    """One Viterbi, two spellings: the compiled and the Python twin give the same placement and
    a bit-identical score."""
    if BACKEND != "cython":
        pytest.skip("compiled extension not built")
    rng = np.random.default_rng(seed)
    log_probs = random_log_probs(rng, frames, classes)
    labels = tuple(int(x) for x in rng.integers(1, classes, size=rng.integers(0, frames + 1)))
    if min_frames(labels) > frames:
        return
    a, b = forced_align(log_probs, labels, "python"), forced_align(log_probs, labels, "cython")
    assert a.spans == b.spans and a.score == b.score and a.confidences == b.confidences


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 60), st.integers(3, 10), st.integers(0, 2**31))
def test_forced_alignment_agrees_with_beam_spans(frames, classes, seed):
    """Aligning the beam's best labelling to the same frames gives the spans the beam reported."""
    rng = np.random.default_rng(seed)
    peaks = rng.integers(0, classes, size=frames)
    log_probs = np.full((frames, classes), np.log(0.02), dtype=np.float32)
    log_probs[np.arange(frames), peaks] = np.log(1 - 0.02 * (classes - 1))
    best = prefix_beam_search(log_probs, beam_width=8)[0]
    if not best.labels:
        return
    alignment = forced_align(log_probs, best.labels)
    assert alignment.spans == best.spans
    assert alignment.confidences == pytest.approx(best.confidences, rel=1e-9)


def test_repeats_need_a_blank():
    log_probs = np.log(np.full((3, 2), 0.5, dtype=np.float32))
    assert forced_align(log_probs, [1, 1]).path == (1, 0, 1)
    with pytest.raises(AlignmentError, match="needs at least 3 frames"):
        forced_align(log_probs[:2], [1, 1])


def test_alignment_follows_peaks():
    frames = np.full((8, 3), np.log(0.05), dtype=np.float32)
    peaks = [0, 1, 1, 0, 0, 2, 0, 0]
    for t, label in enumerate(peaks):
        frames[t, label] = np.log(0.9)
    alignment = forced_align(frames, [1, 2])
    assert alignment.spans == ((1, 2), (5, 5))
    assert alignment.confidences[0] == pytest.approx(0.9, rel=1e-5)


def test_greedy_collapses_and_reports_spans():
    probs = np.full((7, 3), 0.1, dtype=np.float32)
    for t, label in enumerate([1, 1, 0, 1, 2, 2, 0]):
        probs[t, label] = 0.8
    hyp = greedy_decode(np.log(probs))
    assert hyp.labels == (1, 1, 2)
    assert hyp.spans == ((0, 1), (3, 3), (4, 5))
    assert hyp.score == pytest.approx(7 * np.log(0.8), rel=1e-5)
    assert hyp.confidences == pytest.approx((0.8, 0.8, 0.8))


@pytest.mark.parametrize("bad, message", [
    (np.zeros((3,), dtype=np.float32), "2-D"),
    (np.zeros((3, 4), dtype=np.int32), "float32"),
    (np.full((3, 4), np.nan, dtype=np.float32), "NaN"),
    (np.full((3, 4), np.inf, dtype=np.float32), r"\+inf"),
    (np.zeros((3, 1), dtype=np.float32), "at least 2 classes"),
])
def test_greedy_rejects_bad_input(bad, message):
    with pytest.raises(DecodeInputError, match=message):
        greedy_decode(bad)
