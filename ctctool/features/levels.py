"""A line's pixel counts per grey level, and its median and percentiles read from them.

A line reaches the network as 8-bit grey levels scaled to 0..1, so however wide it is it holds
at most 256 distinct values. Its median (``ImageFeatures`` tells dark ink from light by it) and
its 50th and 99th percentiles (centre normalization's paper and ink levels) are order
statistics of those values: the counts find them in one pass over the pixels (``np.bincount``),
where ``np.median`` and ``np.percentile`` partition every value (together about 0.5 ms of a
centre-normalized line's 2.5 ms of preparation, 64 x 600 working pixels).

The answers equal numpy's bit for bit: the same order statistics, combined by the arithmetic
numpy uses (the mean of the middle two for an even median; linear interpolation between the
neighbouring order statistics, in float64, for a percentile). ``tests/test_levels.py`` compares
them with the installed numpy on arbitrary lines of either polarity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Each 8-bit level's value as ``ImageFeatures.load`` computes it (float32 division by 255).
GREY_LEVELS = np.arange(256, dtype=np.float32) / 255.0


@dataclass(frozen=True)
class LevelCounts:
    values: np.ndarray  # float32 [levels], ascending: the values a pixel of the line can hold
    counts: np.ndarray  # int64 [levels]: how many of the line's pixels hold each

    @classmethod
    def of_pixels(cls, pixels: np.ndarray) -> LevelCounts:
        """The counts of an 8-bit line (``uint8`` [rows, columns]) scaled to 0..1."""
        if pixels.dtype != np.uint8:
            raise TypeError(f"expected 8-bit pixels, got {pixels.dtype}")
        return cls(GREY_LEVELS, np.bincount(pixels.ravel(), minlength=256).astype(np.int64))

    def inverted(self) -> LevelCounts:
        """The counts of ``1.0 - values`` (dark ink turned high), still in ascending order."""
        return LevelCounts((1.0 - self.values)[::-1], self.counts[::-1])

    @property
    def size(self) -> int:
        return int(self.counts.sum())

    def order_statistics(self, ranks: np.ndarray) -> np.ndarray:
        """The values at 0-based ``ranks`` of the line's pixels sorted ascending (float32)."""
        return self.values[np.searchsorted(np.cumsum(self.counts), ranks, side="right")]

    def median(self) -> np.floating:
        """``np.median`` of the line's values."""
        total = self.size
        if total == 0:
            raise ValueError("the median of no pixels")
        middle = [total // 2] if total % 2 else [total // 2 - 1, total // 2]
        # np.median of the middle one or two: numpy's own mean of them, as it takes for the line.
        return np.median(self.order_statistics(np.array(middle)))

    def percentiles(self, percents: tuple[float, ...]) -> np.ndarray:
        """``np.percentile(values, percents)`` (linear interpolation) of the line's values, float64."""
        total = self.size
        if total == 0:
            raise ValueError("percentiles of no pixels")
        virtual = (total - 1) * np.true_divide(np.asarray(percents, dtype=np.float64), 100)
        previous = np.floor(virtual)
        last = virtual >= total - 1  # at or past the top: the largest value itself
        below = np.where(last, total - 1, previous).astype(np.int64)
        above = np.where(last, total - 1, previous + 1).astype(np.int64)
        gamma = virtual - previous
        low, high = self.order_statistics(below), self.order_statistics(above)
        difference = high - low  # float32, as numpy subtracts the two order statistics
        result = low + difference * gamma  # float64 from here on
        return np.where(gamma >= 0.5, high - difference * (1 - gamma), result)
