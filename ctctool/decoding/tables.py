"""Scorer automata as flat tables both beam-search backends read.

A table maps ``(state, symbol)`` to ``(next_state, value)``. It is stored as an open-addressing
hash (``keys`` int64, -1 = empty, linear probing, Fibonacci hashing) that the compiled search
probes without the GIL, and as a dict for the pure-Python twin; both give the same answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

HASH_MULTIPLIER = 0x9E3779B97F4A7C15  # 2**64 / golden ratio


@dataclass
class TransitionTable:
    num_symbols: int  # keys are state * num_symbols + symbol
    keys: np.ndarray  # int64 [capacity], -1 where empty
    next_state: np.ndarray  # int32 [capacity]
    value: np.ndarray  # float64 [capacity]
    bits: int  # capacity == 2**bits
    _mapping: dict[int, tuple[int, float]] | None = field(default=None, repr=False)  # for the twin, made on use

    @classmethod
    def build(cls, entries: dict[tuple[int, int], tuple[int, float]], num_symbols: int) -> TransitionTable:
        count = len(entries)
        states = np.fromiter((s for s, _ in entries), dtype=np.int64, count=count)
        symbols = np.fromiter((c for _, c in entries), dtype=np.int64, count=count)
        targets = np.fromiter((t for t, _ in entries.values()), dtype=np.int32, count=count)
        values = np.fromiter((v for _, v in entries.values()), dtype=np.float64, count=count)
        return cls.from_arrays(states, symbols, targets, values, num_symbols)

    @classmethod
    def from_arrays(cls, states: np.ndarray, symbols: np.ndarray, targets: np.ndarray, values: np.ndarray,
                    num_symbols: int) -> TransitionTable:
        """The table of entries given as arrays (distinct (state, symbol) pairs), built without a
        Python loop: with the keys in order of home slot, linear probing puts each at
        ``max(its home, the previous key's slot + 1)``, a running maximum; the few that run past
        the last slot wrap to the first free slots from 0, in order (so every slot a lookup
        passes on its way is occupied)."""
        keys_in = np.asarray(states, dtype=np.int64) * num_symbols + np.asarray(symbols, dtype=np.int64)
        bits = max(4, int(np.ceil(np.log2(max(1, len(keys_in)) * 2 + 1))))
        capacity = 1 << bits
        keys = np.full(capacity, -1, dtype=np.int64)
        next_state = np.zeros(capacity, dtype=np.int32)
        value = np.zeros(capacity, dtype=np.float64)
        with np.errstate(over="ignore"):
            homes = ((keys_in.astype(np.uint64) * np.uint64(HASH_MULTIPLIER)) >> np.uint64(64 - bits)).astype(np.int64)
        order = np.argsort(homes)
        ranks = np.arange(len(order), dtype=np.int64)
        slots = np.maximum.accumulate(homes[order] - ranks) + ranks if len(order) else ranks
        inside = slots < capacity
        keys[slots[inside]] = keys_in[order[inside]]
        wrapped = order[~inside]
        free = np.flatnonzero(keys == -1)[:len(wrapped)]
        keys[free] = keys_in[wrapped]
        placed_slots = np.concatenate([slots[inside], free])
        placed = np.concatenate([order[inside], wrapped])
        next_state[placed_slots] = np.asarray(targets, dtype=np.int32)[placed]
        value[placed_slots] = np.asarray(values, dtype=np.float64)[placed]
        return cls(num_symbols, keys, next_state, value, bits)

    @property
    def mapping(self) -> dict[int, tuple[int, float]]:
        if self._mapping is None:
            occupied = np.flatnonzero(self.keys != -1)
            self._mapping = {int(k): (int(n), float(v)) for k, n, v in
                             zip(self.keys[occupied], self.next_state[occupied], self.value[occupied])}
        return self._mapping

    def get(self, state: int, symbol: int) -> tuple[int, float] | None:
        return self.mapping.get(state * self.num_symbols + symbol)


def backoff_step(table: TransitionTable, weights, shorter, state: int, symbol: int) -> tuple[float, int]:
    """(log P(symbol | state), next state) of an n-gram table, backing off to shorter contexts:
    the compiled ``backoff_step``'s arithmetic, in the same order."""
    acc = 0.0
    while True:
        hit = table.get(state, symbol)
        if hit is not None:
            return acc + hit[1], hit[0]
        acc += float(weights[state])
        state = int(shorter[state])


def slot_of(key: int, bits: int) -> int:
    return ((key * HASH_MULTIPLIER) & 0xFFFFFFFFFFFFFFFF) >> (64 - bits)


def empty_table() -> TransitionTable:
    return TransitionTable.build({}, 1)
