"""Scorers that steer the beam search: a character n-gram LM, a word lexicon, hotword boosts.

The seam is ``Scorer`` (start state, partial score per label, final score), as pyctcdecode's
language-model class has it; a custom Scorer runs in the pure-Python search. The built-in
scorers compile to ``TransitionTable`` automata that the compiled search walks without the
GIL, and the Python twin walks the same tables, so both backends agree exactly.
"""

from __future__ import annotations

import json
import math
import os
import unicodedata
from abc import ABC, abstractmethod
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError, InputFileError, OptionError
from .constants import DEFAULT_LM_ORDER
from .tables import TransitionTable, backoff_step, empty_table

if TYPE_CHECKING:
    from .word_tables import BoundWordLM

NEG_INF = float("-inf")
LM_FORMAT = "ctctool-char-lm"


class Scorer(ABC):
    """A prefix scorer: states are opaque; scores are natural-log additions to a prefix's score."""

    @abstractmethod
    def start_state(self) -> Any: ...

    @abstractmethod
    def score_partial_token(self, state: Any, label: int) -> tuple[float, Any]:
        """Score added when ``label`` extends a prefix in ``state``; -inf forbids the extension."""

    @abstractmethod
    def score_final(self, state: Any) -> float:
        """Score added when the input ends in ``state`` (-inf: not a valid ending)."""


# ---------------------------------------------------------------- character n-gram LM


class CharNgramLM:
    """Interpolated Witten-Bell character n-gram model, stored as a backoff automaton.

    Symbols: 0 = end of line, 1..N = characters, N+1 = unknown, N+2 = start of line.
    State 0 is the empty context; ``step`` backs off through ``backoff_state`` adding
    ``backoff_log_weight`` until the table has the (state, symbol) pair.
    """

    def __init__(self, chars: Sequence[str], order: int, table: TransitionTable, backoff_log_weight: np.ndarray,
                 backoff_state: np.ndarray, start: int, normalization: str = "NFC", lines: int = 0):
        self.chars = tuple(chars)
        self.order = order
        self.table = table
        self.backoff_log_weight = np.ascontiguousarray(backoff_log_weight, dtype=np.float64)
        self.backoff_state = np.ascontiguousarray(backoff_state, dtype=np.int32)
        self.start = start
        self.normalization = normalization
        self.lines = lines
        self.symbol_of = {c: i + 1 for i, c in enumerate(self.chars)}

    @property
    def eos(self) -> int:
        return 0

    @property
    def unk(self) -> int:
        return len(self.chars) + 1

    @property
    def num_symbols(self) -> int:
        return len(self.chars) + 3

    def symbol(self, char: str) -> int:
        return self.symbol_of.get(char, self.unk)

    def step(self, state: int, symbol: int) -> tuple[float, int]:
        """(log P(symbol | state), next state): the same arithmetic as the compiled search."""
        return backoff_step(self.table, self.backoff_log_weight, self.backoff_state, state, symbol)

    def score_text(self, text: str) -> float:
        """log P(text + end of line), natural log."""
        state, total = self.start, 0.0
        for char in unicodedata.normalize(self.normalization, text) if self.normalization != "none" else text:
            logp, state = self.step(state, self.symbol(char))
            total += logp
        return total + self.step(state, self.eos)[0]

    @classmethod
    def build(cls, lines: Iterable[str], order: int = DEFAULT_LM_ORDER, normalization: str = "NFC") -> CharNgramLM:
        if not 1 <= order <= 12:
            raise ConfigError(f"LM order must be between 1 and 12, got {order}")
        sentences = []
        for line in lines:
            line = line.rstrip("\n\r")
            if normalization != "none":
                line = unicodedata.normalize(normalization, line)
            if line.strip():
                sentences.append(line)
        if not sentences:
            raise ConfigError("the LM corpus holds no text")
        chars = sorted({c for s in sentences for c in s})
        symbol_of = {c: i + 1 for i, c in enumerate(chars)}
        eos, bos = 0, len(chars) + 2  # len(chars) + 1 is the unknown symbol
        num_symbols = len(chars) + 3
        history = order - 1
        counts: dict[tuple[int, ...], Counter[int]] = defaultdict(Counter)
        for sentence in sentences:
            seq = [bos] * history + [symbol_of[c] for c in sentence] + [eos]
            for i in range(history, len(seq)):
                for k in range(history + 1):
                    counts[tuple(seq[i - k:i])][seq[i]] += 1
        contexts = sorted(counts, key=lambda h: (len(h), h))
        state_id = {h: i for i, h in enumerate(contexts)}  # () -> 0
        probs: dict[tuple[int, ...], dict[int, float]] = {}
        backoff_weight = np.zeros(len(contexts), dtype=np.float64)  # log
        backoff_state = np.zeros(len(contexts), dtype=np.int32)

        def prob(h: tuple[int, ...], s: int) -> float:
            if s in probs[h]:
                return probs[h][s]
            return math.exp(backoff_weight[state_id[h]]) * prob(h[1:], s)

        root = counts[()]
        total = sum(root.values())
        scored = [s for s in range(num_symbols) if s != bos]
        probs[()] = {s: (root.get(s, 0) + 1) / (total + len(scored)) for s in scored}
        for h in contexts[1:]:
            follow = counts[h]
            c_h, t_h = sum(follow.values()), len(follow)
            lower = h[1:]
            probs[h] = {s: (n + t_h * prob(lower, s)) / (c_h + t_h) for s, n in follow.items()}
            backoff_weight[state_id[h]] = math.log(t_h / (c_h + t_h))
            backoff_state[state_id[h]] = state_id[lower]

        def next_state(h: tuple[int, ...], s: int) -> int:
            if s == eos:
                return 0
            candidate = (h + (s,))[-history:] if history else ()
            while candidate not in state_id:
                candidate = candidate[1:]
            return state_id[candidate]

        entries = {}
        for h, table in probs.items():
            for s, p in table.items():
                entries[(state_id[h], s)] = (next_state(h, s), math.log(p))
        start = state_id[(bos,) * history] if history else 0
        return cls(chars, order, TransitionTable.build(entries, num_symbols), backoff_weight, backoff_state, start,
                   normalization, len(sentences))

    # Files: numpy .npz with no pickled objects (np.load(allow_pickle=False) reads it safely).
    def save(self, path: str) -> None:
        from ..fileio import atomic_write

        header = {"format": LM_FORMAT, "version": 1, "order": self.order, "start": self.start,
                  "normalization": self.normalization, "lines": self.lines, "chars": "".join(self.chars)}
        with atomic_write(path) as handle:
            np.savez_compressed(handle, header=np.array(json.dumps(header)), keys=self.table.keys,
                                next_state=self.table.next_state, value=self.table.value,
                                backoff_log_weight=self.backoff_log_weight, backoff_state=self.backoff_state)

    @classmethod
    def load(cls, path: str) -> CharNgramLM:
        """Read and check an LM file. Every table is validated against the header (lengths,
        index ranges, finiteness, a back-off chain that ends), and the hash table is rebuilt
        from its entries, so the compiled search can never read outside its arrays."""
        if os.path.isdir(path):
            raise InputFileError(f"{path}: LM is a folder, expected a file from `ctctool lm build`")
        try:
            with np.load(path, allow_pickle=False) as data:
                if not hasattr(data, "files"):
                    raise InputFileError(f"{path}: not a ctctool character LM (a bare array, not an .npz archive)")
                missing = [name for name in _LM_ARRAYS if name not in data.files]
                if missing:
                    raise InputFileError(f"{path}: not a ctctool character LM (no '{missing[0]}' array)")
                arrays = {name: data[name] for name in _LM_ARRAYS}
        except FileNotFoundError:
            raise InputFileError(f"{path}: no such LM file") from None
        except InputFileError:
            raise
        except Exception as exc:  # noqa: BLE001 - zip, zlib, npy header errors: all mean "corrupt"
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputFileError(f"{path}: not a ctctool character LM or it is corrupt ({reason[:160]})") from None
        return _lm_from_arrays(path, arrays)


_LM_ARRAYS = ("header", "keys", "next_state", "value", "backoff_log_weight", "backoff_state")


def _lm_from_arrays(path: str, arrays: dict[str, np.ndarray]) -> CharNgramLM:
    def bad(field: str, reason: str) -> InputFileError:
        return InputFileError(f"{path}: {field}: {reason}")

    try:
        header = json.loads(str(arrays["header"]))
    except (ValueError, TypeError):
        raise bad("header", "not JSON") from None
    if not isinstance(header, dict) or header.get("format") != LM_FORMAT:
        raise bad("header", "not a ctctool character LM")
    if header.get("version") != 1:
        raise bad("header.version", f"unknown LM version {header.get('version')!r}")
    order, start, chars = header.get("order"), header.get("start"), header.get("chars")
    normalization = header.get("normalization", "NFC")
    if isinstance(order, bool) or not isinstance(order, int) or not 1 <= order <= 12:
        raise bad("header.order", f"expected 1..12, got {order!r}")
    if not isinstance(chars, str) or len(set(chars)) != len(chars):
        raise bad("header.chars", "expected a string of distinct characters")
    if normalization not in ("NFC", "NFD", "NFKC", "NFKD", "none"):
        raise bad("header.normalization", f"unknown {normalization!r}")
    lines = header.get("lines", 0)
    if isinstance(lines, bool) or not isinstance(lines, int):
        raise bad("header.lines", f"expected an integer, got {lines!r}")
    keys, next_state, value = arrays["keys"], arrays["next_state"], arrays["value"]
    weights, states = arrays["backoff_log_weight"], arrays["backoff_state"]
    for name, array, kind in (("keys", keys, "i"), ("next_state", next_state, "i"), ("value", value, "f"),
                              ("backoff_log_weight", weights, "f"), ("backoff_state", states, "i")):
        if array.ndim != 1 or array.dtype.kind != kind:
            raise bad(name, f"expected a 1-D {'integer' if kind == 'i' else 'float'} array, "
                            f"got {array.dtype} {array.shape}")
    if not len(keys) == len(next_state) == len(value):
        raise bad("keys", f"table arrays differ in length ({len(keys)}, {len(next_state)}, {len(value)})")
    num_states, num_symbols = len(weights), len(chars) + 3
    if num_states < 1 or len(states) != num_states:
        raise bad("backoff_state", f"expected {num_states} entries (one per context), got {len(states)}")
    if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start < num_states:
        raise bad("header.start", f"expected a context 0..{num_states - 1}, got {start!r}")
    occupied = keys != -1
    used_keys = keys[occupied].astype(np.int64)
    targets = next_state[occupied].astype(np.int64)
    scores = value[occupied].astype(np.float64)
    if used_keys.size and (used_keys.min() < 0 or used_keys.max() >= num_states * num_symbols):
        raise bad("keys", f"an entry lies outside {num_states} contexts x {num_symbols} symbols")
    if np.unique(used_keys).size != used_keys.size:
        raise bad("keys", "an entry appears twice")
    if targets.size and (targets.min() < 0 or targets.max() >= num_states):
        raise bad("next_state", f"a target lies outside contexts 0..{num_states - 1}")
    if not np.isfinite(scores).all() or not np.isfinite(weights).all():
        raise bad("value" if not np.isfinite(scores).all() else "backoff_log_weight", "holds NaN or infinity")
    backoff = states.astype(np.int64)
    # Each context backs off to a shorter one, which the builder numbers lower, down to 0:
    # so every back-off chain ends, and the root (0) must score every symbol itself.
    if backoff[0] != 0 or (num_states > 1 and not (backoff[1:] < np.arange(1, num_states)).all()) \
            or backoff.min() < 0:
        raise bad("backoff_state", "a back-off chain does not lead down to the root context")
    root_symbols = set(used_keys[used_keys < num_symbols].tolist())
    needed = set(range(num_symbols - 1))  # end of line, the characters and unknown; not start of line
    if not needed <= root_symbols:
        raise bad("keys", f"the root context lacks symbol {min(needed - root_symbols)}")
    entries = {(int(k) // num_symbols, int(k) % num_symbols): (int(n), float(v))
               for k, n, v in zip(used_keys, targets, scores)}
    table = TransitionTable.build(entries, num_symbols)
    return CharNgramLM(tuple(chars), order, table, weights.astype(np.float64), backoff.astype(np.int32), start,
                       normalization, lines)


# ---------------------------------------------------------------- lexicon and hotwords


def _trie(words: Iterable[Sequence[int]]) -> tuple[dict[tuple[int, int], tuple[int, float]], list[bool]]:
    entries: dict[tuple[int, int], tuple[int, float]] = {}
    is_end = [False]
    for word in words:
        node = 0
        for label in word:
            hit = entries.get((node, label))
            if hit is None:
                is_end.append(False)
                hit = (len(is_end) - 1, 0.0)
                entries[(node, label)] = hit
            node = hit[0]
        is_end[node] = True
    return entries, is_end


def parse_hotword(spec: str) -> tuple[str, float]:
    """``WORD`` or ``WORD:BOOST`` (boost: log-score bonus per matched character)."""
    from .constants import DEFAULT_HOTWORD_BOOST

    word, sep, boost = spec.rpartition(":")
    if not sep:
        return spec, DEFAULT_HOTWORD_BOOST
    try:
        value = float(boost)
    except ValueError:
        return spec, DEFAULT_HOTWORD_BOOST  # a colon inside the word itself
    if not word:
        raise OptionError(f"--hotword {spec!r}: the word is empty")
    if not math.isfinite(value):
        raise OptionError(f"--hotword {spec!r}: the boost must be a finite number")
    return word, value


# ---------------------------------------------------------------- the bundle the search reads


@dataclass
class CompiledScorers:
    """Everything the compiled search needs about scorers, for one codec."""

    num_labels: int  # codec size including blank
    space_label: int  # codec id of " ", or -1
    lm: CharNgramLM | None = None
    lm_symbol_of_label: np.ndarray | None = None  # int32 [num_labels]
    alpha: float = 0.0
    beta: float = 0.0
    lexicon: TransitionTable | None = None
    lexicon_end: np.ndarray | None = None  # uint8 per trie node
    hotwords: TransitionTable | None = None
    hotword_end: np.ndarray | None = None  # uint8 per trie node
    skipped_words: int = 0  # lexicon / hotword entries with characters outside the codec
    word_lm: BoundWordLM | None = None  # word n-gram LM with its own alpha / beta / unk offset

    @property
    def active(self) -> bool:
        return (self.lm is not None or self.lexicon is not None or self.hotwords is not None or self.beta != 0.0
                or self.word_lm is not None)

    def prepared(self, build: Callable[[CompiledScorers, tuple], Any]) -> Any:
        """The compiled search's struct for these scorers, built by ``build`` on first use and
        again whenever a weight or a table was changed since (fields are public and mutable)."""
        word = self.word_lm
        numbers = (self.alpha, self.beta, self.space_label, self.num_labels,
                   *((word.alpha, word.beta, word.unk_offset) if word else ()))
        objects = (self.lm, self.lm_symbol_of_label, self.lexicon, self.lexicon_end, self.hotwords, self.hotword_end,
                   word, *((word.tables, word.prefix, word.node_word) if word else ()))
        cached = self.__dict__.get("_prepared")
        if cached is not None:
            old_numbers, old_objects = cached.key
            if old_numbers == numbers and len(old_objects) == len(objects) and all(
                    a is b for a, b in zip(old_objects, objects)):
                return cached
        cached = build(self, (numbers, objects))
        self.__dict__["_prepared"] = cached
        return cached

    def __getstate__(self) -> dict[str, Any]:
        """Copies and pickles leave the compiled struct behind (it points into this process)."""
        return {k: v for k, v in self.__dict__.items() if k != "_prepared"}

    def arrays(self) -> dict[str, Any]:
        """Flat arrays for the compiled search (empty ones where a scorer is off)."""
        empty = empty_table()
        lm_table = self.lm.table if self.lm else empty
        return {
            "lm_keys": lm_table.keys, "lm_next": lm_table.next_state, "lm_value": lm_table.value,
            "lm_bits": lm_table.bits, "lm_nsym": lm_table.num_symbols,
            "lm_backoff_w": self.lm.backoff_log_weight if self.lm else np.zeros(1),
            "lm_backoff_s": self.lm.backoff_state if self.lm else np.zeros(1, dtype=np.int32),
            "lm_sym": self.lm_symbol_of_label if self.lm_symbol_of_label is not None
            else np.zeros(self.num_labels, dtype=np.int32),
            "lm_start": self.lm.start if self.lm else 0,
            "lex": self.lexicon or empty, "lex_end": self.lexicon_end if self.lexicon_end is not None
            else np.zeros(1, dtype=np.uint8),
            "hot": self.hotwords or empty, "hot_end": self.hotword_end if self.hotword_end is not None
            else np.zeros(1, dtype=np.uint8),
            "wlm": self.word_lm.tables.table if self.word_lm else empty,
            "wlm_backoff_w": self.word_lm.tables.backoff_ln if self.word_lm else np.zeros(1),
            "wlm_backoff_s": self.word_lm.tables.backoff_state if self.word_lm else np.zeros(1, dtype=np.int32),
            "wlm_start": self.word_lm.tables.start if self.word_lm else 0,
            "prefix": self.word_lm.prefix if self.word_lm else empty,
            "prefix_word": self.word_lm.node_word if self.word_lm else np.zeros(1, dtype=np.int32),
        }


def compile_scorers(labels: Sequence[str], *, lm: CharNgramLM | None = None, alpha: float = 0.0, beta: float = 0.0,
                    lexicon: Iterable[str] | None = None,
                    hotwords: Iterable[tuple[str, float]] | None = None,
                    word_lm: BoundWordLM | None = None) -> CompiledScorers:
    """Bind scorers to a codec's labels (``labels[i]`` is label id i+1; id 0 is blank).
    ``alpha`` / ``beta`` weigh the character LM (beta: per label); a word LM, bound with
    ``word_tables.bind_word_lm``, carries its own."""
    for name, weight in (("alpha", alpha), ("beta", beta)):
        if not math.isfinite(weight):
            raise OptionError(f"--{name} must be a finite number, got {weight}")
    index = {c: i + 1 for i, c in enumerate(labels)}
    num_labels = len(labels) + 1
    bundle = CompiledScorers(num_labels=num_labels, space_label=index.get(" ", -1), alpha=alpha, beta=beta,
                             word_lm=word_lm)
    if lm is not None:
        bundle.lm = lm
        bundle.lm_symbol_of_label = np.array([0] + [lm.symbol(c) for c in labels], dtype=np.int32)
    skipped = 0
    if lexicon is not None:
        words = []
        for word in lexicon:
            ids = [index.get(c) for c in word]
            if word and all(i is not None for i in ids):
                words.append(ids)
            elif word:
                skipped += 1
        if not words:
            raise ConfigError("the lexicon holds no word the model can spell")
        entries, ends = _trie(words)
        bundle.lexicon = TransitionTable.build(entries, num_labels)
        bundle.lexicon_end = np.array(ends, dtype=np.uint8)
    if hotwords is not None:
        hot = list(hotwords)
        words, boosts = [], []
        for word, boost in hot:
            if not math.isfinite(boost):
                raise OptionError(f"hotword {word!r}: the boost must be a finite number, got {boost}")
            word = " ".join(word.split())  # a phrase: words separated by single spaces
            ids = [index.get(c) for c in word]
            if word and all(i is not None for i in ids):
                words.append(ids)
                boosts.append(boost)
            else:
                skipped += 1
        if words:
            entries, ends = _trie(words)
            # A trie edge's value is the bonus for matching that character: the largest boost
            # of the hotwords that pass through it.
            best: dict[tuple[int, int], float] = {}
            for ids, boost in zip(words, boosts):
                node = 0
                for label in ids:
                    target = entries[(node, label)][0]
                    best[(node, label)] = max(best.get((node, label), NEG_INF), boost)
                    node = target
            entries = {key: (target, best[key]) for key, (target, _) in entries.items()}
            bundle.hotwords = TransitionTable.build(entries, num_labels)
            bundle.hotword_end = np.array(ends, dtype=np.uint8)
    bundle.skipped_words = skipped
    return bundle


def read_word_list(path: str) -> list[str]:
    """One word per line (first whitespace-separated field; blank lines and #-comments skipped)."""
    from ..fileio import read_text

    lines = read_text(path, "lexicon").splitlines()
    return [line.split()[0] for line in lines if line.strip() and not line.startswith("#")]
