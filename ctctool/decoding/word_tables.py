"""A word n-gram LM as flat tables both beam-search backends walk, built once per LM file.

``WordLMTables`` holds the n-gram model: each *context* (an n-gram that can be a history, up
to ``order - 1`` words) is a state; ``table[(state, word)] = (next state, ln p(word | state))``
for the n-grams the file lists, and a word the state lacks backs off,
``ln p(w | h) = backoff_ln[h] + ln p(w | backoff_state[h])``, down to the root state 0 (the
empty context), which scores every word. The next state is the longest listed suffix of the
history plus the word, so states stay small integers (KenLM's state minimization).

``BoundWordLM`` binds the tables to a model's codec: a prefix trie of the vocabulary over the
codec's labels, each node holding the best unigram ``ln p`` of the words below it (the
partial-word lookahead) and the word that ends there, if any.

Tables are cached in memory per file and on disk next to the LM file (``LM.ctctool-cache.npz``,
keyed by the file's SHA-256), so a large ARPA file is parsed once.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, InputFileError
from .arpa import HASH_MULTIPLIERS, ArpaArrays, read_arpa, row_keys
from .tables import TransitionTable, backoff_step
from .word_lm import BOS, EOS, NO_PROB, UNK, WordNgramLM

LN10 = math.log(10.0)
EOS_ID, UNK_ID, BOS_ID = 0, 1, 2  # word ids; the vocabulary follows from 3, sorted
NO_WORD = -1  # a prefix-trie node where no vocabulary word ends
DEAD = -1  # prefix-trie "node" of a partial word that starts no vocabulary word
CACHE_SUFFIX = ".ctctool-cache.npz"
CACHE_FORMAT, CACHE_VERSION = "ctctool-word-lm-tables", 1


@dataclass
class WordLMTables:
    order: int
    words: tuple[str, ...]  # word id -> word
    table: TransitionTable  # (context state, word id) -> (next context state, ln p)
    backoff_ln: np.ndarray  # float64 per context state
    backoff_state: np.ndarray  # int32 per context state (shorter context; the root backs off to itself)
    start: int  # the context state of <s>

    @property
    def num_states(self) -> int:
        return len(self.backoff_ln)

    def word_id(self) -> dict[str, int]:
        return {word: i for i, word in enumerate(self.words)}

    def step(self, state: int, word: int) -> tuple[float, int]:
        """(ln p(word | state), next state): the compiled search's arithmetic, in the same order."""
        return backoff_step(self.table, self.backoff_ln, self.backoff_state, state, word)


def compile_tables(lm: WordNgramLM) -> WordLMTables:
    """The state tables of an n-gram model held as dictionaries (one built here, for example)."""
    tokens = [words_[0] for words_ in lm.ngrams[0]]
    index = {word: i for i, word in enumerate(tokens)}
    ngrams, probs, backoffs = [], [], []
    for n, table in enumerate(lm.ngrams, start=1):
        listed = [words_ for words_ in table if all(w in index for w in words_)]
        ngrams.append(np.array([[index[w] for w in words_] for words_ in listed], dtype=np.int64).reshape(-1, n))
        probs.append(np.array([table[words_][0] for words_ in listed], dtype=np.float64))
        backoffs.append(np.array([table[words_][1] for words_ in listed], dtype=np.float64))
    return compile_arrays(ArpaArrays(tokens, len(tokens), ngrams, probs, backoffs))


class _Contexts:
    """Every listed n-gram shorter than the order is a context state: the root is 0, then the
    unigrams, the bigrams, ... (shorter first, so a context backs off to a lower number).

    Many word sequences are looked up at once: a unigram by its word id; a longer sequence by
    a key, the row packed into one int64 where ``num_words ** n`` fits (exact), else a 64-bit
    hash of the row confirmed by comparing the rows themselves (so a collision can never return
    a wrong state), and binary search among the contexts' sorted keys, with the queries sorted
    first so that the search walks memory forward."""

    def __init__(self, rows_per_order: list[np.ndarray], num_words: int) -> None:
        self.num_words = num_words
        self.offsets = [1]
        for rows in rows_per_order:
            self.offsets.append(self.offsets[-1] + len(rows))
        self.rows = rows_per_order
        self.by_word = np.full(num_words, -1, dtype=np.int64)
        if rows_per_order:
            self.by_word[rows_per_order[0][:, 0]] = self.offsets[0] + np.arange(len(rows_per_order[0]))
        for multiplier in HASH_MULTIPLIERS:  # contexts are distinct rows; their keys must be too
            self.multiplier = multiplier
            self.sorted_keys, self.order_of = [], []
            for rows in rows_per_order:
                keys = self._keys(rows)
                order = np.argsort(keys)
                self.sorted_keys.append(keys[order])
                self.order_of.append(order)
            if all(not (k[1:] == k[:-1]).any() for k in self.sorted_keys):
                return
        raise ConfigError("cannot index this LM's contexts (hash collisions under every multiplier)")

    @property
    def count(self) -> int:
        return self.offsets[-1]

    def _exact(self, n: int) -> bool:
        return self.num_words ** n < 2 ** 63

    def _keys(self, rows: np.ndarray) -> np.ndarray:
        if self._exact(rows.shape[1]):
            keys = np.zeros(len(rows), dtype=np.int64)
            for column in range(rows.shape[1]):
                keys = keys * self.num_words + rows[:, column]
            return keys
        return row_keys(rows, self.multiplier)

    def find(self, queries: np.ndarray) -> np.ndarray:
        """The state of each row of ``queries`` (int64 [m, n], 1 <= n < order), or -1 where the
        sequence is not a listed context."""
        n = queries.shape[1]
        if n == 1:
            return self.by_word[queries[:, 0]]
        found = np.full(len(queries), -1, dtype=np.int64)
        keys, order = self.sorted_keys[n - 1], self.order_of[n - 1]
        if not len(keys) or not len(queries):
            return found
        wanted = self._keys(queries)
        by_key = np.argsort(wanted)
        at = np.empty(len(queries), dtype=np.int64)
        at[by_key] = np.searchsorted(keys, wanted[by_key])
        np.minimum(at, len(keys) - 1, out=at)
        candidate = order[at]
        hit = keys[at] == wanted
        if not self._exact(n):
            hit &= (self.rows[n - 1][candidate] == queries).all(axis=1)
        found[hit] = self.offsets[n - 1] + candidate[hit]
        return found

    def longest(self, sequences: np.ndarray) -> np.ndarray:
        """The state of the longest suffix of each row that is a listed context (the root, 0,
        when none is): where the search goes after the sequence."""
        history = len(self.rows)
        length = min(sequences.shape[1], history)
        states = np.zeros(len(sequences), dtype=np.int64)
        pending = np.arange(len(sequences))
        for size in range(length, 0, -1):
            if not pending.size:
                break
            found = self.find(sequences[pending, sequences.shape[1] - size:])
            states[pending[found >= 0]] = found[found >= 0]
            pending = pending[found < 0]
        return states


def compile_arrays(arpa: ArpaArrays) -> WordLMTables:
    """The state tables of an n-gram model (n-grams whose words or context the file does not
    list are left out: a well-formed ARPA file has none). Vectorized: a 100 MB file compiles in
    seconds."""
    order = arpa.order
    specials = (EOS, UNK, BOS)
    unigram_words = arpa.tokens[:arpa.num_unigrams]
    vocabulary = sorted(set(unigram_words) - set(specials))
    words = (*specials, *vocabulary)
    word_id = {w: i for i, w in enumerate(words)}
    remap = np.array([word_id[w] for w in unigram_words] + [-1] * (len(arpa.tokens) - arpa.num_unigrams),
                     dtype=np.int64)
    ngrams, probs, backoffs = [], [], []
    for n in range(order):
        rows = remap[arpa.ngrams[n]] if len(arpa.ngrams[n]) else arpa.ngrams[n].reshape(0, n + 1)
        known = (rows >= 0).all(axis=1)
        ngrams.append(rows[known])
        probs.append(arpa.log10_prob[n][known])
        backoffs.append(arpa.log10_backoff[n][known])
    missing = [word_id[w] for w in specials if w not in set(unigram_words)]
    if missing:  # the root must score every word it can be asked for: ~never, as ARPA gives <s>
        ngrams[0] = np.concatenate([ngrams[0], np.array(missing, dtype=np.int64).reshape(-1, 1)])
        probs[0] = np.concatenate([probs[0], np.full(len(missing), NO_PROB)])
        backoffs[0] = np.concatenate([backoffs[0], np.zeros(len(missing))])
    contexts = _Contexts(ngrams[:order - 1], len(words))
    backoff_ln = np.zeros(contexts.count, dtype=np.float64)
    backoff_state = np.zeros(contexts.count, dtype=np.int32)
    for n in range(order - 1):
        span = slice(contexts.offsets[n], contexts.offsets[n + 1])
        backoff_ln[span] = LN10 * backoffs[n]
        if n:  # a context backs off to the longest listed suffix of itself minus its first word
            backoff_state[span] = contexts.longest(ngrams[n][:, 1:])
    states_, symbols, targets, values = [], [], [], []
    for n in range(order):
        rows = ngrams[n]
        state = np.zeros(len(rows), dtype=np.int64) if n == 0 else contexts.find(rows[:, :-1])
        listed = state >= 0
        rows = rows[listed]
        target = contexts.longest(rows) if order > 1 else np.zeros(len(rows), dtype=np.int64)
        target[rows[:, -1] == EOS_ID] = 0  # nothing follows the end of the sentence
        states_.append(state[listed])
        symbols.append(rows[:, -1])
        targets.append(target.astype(np.int32))
        values.append(LN10 * probs[n][listed])
    table = TransitionTable.from_arrays(np.concatenate(states_), np.concatenate(symbols), np.concatenate(targets),
                                        np.concatenate(values), len(words))
    start = int(contexts.find(np.array([[BOS_ID]], dtype=np.int64))[0]) if order > 1 else 0
    return WordLMTables(order, words, table, backoff_ln, backoff_state, max(start, 0))


# ---------------------------------------------------------------- loading with caches

_MEMORY: dict[tuple[str, int, int], WordLMTables] = {}
_MEMORY_LOCK = threading.Lock()


def load_word_lm_tables(path: str, *, disk_cache: bool = True) -> WordLMTables:
    """The tables of the ARPA file at ``path``: from memory, from the cache next to it, or
    parsed (and then cached there, where the folder is writable)."""
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read the LM ({exc.strerror or exc})") from None
    key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
    with _MEMORY_LOCK:
        hit = _MEMORY.get(key)
    if hit is not None:
        return hit
    from ..fileio import file_sha256
    from .kenlm_binary import is_kenlm_binary

    if is_kenlm_binary(path):
        raise ConfigError(f"{path} is a KenLM binary, not ARPA: score it with decoding.kenlm_binary."
                          "KenLMBinaryScorer (what --lm does with it), or give the ARPA file")
    digest = file_sha256(path)
    cache = path + CACHE_SUFFIX
    tables = _read_cache(cache, digest) if disk_cache and os.path.exists(cache) else None
    if tables is None:
        tables = compile_arrays(read_arpa(path))
        if disk_cache:
            _write_cache(cache, tables, digest)
    with _MEMORY_LOCK:
        _MEMORY.clear()  # one LM at a time is what a decode run uses; keep memory flat
        _MEMORY[key] = tables
    return tables


def _write_cache(cache: str, tables: WordLMTables, digest: str) -> None:
    from ..fileio import atomic_write

    header = {"format": CACHE_FORMAT, "version": CACHE_VERSION, "source_sha256": digest, "order": tables.order,
              "start": tables.start}
    occupied = tables.table.keys != -1
    try:
        with atomic_write(cache) as handle:
            np.savez(handle, header=np.array(json.dumps(header)), words=np.array("\n".join(tables.words)),
                     keys=tables.table.keys[occupied], next_state=tables.table.next_state[occupied],
                     value=tables.table.value[occupied], backoff_ln=tables.backoff_ln,
                     backoff_state=tables.backoff_state)
    except OSError:
        pass  # a read-only folder: the in-memory cache still serves this run


def _distinct(keys: np.ndarray) -> bool:
    """No key twice (sorting: numpy's hash-based unique took 2.3 s of a 3.2 s load at 2M keys)."""
    ordered = np.sort(keys)
    return bool((ordered[1:] != ordered[:-1]).all())


def _read_cache(cache: str, digest: str) -> WordLMTables | None:
    """The cached tables, or None when the cache is stale, foreign or damaged (then the ARPA
    file is parsed again). Every index is checked, as for any file the search will walk."""
    try:
        with np.load(cache, allow_pickle=False) as data:
            arrays = {name: data[name] for name in ("header", "words", "keys", "next_state", "value",
                                                    "backoff_ln", "backoff_state")}
        header = json.loads(str(arrays["header"]))
    except Exception:  # noqa: BLE001 - any unreadable cache is simply rebuilt
        return None
    if not isinstance(header, dict) or header.get("format") != CACHE_FORMAT \
            or header.get("version") != CACHE_VERSION or header.get("source_sha256") != digest:
        return None
    words = tuple(str(arrays["words"]).split("\n"))
    keys, targets, values = arrays["keys"], arrays["next_state"], arrays["value"]
    backoff_ln, backoff_state = arrays["backoff_ln"], arrays["backoff_state"]
    num_states, num_words = len(backoff_ln), len(words)
    order, start = header.get("order"), header.get("start")
    try:
        ok = (isinstance(order, int) and 1 <= order and isinstance(start, int) and 0 <= start < max(num_states, 1)
              and words[:3] == (EOS, UNK, BOS) and keys.ndim == targets.ndim == values.ndim == 1
              and len(keys) == len(targets) == len(values) and keys.dtype.kind == targets.dtype.kind == "i"
              and len(backoff_state) == num_states >= 1 and np.isfinite(values).all()
              and np.isfinite(backoff_ln).all() and (keys.size == 0 or (0 <= keys.min() and
                                                                       keys.max() < num_states * num_words))
              and (targets.size == 0 or (0 <= targets.min() and targets.max() < num_states))
              and backoff_state[0] == 0 and (backoff_state[1:] < np.arange(1, num_states)).all()
              and backoff_state.min() >= 0 and _distinct(keys)
              and {EOS_ID, UNK_ID, BOS_ID} <= set(keys[keys < num_words].tolist()))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        return None
    keys = keys.astype(np.int64)
    table = TransitionTable.from_arrays(keys // num_words, keys % num_words, targets.astype(np.int32),
                                        values.astype(np.float64), num_words)
    return WordLMTables(order, words, table, backoff_ln.astype(np.float64), backoff_state.astype(np.int32), start)


# ---------------------------------------------------------------- bound to a codec


@dataclass
class BoundWordLM:
    """A word LM ready for one codec's search: ``alpha`` weighs ``ln p``, ``beta`` is added per
    word, ``unk_offset`` is the lookahead of a partial word that starts no vocabulary word."""

    tables: WordLMTables
    prefix: TransitionTable  # (trie node, label) -> (child, best unigram ln p below the child)
    node_word: np.ndarray  # int32 per trie node: the word id ending there, or NO_WORD
    alpha: float
    beta: float
    unk_offset: float
    spellable: int  # vocabulary words the codec can spell (the others can never be output)


def check_word_lm_options(labels: Sequence[str], *, alpha: float, beta: float, unk_offset: float) -> None:
    """What every word LM needs: finite weights and a space label to end words."""
    for name, value in (("alpha", alpha), ("beta", beta), ("unk_offset", unk_offset)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"--{name.replace('_', '-')} must be a finite number, got {value!r}")
    if " " not in labels:
        raise ConfigError("a word LM needs a model whose alphabet has the space character (words are "
                          "scored where a space ends them)")


def bind_word_lm(tables: WordLMTables, labels: Sequence[str], *, alpha: float, beta: float,
                 unk_offset: float) -> BoundWordLM:
    check_word_lm_options(labels, alpha=alpha, beta=beta, unk_offset=unk_offset)
    index = {c: i + 1 for i, c in enumerate(labels)}
    children: dict[tuple[int, int], int] = {}
    best: list[float] = [0.0]
    node_word: list[int] = [NO_WORD]
    spellable = 0
    for word_id, word in enumerate(tables.words[3:], start=3):
        ids = [index.get(c) for c in word]
        if not word or any(i is None for i in ids):
            continue
        spellable += 1
        logp = tables.step(0, word_id)[0]  # its unigram ln p at the root
        node = 0
        for label in ids:
            child = children.get((node, label))
            if child is None:
                child = len(best)
                children[(node, label)] = child
                best.append(-math.inf)
                node_word.append(NO_WORD)
            if logp > best[child]:
                best[child] = logp
            node = child
        node_word[node] = word_id
    if not spellable:
        raise ConfigError("the word LM holds no word the model's alphabet can spell")
    entries = {key: (child, best[child]) for key, child in children.items()}
    prefix = TransitionTable.build(entries, len(labels) + 1)
    return BoundWordLM(tables, prefix, np.array(node_word, dtype=np.int32), float(alpha), float(beta),
                       float(unk_offset), spellable)
