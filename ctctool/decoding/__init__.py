"""Turning per-frame log-probabilities into label sequences.

Greedy best path, and the CTC prefix beam search (compiled, with a readable pure-Python
twin) with optional scorers: a character n-gram LM, a word lexicon, hotword boosts, and a
word n-gram LM (``WordLMScorer`` over an ARPA file, compiled to ``word_tables`` that both
searches walk; ``compile_scorers(..., word_lm=bind_word_lm(...))`` combines it with the rest). Every
decoder returns ``Hypothesis`` objects with per-label frame spans, so confidences and
alignment come for free.

Names load on first use (PEP 562), so ``ctctool.decoding.constants`` is cheap to import
from the command line's option defaults.
"""

from importlib import import_module

_EXPORTS = {
    "BACKEND": "beam", "prefix_beam_search": "beam", "prefix_beam_search_batch": "beam",
    "greedy_decode": "greedy", "Hypothesis": "hypothesis",
    "CharNgramLM": "scorers", "CompiledScorers": "scorers", "Scorer": "scorers", "compile_scorers": "scorers",
    "WordNgramLM": "word_lm", "WordLMScorer": "word_lm", "build_kneser_ney": "word_lm",
    "WordLMTables": "word_tables", "load_word_lm_tables": "word_tables", "bind_word_lm": "word_tables",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
