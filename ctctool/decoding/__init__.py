"""Turning per-frame log-probabilities into label sequences.

``greedy_decode`` (best path) lives here; the prefix beam search and its scorers plug in
beside it. Every decoder returns ``Hypothesis`` objects with per-label frame spans, so
confidences and alignment come for free.
"""

from .greedy import greedy_decode
from .hypothesis import Hypothesis

__all__ = ["Hypothesis", "greedy_decode"]
