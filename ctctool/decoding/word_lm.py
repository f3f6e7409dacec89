"""Word n-gram language models: build one with interpolated modified Kneser-Ney smoothing (the
estimate KenLM's ``lmplz`` makes), and read and write the ARPA format every toolkit speaks.

An ARPA file lists, per order, ``log10 p(w | h)`` for the n-grams it saw and ``log10 b(h)``
for the n-grams that are contexts of longer ones; anything else is reached by backing off:
``p(w | h) = b(h) p(w | h[1:])``. For an interpolated model the listed ``p`` is already the
interpolated one and ``b(h)`` is the interpolation weight, so reading back gives exactly the
model that was built (``tests/test_word_lm.py`` checks this against a direct evaluation of the
Kneser-Ney formulas, and that every context's distribution sums to one).

Sentences are padded with ``<s>`` and ``</s>``; words outside the vocabulary are ``<unk>``.
"""

from __future__ import annotations

import gzip
import io
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..errors import ConfigError
from .arpa import MAX_ORDER, read_arpa
from .constants import DEFAULT_UNK_OFFSET
from .scorers import Scorer

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
NO_PROB = -99.0  # log10 "probability" ARPA files give <s>, which is never predicted
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)  # lmplz --discount_fallback's, for orders whose counts cannot give them


@dataclass
class WordNgramLM:
    """n-gram tables: ``ngrams[n - 1][words] = (log10 p, log10 backoff)`` for n = 1..order."""

    order: int
    ngrams: list[dict[tuple[str, ...], tuple[float, float]]]
    discounts: list[tuple[float, float, float]] = field(default_factory=list)  # per order, when built here

    def __post_init__(self) -> None:
        if not 1 <= self.order <= MAX_ORDER or len(self.ngrams) != self.order:
            raise ConfigError(f"word LM order must be 1..{MAX_ORDER} with one table per order")
        if (UNK,) not in self.ngrams[0]:
            self.ngrams[0][(UNK,)] = (NO_PROB, 0.0)  # ARPA files without <unk>: unknown words get ~0

    @property
    def vocabulary(self) -> set[str]:
        return {words[0] for words in self.ngrams[0]}

    def log10_prob(self, context: Sequence[str], word: str) -> float:
        """log10 p(word | context), backing off as the ARPA format defines; only the last
        ``order - 1`` context words count; unknown words are ``<unk>``."""
        unigrams = self.ngrams[0]
        word = word if (word,) in unigrams else UNK
        kept = context[max(0, len(context) - self.order + 1):] if self.order > 1 else ()
        history = tuple(w if (w,) in unigrams else UNK for w in kept)
        backoff = 0.0
        while True:
            entry = self.ngrams[len(history)].get((*history, word))
            if entry is not None:
                return backoff + entry[0]
            if history:
                context_entry = self.ngrams[len(history) - 1].get(history)
                backoff += context_entry[1] if context_entry is not None else 0.0
                history = history[1:]
            else:  # only reachable when <unk> was given NO_PROB
                return backoff + NO_PROB

    def score_sentence(self, words: Sequence[str], *, eos: bool = True) -> float:
        """log10 p(words [</s>] | <s>)."""
        history: list[str] = [BOS]
        total = 0.0
        for word in [*words, EOS] if eos else words:
            total += self.log10_prob(history, word)
            history.append(word)
        return total

    # ---------------------------------------------------------------- ARPA

    def write_arpa(self, handle: io.TextIOBase) -> None:
        handle.write("\n\\data\\\n")
        for n, table in enumerate(self.ngrams, start=1):
            handle.write(f"ngram {n}={len(table)}\n")
        for n, table in enumerate(self.ngrams, start=1):
            handle.write(f"\n\\{n}-grams:\n")
            # n-grams that are contexts of longer ones carry a backoff, even one of log10 1 = 0
            contexts = {words[:-1] for words in self.ngrams[n]} if n < self.order else set()
            for words in sorted(table):
                logp, backoff = table[words]
                line = f"{logp:.9g}\t{' '.join(words)}"
                if backoff != 0.0 or words in contexts:
                    line += f"\t{backoff:.9g}"
                handle.write(line + "\n")
        handle.write("\n\\end\\\n")

    def save(self, path: str) -> None:
        from ..fileio import atomic_write

        with atomic_write(path) as raw:
            stream = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if path.endswith(".gz") else raw
            text = io.TextIOWrapper(stream, encoding="utf-8", newline="\n")
            self.write_arpa(text)
            text.flush()
            text.detach()
            if stream is not raw:
                stream.close()

    @classmethod
    def load_arpa(cls, path: str) -> WordNgramLM:
        """Read an ARPA file (``.arpa`` or ``.arpa.gz``); every problem is an error naming the
        file, the line and what is wrong with it."""
        arpa = read_arpa(path)
        ngrams = []
        for rows, probs, backoffs in zip(arpa.ngrams, arpa.log10_prob, arpa.log10_backoff):
            keys = [tuple(arpa.tokens[i] for i in row) for row in rows.tolist()]
            ngrams.append(dict(zip(keys, zip(probs.tolist(), backoffs.tolist()))))
        return cls(order=arpa.order, ngrams=ngrams)


# ---------------------------------------------------------------- building


def kneser_ney_discounts(count_of_counts: Counter[int]) -> tuple[float, float, float] | None:
    """Chen and Goodman's estimates D1, D2, D3+ from how many n-grams have (adjusted) count 1..4;
    None when the counts cannot give valid ones (a small corpus)."""
    t1, t2, t3, t4 = (count_of_counts.get(k, 0) for k in (1, 2, 3, 4))
    if min(t1, t2, t3, t4) == 0:
        return None
    y = t1 / (t1 + 2 * t2)
    discounts = (1 - 2 * y * t2 / t1, 2 - 3 * y * t3 / t2, 3 - 4 * y * t4 / t3)
    if not all(0 < d < k for d, k in zip(discounts, (1, 2, 3))):
        return None
    return discounts


def build_kneser_ney(sentences: Iterable[Sequence[str]], order: int = 3) -> WordNgramLM:
    """An interpolated modified Kneser-Ney word LM from tokenized sentences.

    Counts: the highest order counts n-grams; lower orders count distinct left extensions
    (continuation counts), except n-grams starting with ``<s>``, which keep their counts; the
    unigram ``<s>`` counts nothing (it is never predicted).
    Per order, discounts D1, D2, D3+ come from the counts of counts (the fallback 0.5 / 1 /
    1.5 where they cannot). ``p(w | h) = max(a(hw) - D(a(hw)), 0) / a(h.) + gamma(h) p(w | h')``
    with ``gamma(h) = (D1 N1(h.) + D2 N2(h.) + D3 N3+(h.)) / a(h.)``; unigrams interpolate with
    the uniform distribution over the vocabulary (``<unk>`` and ``</s>`` included, ``<s>``
    not)."""
    if not 1 <= order <= MAX_ORDER:
        raise ConfigError(f"--order must be 1..{MAX_ORDER}, got {order}")
    raw: list[Counter[tuple[str, ...]]] = [Counter() for _ in range(order)]
    vocabulary: set[str] = {EOS, UNK}
    lines = 0
    for words in sentences:
        if not words:
            continue
        lines += 1
        vocabulary.update(words)
        padded = [BOS, *words, EOS]
        for n in range(1, order + 1):
            for i in range(len(padded) - n + 1):
                raw[n - 1][tuple(padded[i:i + n])] += 1
    if not lines:
        raise ConfigError("the LM corpus holds no words")
    for token in (BOS, EOS, UNK):
        if token in vocabulary - {EOS, UNK}:
            raise ConfigError(f"the corpus uses {token!r}, which the LM reserves")
    adjusted = _adjusted_counts(raw, order)
    discounts = [kneser_ney_discounts(Counter(adjusted[n].values())) or FALLBACK_DISCOUNTS for n in range(order)]
    probs, gammas = _interpolate(adjusted, discounts, vocabulary, order)
    tables: list[dict[tuple[str, ...], tuple[float, float]]] = []
    for n in range(order):
        table = {}
        for words, p in probs[n].items():
            logp = NO_PROB if words == (BOS,) else math.log10(p)
            gamma = gammas.get(words) if n < order - 1 else None
            table[words] = (logp, math.log10(gamma) if gamma else 0.0)
        tables.append(table)
    return WordNgramLM(order=order, ngrams=tables, discounts=discounts)


def _adjusted_counts(raw: list[Counter], order: int) -> list[Counter]:
    adjusted = [Counter() for _ in range(order)]
    adjusted[order - 1] = Counter(raw[order - 1])
    for n in range(order - 1):  # order n + 1
        continuation: Counter[tuple[str, ...]] = Counter()
        for longer in raw[n + 1]:
            continuation[longer[1:]] += 1  # one more distinct word before longer[1:]
        for words, count in raw[n].items():
            adjusted[n][words] = count if words[0] == BOS else continuation[words]
    # <s> is context only, never predicted: its unigram holds no probability mass (else the
    # unigram distribution would sum to less than one) and no count of counts.
    del adjusted[0][(BOS,)]
    return adjusted


def _interpolate(adjusted, discounts, vocabulary, order):
    """Interpolated probabilities of every counted n-gram and the gamma of every context."""
    def discount(n: int, count: int) -> float:
        d1, d2, d3 = discounts[n]
        return d1 if count == 1 else d2 if count == 2 else d3

    gammas: dict[tuple[str, ...], float] = {}
    totals: list[dict[tuple[str, ...], float]] = []
    for n in range(order):
        by_context: dict[tuple[str, ...], list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # total, N1, N2, N3+
        for words, count in adjusted[n].items():
            row = by_context[words[:-1]]
            row[0] += count
            row[min(count, 3)] += 1
        totals.append({h: row[0] for h, row in by_context.items()})
        d1, d2, d3 = discounts[n]
        for h, (total, n1, n2, n3) in by_context.items():
            gammas[h] = (d1 * n1 + d2 * n2 + d3 * n3) / total
    predicted = len(vocabulary)  # <s> is never predicted; <unk> and </s> are
    probs: list[dict[tuple[str, ...], float]] = [{} for _ in range(order)]
    uniform = 1.0 / predicted
    for word in vocabulary:
        count = adjusted[0].get((word,), 0)
        probs[0][(word,)] = max(count - discount(0, count), 0.0) / totals[0][()] + gammas[()] * uniform \
            if count else gammas[()] * uniform
    probs[0][(BOS,)] = 0.0
    for n in range(1, order):
        for words, count in adjusted[n].items():
            h = words[:-1]
            lower = _lookup(probs, gammas, words[1:])
            probs[n][words] = max(count - discount(n, count), 0.0) / totals[n][h] + gammas[h] * lower
    return probs, gammas


def _lookup(probs, gammas, words: tuple[str, ...]) -> float:
    """p(words[-1] | words[:-1]) from the interpolated tables, backing off where not counted."""
    if words in probs[len(words) - 1]:
        return probs[len(words) - 1][words]
    return gammas.get(words[:-1], 1.0) * _lookup(probs, gammas, words[1:])


# ---------------------------------------------------------------- scoring in the beam search


LN10 = math.log(10.0)


class WordLMScorer(Scorer):
    """A word n-gram LM as a beam-search scorer: a word is scored when it ends (at a space
    label, or at the end of the input), ``alpha * ln p(word | previous words) + beta``; while it
    is being spelled, a lookahead keeps prefixes comparable: ``alpha`` times the best unigram
    ``ln p`` of any vocabulary word the partial word begins, or ``unk_offset`` when it begins
    none (pyctcdecode's partial-word scoring and ``unk_score_offset``). The lookahead is taken
    back when the word is scored, so a finished labelling's total is exactly
    ``sum (alpha ln p(w_i | h_i) + beta) + alpha ln p(</s> | h)``, plus ``unk_offset`` for each
    word outside the vocabulary (scored as ``<unk>``: without the offset, a model whose
    ``<unk>`` is likely made run-together words like "Ihad" cheaper than "I had").

    ``lm``: a ``WordNgramLM``, its ``word_tables.WordLMTables``, or an ARPA file's path. Given to
    ``prefix_beam_search``, it runs in the compiled search (``compiled()``); its own
    ``score_partial_token`` walks the same tables with the same arithmetic, for the Python seam.
    """

    def __init__(self, lm, labels: Sequence[str], *, alpha: float = 0.5, beta: float = 0.0,
                 unk_offset: float = DEFAULT_UNK_OFFSET):
        from .word_tables import WordLMTables, bind_word_lm, compile_tables, load_word_lm_tables

        if isinstance(lm, str):
            tables = load_word_lm_tables(lm)
        elif isinstance(lm, WordNgramLM):
            tables = compile_tables(lm)
        elif isinstance(lm, WordLMTables):
            tables = lm
        else:
            raise ConfigError(f"a word LM is a WordNgramLM, its tables or an ARPA path, not {type(lm).__name__}")
        self.labels = tuple(labels)
        self.bound = bind_word_lm(tables, self.labels, alpha=alpha, beta=beta, unk_offset=unk_offset)
        self.alpha, self.beta, self.unk_offset = self.bound.alpha, self.bound.beta, self.bound.unk_offset
        self._compiled = None

    def compiled(self):
        """The same scorer as the bundle the compiled search reads."""
        from .scorers import compile_scorers

        if self._compiled is None:
            self._compiled = compile_scorers(self.labels, word_lm=self.bound)
        return self._compiled

    def _scoring(self):
        from .beam_py import _BuiltinScoring

        return _BuiltinScoring(self.compiled())

    # The Scorer seam, for callers that walk it themselves: the Python twin's arithmetic (the
    # compiled search's), not a third copy of it. States are that twin's.
    def start_state(self):
        return self._scoring().start_state()

    def score_partial_token(self, state, label: int):
        step = self._scoring().extend(state, label)
        return (float("-inf"), state) if step is None else step

    def score_final(self, state) -> float:
        return self._scoring().final(state)
