"""KenLM binary word LMs, scored through the ``kenlm`` module (``pip install 'ctctool[kenlm]'``).

The ``kenlm`` module scores a word given a state but cannot list a model's n-grams or its
vocabulary, so a KenLM binary cannot be compiled into the tables the compiled search walks.
``KenLMBinaryScorer`` is a ``Scorer`` instead: the search runs in the Python twin, the word is
scored when it ends, ``alpha * ln p(word | state) + beta`` (plus ``unk_offset`` for a word the
model does not know, as for ARPA files), and there is no partial-word lookahead (pyctcdecode
without a unigram list does the same). An ARPA file gives the full search: faster, with the
lookahead, and combinable with a character LM, a lexicon and hotwords.

KenLM itself reads the binary and trusts it more than ctctool's readers trust their files:
prefer ARPA for LM files from strangers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..errors import ConfigError, InputFileError
from .constants import DEFAULT_UNK_OFFSET
from .scorers import Scorer

KENLM_MAGIC = b"mmap lm http://kheafield.com/code"  # how every KenLM binary file begins
LN10 = math.log(10.0)


def is_kenlm_binary(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(len(KENLM_MAGIC)) == KENLM_MAGIC
    except OSError:
        return False


def load_kenlm(path: str):
    """The ``kenlm.Model`` of a KenLM binary (or ARPA) file, with errors that say what to do."""
    try:
        import kenlm
    except ImportError:
        raise ConfigError(f"{path} is a KenLM binary LM: reading it needs the kenlm module "
                          "(pip install 'ctctool[kenlm]'), or give the ARPA file it was built from") from None
    try:
        return kenlm.Model(path)
    except (OSError, RuntimeError, ValueError) as exc:
        raise InputFileError(f"{path}: KenLM cannot read this LM ({str(exc).splitlines()[0] if str(exc) else exc})") \
            from None


class KenLMBinaryScorer(Scorer):
    """A word LM read by KenLM as a beam-search scorer (see the module docstring). States are
    ``(kenlm.State, partial word)``; scores are natural logs."""

    def __init__(self, model, labels: Sequence[str], *, alpha: float = 0.5, beta: float = 0.0,
                 unk_offset: float = DEFAULT_UNK_OFFSET):
        import kenlm

        from .word_tables import check_word_lm_options

        check_word_lm_options(labels, alpha=alpha, beta=beta, unk_offset=unk_offset)
        self._kenlm = kenlm
        self.model = model if not isinstance(model, str) else load_kenlm(model)
        self.labels = tuple(labels)
        self.space_label = self.labels.index(" ") + 1
        self.alpha, self.beta, self.unk_offset = float(alpha), float(beta), float(unk_offset)
        self._scores: dict[tuple, tuple[float, object]] = {}  # (state, word) -> (ln p, next state)

    def start_state(self):
        state = self._kenlm.State()
        self.model.BeginSentenceWrite(state)
        return state, ""

    def _word(self, state, word: str) -> tuple[float, object]:
        """(alpha ln p(word | state) + beta [+ unk offset], next state), memoized."""
        key = (state, word)
        hit = self._scores.get(key)
        if hit is None:
            after = self._kenlm.State()
            score = self.alpha * LN10 * self.model.BaseScore(state, word, after)
            if word != "</s>":
                score += self.beta + (0.0 if word in self.model else self.unk_offset)
            hit = (score, after)
            if len(self._scores) > 1_000_000:  # bound the memo over a long run
                self._scores.clear()
            self._scores[key] = hit
        return hit

    def score_partial_token(self, state, label: int):
        lm_state, word = state
        if label == self.space_label:
            if not word:  # repeated or leading spaces end no word
                return 0.0, state
            score, after = self._word(lm_state, word)
            return score, (after, "")
        return 0.0, (lm_state, word + self.labels[label - 1])

    def score_final(self, state) -> float:
        lm_state, word = state
        total = 0.0
        if word:
            total, lm_state = self._word(lm_state, word)
        return total + self._word(lm_state, "</s>")[0]
