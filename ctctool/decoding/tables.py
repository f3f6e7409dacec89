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
    mapping: dict[int, tuple[int, float]] = field(default_factory=dict)  # key -> (next, value), for the twin

    @classmethod
    def build(cls, entries: dict[tuple[int, int], tuple[int, float]], num_symbols: int) -> TransitionTable:
        bits = max(4, int(np.ceil(np.log2(max(1, len(entries)) * 2 + 1))))
        capacity = 1 << bits
        keys = np.full(capacity, -1, dtype=np.int64)
        next_state = np.zeros(capacity, dtype=np.int32)
        value = np.zeros(capacity, dtype=np.float64)
        mask = capacity - 1
        mapping = {}
        for (state, symbol), (target, score) in entries.items():
            key = state * num_symbols + symbol
            slot = slot_of(key, bits)
            while keys[slot] != -1:
                slot = (slot + 1) & mask
            keys[slot], next_state[slot], value[slot] = key, target, score
            mapping[key] = (target, float(score))
        return cls(num_symbols, keys, next_state, value, bits, mapping)

    def get(self, state: int, symbol: int) -> tuple[int, float] | None:
        return self.mapping.get(state * self.num_symbols + symbol)


def slot_of(key: int, bits: int) -> int:
    return ((key * HASH_MULTIPLIER) & 0xFFFFFFFFFFFFFFFF) >> (64 - bits)


def empty_table() -> TransitionTable:
    return TransitionTable.build({}, 1)
