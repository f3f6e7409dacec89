"""Model-like CTC log-probabilities for benchmarks: a random transcript, an alignment with
blanks and repeats, most mass on the aligned symbol, some on 2-3 confusable others, the rest
spread thinly; "hard" is the flatter variant. Fixed seeds, so every run sees the same inputs."""

from __future__ import annotations

import numpy as np


def make_utterance(rng: np.random.Generator, frames: int, classes: int, hard: bool) -> tuple[np.ndarray, list[int]]:
    # alignment: labels held 1-3 frames, 0-3 blanks between, some immediate repeats of a label
    path: list[int] = []
    labels: list[int] = []
    while len(path) < frames:
        path += [0] * int(rng.integers(0, 4))
        label = labels[-1] if labels and rng.random() < 0.08 else int(rng.integers(1, classes))
        if labels and label == labels[-1] and (not path or path[-1] != 0):
            path.append(0)  # a repeat needs a blank between
        labels.append(label)
        path += [label] * int(rng.integers(1, 4))
    path = path[:frames]
    probs = np.empty((frames, classes), dtype=np.float64)
    for t, target in enumerate(path):
        background = np.exp(rng.normal(0.0, 1.0, classes))
        peak = rng.uniform(0.5, 0.8) if hard else rng.uniform(0.85, 0.99)
        confusers = rng.choice(classes, size=int(rng.integers(2, 4)), replace=False)
        confusion_mass = (1 - peak) * (0.7 if hard else 0.8)
        row = background / background.sum() * (1 - peak - confusion_mass)
        share = rng.dirichlet(np.ones(len(confusers)))
        row[confusers] += confusion_mass * share
        row[target] += peak
        probs[t] = row / row.sum()
    collapsed = []
    previous = 0
    for label in path:
        if label and label != previous:
            collapsed.append(label)
        previous = label
    return np.log(probs).astype(np.float32), collapsed


def make_set(seed: int, count: int, frames: int, classes: int, hard: bool) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [make_utterance(rng, frames, classes, hard)[0] for _ in range(count)]
