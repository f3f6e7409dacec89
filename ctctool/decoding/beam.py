"""Public entry points of the CTC prefix beam search and the choice of backend.

``BACKEND`` is "cython" when the compiled extension loaded, "python" when the readable twin
runs instead (no compiler at install time, or ``CTCTOOL_PUREPYTHON=1``). With
``CTCTOOL_REQUIRE_EXT=1`` a missing extension is an import error, so CI cannot pass on a
build that silently fell back.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..errors import ConfigError
from . import beam_py
from .constants import (
    DEFAULT_BEAM_PRUNE,
    DEFAULT_BEAM_WIDTH,
    DEFAULT_NBEST,
    DEFAULT_PRUNE_LOG_PROB,
    DEFAULT_TOP_K,
    MAX_BEAM_WIDTH,
)
from .greedy import greedy_decode
from .hypothesis import Hypothesis
from .scorers import CompiledScorers, Scorer
from .validate import check_log_probs

_compiled = None
if os.environ.get("CTCTOOL_PUREPYTHON") != "1":
    try:
        from . import _beam as _compiled  # type: ignore[no-redef]
    except ImportError:
        if os.environ.get("CTCTOOL_REQUIRE_EXT") == "1":
            raise ImportError("CTCTOOL_REQUIRE_EXT=1 but the compiled beam search (ctctool.decoding._beam) "
                              "is not built; reinstall with a C compiler and Cython") from None
        _compiled = None
BACKEND = "cython" if _compiled is not None else "python"


def compiled_module():
    """The compiled extension module, or None where the twin runs."""
    return _compiled


def _search_one(log_probs: np.ndarray, beam_width: int, nbest: int, prune_log_prob: float, top_k: int,
                scorers: CompiledScorers | Scorer | None, backend: str, beam_prune: float) -> list[Hypothesis]:
    if beam_width == 1 and scorers is None:
        return [greedy_decode(log_probs)]  # a beam of one is the best path
    if log_probs.shape[0] == 0:
        return [Hypothesis((), 0.0, (), (), 0.0)]
    if hasattr(scorers, "compiled") and callable(scorers.compiled):
        scorers = scorers.compiled()  # a word LM scorer: the built-in tables, both backends
    custom = isinstance(scorers, Scorer)
    if backend == "cython" and not custom:
        prepared = scorers.prepared(_compiled.PreparedScorers) if scorers is not None and scorers.active else None
        rows = _compiled.search(log_probs, beam_width, nbest, prune_log_prob, top_k, prepared, beam_prune)
        return [Hypothesis(labels, acoustic, spans, confidences, lm) for labels, acoustic, lm, spans, confidences
                in rows]
    if scorers is None or (not custom and not scorers.active):
        scoring = None
    elif custom:
        scoring = beam_py._CustomScoring(scorers)
    else:
        scoring = beam_py._BuiltinScoring(scorers)
    results = []
    for labels, acoustic, lm in beam_py.search(log_probs, beam_width, nbest, prune_log_prob, top_k, scoring,
                                               beam_prune):
        spans, confidences = beam_py.viterbi_spans(log_probs, labels)
        results.append(Hypothesis(labels, acoustic, spans, confidences, lm))
    return results


def _check_options(beam_width: int, nbest: int, top_k: int, prune_log_prob: float, beam_prune: float) -> None:
    if not 1 <= beam_width <= MAX_BEAM_WIDTH:
        raise ConfigError(f"beam width must be 1 to {MAX_BEAM_WIDTH}, got {beam_width}")
    if not 1 <= nbest <= MAX_BEAM_WIDTH:
        raise ConfigError(f"nbest must be 1 to {MAX_BEAM_WIDTH}, got {nbest}")
    if top_k < 0:
        raise ConfigError(f"top_k must be >= 0 (0 = no cap), got {top_k}")
    if np.isnan(prune_log_prob):
        raise ConfigError("prune_log_prob must not be NaN")
    if not beam_prune >= 0:  # NaN fails this too
        raise ConfigError(f"beam_prune must be 0 or more (natural log; inf = off), got {beam_prune}")


def prefix_beam_search(log_probs: np.ndarray, beam_width: int = DEFAULT_BEAM_WIDTH, nbest: int = DEFAULT_NBEST, *,
                       prune_log_prob: float = DEFAULT_PRUNE_LOG_PROB, top_k: int = DEFAULT_TOP_K,
                       scorers: CompiledScorers | Scorer | None = None, num_classes: int | None = None,
                       backend: str | None = None, beam_prune: float = DEFAULT_BEAM_PRUNE) -> list[Hypothesis]:
    """Up to ``nbest`` hypotheses for ``log_probs`` (float32 [T, V], natural log, blank id 0), best first.

    ``Hypothesis.score`` is log P(labels | input) summed over the alignments the beam kept;
    ``lm_score`` is what the scorers added (ranking uses the sum). ``spans`` are each label's
    first and last frame in its most likely placement. ``prune_log_prob=-inf`` and
    ``top_k=0`` turn per-frame pruning off, and ``beam_prune=inf`` keeps prefixes however far
    below the frame's best; with a beam at least as wide as the number of distinct prefixes the
    search is then exact. ``beam_width=1`` without scorers is greedy.
    """
    _check_options(beam_width, nbest, top_k, prune_log_prob, beam_prune)
    log_probs = check_log_probs(log_probs, num_classes)
    if isinstance(scorers, CompiledScorers) and scorers.num_labels != log_probs.shape[1]:
        raise ConfigError(f"scorers were built for {scorers.num_labels} classes but log_probs has {log_probs.shape[1]}")
    return _search_one(log_probs, beam_width, nbest, float(prune_log_prob), top_k, scorers, backend or BACKEND,
                       float(beam_prune))


def prefix_beam_search_batch(batch: Sequence[np.ndarray], beam_width: int = DEFAULT_BEAM_WIDTH,
                             nbest: int = DEFAULT_NBEST, *, num_threads: int = 1,
                             prune_log_prob: float = DEFAULT_PRUNE_LOG_PROB, top_k: int = DEFAULT_TOP_K,
                             scorers: CompiledScorers | Scorer | None = None, num_classes: int | None = None,
                             backend: str | None = None,
                             beam_prune: float = DEFAULT_BEAM_PRUNE) -> list[list[Hypothesis]]:
    """``prefix_beam_search`` over many utterances; the compiled search releases the GIL, so
    ``num_threads`` threads decode in parallel. Results are in input order."""
    _check_options(beam_width, nbest, top_k, prune_log_prob, beam_prune)
    chosen = backend or BACKEND
    batch = list(batch)

    def run(indices: range) -> list[list[Hypothesis]]:
        # validation runs in the worker too: only result conversion holds the GIL for long
        return [_search_one(check_log_probs(batch[i], num_classes), beam_width, nbest, float(prune_log_prob),
                            top_k, scorers, chosen, float(beam_prune)) for i in indices]

    threads = max(1, min(num_threads, len(batch)))
    if threads == 1:
        return run(range(len(batch)))
    # one task per thread over a strided share, so long and short utterances mix evenly
    with ThreadPoolExecutor(max_workers=threads) as pool:
        shares = list(pool.map(run, [range(k, len(batch), threads) for k in range(threads)]))
    results: list[list[Hypothesis]] = [[] for _ in batch]
    for k, share in enumerate(shares):
        for position, hypotheses in zip(range(k, len(batch), threads), share):
            results[position] = hypotheses
    return results
