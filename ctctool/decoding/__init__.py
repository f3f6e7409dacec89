"""Turning per-frame log-probabilities into label sequences.

Greedy best path, and the CTC prefix beam search (compiled, with a readable pure-Python
twin) with optional scorers: a character n-gram LM, a word lexicon, hotword boosts. Every
decoder returns ``Hypothesis`` objects with per-label frame spans, so confidences and
alignment come for free.
"""

from .beam import BACKEND, prefix_beam_search, prefix_beam_search_batch
from .greedy import greedy_decode
from .hypothesis import Hypothesis
from .scorers import CharNgramLM, CompiledScorers, Scorer, compile_scorers

__all__ = ["BACKEND", "CharNgramLM", "CompiledScorers", "Hypothesis", "Scorer", "compile_scorers",
           "greedy_decode", "prefix_beam_search", "prefix_beam_search_batch"]
