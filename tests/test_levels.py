"""LevelCounts: a line's median and percentiles from its grey-level counts, bit for bit what
numpy gives on the line's values (ctctool.features.levels)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ctctool.features.levels import LevelCounts


def _same(mine, numpys) -> bool:
    mine, numpys = np.asarray(mine), np.asarray(numpys)
    return mine.dtype == numpys.dtype and mine.shape == numpys.shape and mine.tobytes() == numpys.tobytes()


# Lines of a few pixels to a few thousand, of every shape of histogram: flat paper with a little
# ink, two levels only, all one level, noise.
lines = st.one_of(
    arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 60))),
    arrays(np.uint8, st.tuples(st.integers(1, 40), st.integers(1, 200)), elements=st.sampled_from([0, 3, 128, 254, 255])),
)


@settings(max_examples=300, deadline=None)
@given(pixels=lines, dark=st.booleans(),
       percents=st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=3).map(tuple))
def test_median_and_percentiles_equal_numpys(pixels, dark, percents):
    values = np.asarray(pixels, dtype=np.float32) / 255.0  # as ImageFeatures.load scales a line
    levels = LevelCounts.of_pixels(pixels)
    if dark:
        values, levels = 1.0 - values, levels.inverted()
    assert levels.size == values.size
    assert _same(levels.median(), np.median(values))
    assert _same(levels.percentiles(percents), np.percentile(values, percents))
    assert _same(levels.percentiles((50.0, 99.0)), np.percentile(values, (50.0, 99.0)))


def test_a_real_line_and_its_negative():
    generator = np.random.default_rng(3)
    pixels = np.full((64, 611), 236, dtype=np.uint8)
    pixels[20:44, 30:580] = generator.integers(0, 90, (24, 550), dtype=np.uint8)  # ink strokes
    values = np.asarray(pixels, dtype=np.float32) / 255.0
    levels = LevelCounts.of_pixels(pixels)
    assert _same(levels.percentiles((50.0, 99.0)), np.percentile(values, (50.0, 99.0)))
    assert _same(levels.inverted().median(), np.median(1.0 - values))


def test_only_8_bit_lines_and_some_pixels():
    with pytest.raises(TypeError):
        LevelCounts.of_pixels(np.zeros((2, 2), dtype=np.float32))
    empty = LevelCounts.of_pixels(np.zeros((0, 5), dtype=np.uint8))
    with pytest.raises(ValueError):
        empty.median()
