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
    """The state tables of an n-gram model (n-grams whose words or context the file does not
    list are left out: a well-formed ARPA file has none)."""
    unigrams = lm.ngrams[0]
    vocabulary = sorted(w for (w,) in unigrams if w not in (BOS, EOS, UNK))
    words = (EOS, UNK, BOS, *vocabulary)
    word_id = {w: i for i, w in enumerate(words)}
    # Contexts: every listed n-gram shorter than the order; shorter ones numbered first, so a
    # context always backs off to a lower number and the chain ends at the root, 0.
    contexts: list[tuple[str, ...]] = [()]
    if lm.order > 1:
        for n in range(1, lm.order):
            contexts.extend(sorted(words_ for words_ in lm.ngrams[n - 1] if all(w in word_id for w in words_)))
    state_of = {h: i for i, h in enumerate(contexts)}
    history = lm.order - 1

    def longest_state(words_: tuple[str, ...]) -> int:
        candidate = words_[max(0, len(words_) - history):] if history else ()
        while candidate not in state_of:
            candidate = candidate[1:]
        return state_of[candidate]

    backoff_ln = np.zeros(len(contexts), dtype=np.float64)
    backoff_state = np.zeros(len(contexts), dtype=np.int32)
    for i, h in enumerate(contexts[1:], start=1):
        own = lm.ngrams[len(h) - 1].get(h)
        backoff_ln[i] = LN10 * own[1] if own is not None else 0.0
        backoff_state[i] = longest_state(h[1:]) if len(h) > 1 else 0
    count = sum(len(t) for t in lm.ngrams) + 3  # room for </s>, <unk> and <s> at the root if missing
    states = np.empty(count, dtype=np.int64)
    symbols = np.empty(count, dtype=np.int64)
    targets = np.empty(count, dtype=np.int32)
    values = np.empty(count, dtype=np.float64)
    k = 0
    root_has = set()
    for n, table in enumerate(lm.ngrams, start=1):
        for words_, (logp, _) in table.items():
            if not all(w in word_id for w in words_):
                continue
            h, w = words_[:-1], words_[-1]
            state = state_of.get(h)
            if state is None:
                continue
            states[k], symbols[k], values[k] = state, word_id[w], LN10 * logp
            targets[k] = 0 if w == EOS else longest_state(words_)
            if n == 1:
                root_has.add(word_id[w])
            k += 1
    for missing in (EOS_ID, UNK_ID, BOS_ID):  # the root must score every word it can be asked for
        if missing not in root_has:
            states[k], symbols[k], values[k] = 0, missing, LN10 * NO_PROB
            targets[k] = 0 if missing == EOS_ID else longest_state((words[missing],))
            k += 1
    table = TransitionTable.from_arrays(states[:k], symbols[:k], targets[:k], values[:k], len(words))
    start = state_of.get((BOS,), 0) if history else 0
    return WordLMTables(lm.order, words, table, backoff_ln, backoff_state, start)


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

    digest = file_sha256(path)
    cache = path + CACHE_SUFFIX
    tables = _read_cache(cache, digest) if disk_cache and os.path.exists(cache) else None
    if tables is None:
        tables = compile_tables(WordNgramLM.load_arpa(path))
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


def bind_word_lm(tables: WordLMTables, labels: Sequence[str], *, alpha: float, beta: float,
                 unk_offset: float) -> BoundWordLM:
    for name, value in (("alpha", alpha), ("beta", beta), ("unk_offset", unk_offset)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"--{name.replace('_', '-')} must be a finite number, got {value!r}")
    if " " not in labels:
        raise ConfigError("a word LM needs a model whose alphabet has the space character (words are "
                          "scored where a space ends them)")
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
