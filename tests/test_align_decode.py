"""Forced alignment and greedy decoding against brute force on tiny inputs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctctool.align import forced_align
from ctctool.data import ctc_min_frames
from ctctool.decoding import greedy_decode
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


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(2, 4), st.integers(0, 2**31), st.data())
def test_viterbi_matches_brute_force_best_path(frames, classes, seed, data):
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
        assert ctc_min_frames(labels) > frames
        with pytest.raises(AlignmentError, match="needs at least"):
            forced_align(log_probs, labels)
        return
    alignment = forced_align(log_probs, labels)
    assert alignment.score == pytest.approx(best_score, abs=1e-4)
    assert collapse(alignment.path) == labels
    assert float(sum(log_probs[t, s] for t, s in enumerate(alignment.path))) == pytest.approx(best_score, abs=1e-4)
    # spans are ordered, disjoint, and each label occupies exactly the frames of its span
    for k, (start, end) in enumerate(alignment.spans):
        assert 0 <= start <= end < frames
        assert all(alignment.path[t] == labels[k] for t in range(start, end + 1))
        if k:
            assert alignment.spans[k - 1][1] < start


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
