"""The readable CTC prefix beam search: the reference the compiled ``_beam.pyx`` must match.

Hannun et al. 2014; Graves 2012 ch. 7. Each prefix keeps two log-probabilities over the
alignments the beam kept: ending in blank (``pb``) and ending in its last label (``pnb``).
Per frame, every prefix in the beam yields a "stay" candidate (itself) and one extension
per symbol that survives pruning; extensions that reach a prefix already in the beam merge
into it. The best ``beam_width`` candidates, ordered by (score desc, candidate index asc),
form the next beam. Prefixes are nodes of a trie with one node per distinct prefix, so
merging is a lookup. The operations and their order here are exactly those of the compiled
code, so both return the same labels and bit-identical scores.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .scorers import CompiledScorers, Scorer
from .word_tables import DEAD, EOS_ID, NO_WORD, UNK_ID

NEG_INF = float("-inf")


def log_add(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    if a > b:
        return a + math.log1p(math.exp(b - a))
    return b + math.log1p(math.exp(a - b))


class _Trie:
    """Prefix nodes: parent, label and scorer state per node; children by (parent, label)."""

    def __init__(self, start_state: Any):
        self.parent = [-1]
        self.label = [0]
        self.extra = [0.0]  # scorer score accumulated along the prefix
        self.state = [start_state]
        self.children: dict[tuple[int, int], int] = {}

    def find(self, node: int, label: int) -> int:
        return self.children.get((node, label), -1)

    def add(self, node: int, label: int, extra: float, state: Any) -> int:
        self.parent.append(node)
        self.label.append(label)
        self.extra.append(extra)
        self.state.append(state)
        child = len(self.parent) - 1
        self.children[(node, label)] = child
        return child

    def labels(self, node: int) -> tuple[int, ...]:
        out = []
        while node > 0:
            out.append(self.label[node])
            node = self.parent[node]
        return tuple(reversed(out))


class _BuiltinScoring:
    """The built-in scorers' arithmetic over their tables (mirrors the compiled code)."""

    def __init__(self, bundle: CompiledScorers):
        self.b = bundle

    def start_state(self):
        lm_start = self.b.lm.start if self.b.lm else 0
        word_start = self.b.word_lm.tables.start if self.b.word_lm else 0
        # lm state, lexicon node, hotword node, hotword bonus so far, word-LM context state,
        # vocabulary-trie node of the partial word, its lookahead
        return (lm_start, 0, 0, 0.0, word_start, 0, 0.0)

    def extend(self, state, label: int):
        """(delta, new state), or None when the extension is forbidden."""
        b = self.b
        lm_state, lex_node, hot_node, hot_acc, word_state, word_node, ahead = state
        delta = 0.0
        if b.lm is not None:
            logp, lm_state = b.lm.step(lm_state, int(b.lm_symbol_of_label[label]))
            delta = delta + b.alpha * logp
        delta = delta + b.beta
        if b.lexicon is not None:
            if label == b.space_label:
                if not (lex_node == 0 or b.lexicon_end[lex_node]):
                    return None
                lex_node = 0
            else:
                hit = b.lexicon.get(lex_node, label)
                if hit is None:
                    return None
                lex_node = hit[0]
        if b.hotwords is not None:
            phrase = b.hotwords.get(hot_node, label) if label == b.space_label and hot_node >= 0 else None
            if phrase is not None:
                # A phrase hotword goes on across the space; a hotword completed here is kept
                # (its bonus is no longer withdrawn) even if the longer phrase is not.
                if b.hotword_end[hot_node]:
                    hot_acc = 0.0
                hot_node = phrase[0]
                delta = delta + phrase[1]
                hot_acc = hot_acc + phrase[1]
            elif label == b.space_label:
                if not (hot_node >= 0 and b.hotword_end[hot_node]):
                    delta = delta - hot_acc
                hot_node, hot_acc = 0, 0.0
            elif hot_node >= 0:
                hit = b.hotwords.get(hot_node, label)
                if hit is not None:
                    hot_node = hit[0]
                    delta = delta + hit[1]
                    hot_acc = hot_acc + hit[1]
                else:
                    delta = delta - hot_acc
                    hot_node, hot_acc = -1, 0.0
        if b.word_lm is not None:
            w = b.word_lm
            if label == b.space_label:
                if word_node != 0:  # a word ends here (repeated spaces end none)
                    word_state, score = _end_word(w, word_state, word_node, ahead)
                    delta = delta + score
                    word_node, ahead = 0, 0.0
            else:
                hit = w.prefix.get(word_node, label) if word_node >= 0 else None
                if hit is not None:
                    word_node, now = hit[0], w.alpha * hit[1]
                else:
                    word_node, now = DEAD, w.unk_offset
                delta = delta + (now - ahead)
                ahead = now
        return delta, (lm_state, lex_node, hot_node, hot_acc, word_state, word_node, ahead)

    def final(self, state) -> float:
        b = self.b
        lm_state, lex_node, hot_node, hot_acc, word_state, word_node, ahead = state
        fin = 0.0
        if b.lm is not None:
            fin = fin + b.alpha * b.lm.step(lm_state, 0)[0]
        if b.lexicon is not None and not (lex_node == 0 or b.lexicon_end[lex_node]):
            return NEG_INF
        if b.hotwords is not None and not (hot_node >= 0 and b.hotword_end[hot_node]):
            fin = fin - hot_acc
        if b.word_lm is not None:
            w = b.word_lm
            if word_node != 0:
                word_state, score = _end_word(w, word_state, word_node, ahead)
                fin = fin + score
            fin = fin + w.alpha * w.tables.step(word_state, EOS_ID)[0]
        return fin


def _end_word(w, context: int, node: int, ahead: float) -> tuple[int, float]:
    """(next context, score) of the word spelled up to vocabulary-trie ``node``: the compiled
    ``word_end``'s arithmetic. A word outside the vocabulary is <unk> and keeps the unk offset."""
    word = int(w.node_word[node]) if node > 0 else NO_WORD
    if word >= 0:
        logp, context = w.tables.step(context, word)
        return context, w.alpha * logp + w.beta - ahead
    logp, context = w.tables.step(context, UNK_ID)
    return context, w.alpha * logp + w.beta + w.unk_offset - ahead


class _CustomScoring:
    def __init__(self, scorer: Scorer):
        self.scorer = scorer

    def start_state(self):
        return self.scorer.start_state()

    def extend(self, state, label: int):
        delta, new_state = self.scorer.score_partial_token(state, label)
        if delta == NEG_INF:
            return None
        return float(delta), new_state

    def final(self, state) -> float:
        return float(self.scorer.score_final(state))


def kept_symbols(frame: np.ndarray, prune_threshold: float, top_k: int) -> list[int]:
    """Labels (not blank) that may extend prefixes at this frame, in ascending order."""
    num = frame.shape[0]
    kept = [c for c in range(1, num) if float(frame[c]) >= prune_threshold]
    if 0 < top_k < len(kept):
        kept = sorted(kept, key=lambda c: (-float(frame[c]), c))[:top_k]
        kept.sort()
    return kept


def search(log_probs: np.ndarray, beam_width: int, nbest: int, prune_threshold: float, top_k: int,
           scoring=None, beam_prune: float = math.inf) -> list[tuple[tuple[int, ...], float, float]]:
    """[(labels, acoustic log score, scorer score)] best first; ``scoring`` is None or a scoring
    object; ``beam_prune``: prefixes more than this below the frame's best are dropped."""
    frames = log_probs.shape[0]
    trie = _Trie(scoring.start_state() if scoring else None)
    # The beam: parallel lists of node, pb, pnb, best first.
    beam_node, beam_pb, beam_pnb = [0], [0.0], [NEG_INF]
    for t in range(frames):
        frame = log_probs[t]
        y_blank = float(frame[0])
        kept = kept_symbols(frame, prune_threshold, top_k)
        slot_of = {node: i for i, node in enumerate(beam_node)}
        # Candidates: the beam's own prefixes first (index i), then new extensions.
        c_node, c_parent, c_label, c_pb, c_pnb, c_extra, c_state = [], [], [], [], [], [], []
        for i, node in enumerate(beam_node):
            pb, pnb = beam_pb[i], beam_pnb[i]
            last = trie.label[node] if node > 0 else 0
            c_node.append(node)
            c_parent.append(-1)
            c_label.append(0)
            c_pb.append(log_add(pb, pnb) + y_blank)
            c_pnb.append(pnb + float(frame[last]) if node > 0 else NEG_INF)
            c_extra.append(trie.extra[node])
            c_state.append(None)
        for i, node in enumerate(beam_node):
            pb, pnb = beam_pb[i], beam_pnb[i]
            last = trie.label[node] if node > 0 else 0
            total = log_add(pb, pnb)
            for c in kept:
                ext = (pb if c == last else total) + float(frame[c])
                if ext == NEG_INF:
                    continue
                child = trie.find(node, c)
                if child >= 0 and child in slot_of:
                    j = slot_of[child]
                    c_pnb[j] = log_add(c_pnb[j], ext)
                    continue
                if child >= 0:
                    extra, state = trie.extra[child], None
                elif scoring is not None:
                    step = scoring.extend(trie.state[node], c)
                    if step is None:
                        continue
                    extra, state = trie.extra[node] + step[0], step[1]
                else:
                    extra, state = trie.extra[node], None
                c_node.append(child)
                c_parent.append(node)
                c_label.append(c)
                c_pb.append(NEG_INF)
                c_pnb.append(ext)
                c_extra.append(extra)
                c_state.append(state)
        totals = [log_add(c_pb[k], c_pnb[k]) + c_extra[k] for k in range(len(c_node))]
        if beam_prune < math.inf:
            cut = max(totals) - beam_prune
            totals = [value if value >= cut else NEG_INF for value in totals]
        order = sorted((k for k in range(len(c_node)) if totals[k] != NEG_INF), key=lambda k: (-totals[k], k))
        order = order[:beam_width]
        beam_node, beam_pb, beam_pnb = [], [], []
        for k in order:
            node = c_node[k]
            if node < 0:
                node = trie.add(c_parent[k], c_label[k], c_extra[k], c_state[k])
            beam_node.append(node)
            beam_pb.append(c_pb[k])
            beam_pnb.append(c_pnb[k])
        if not beam_node:
            break
    finals = []
    for i, node in enumerate(beam_node):
        acoustic = log_add(beam_pb[i], beam_pnb[i])
        fin = scoring.final(trie.state[node]) if scoring is not None else 0.0
        lm = trie.extra[node] + fin
        total = acoustic + lm
        if total != NEG_INF:
            finals.append((total, i, node, acoustic, lm))
    finals.sort(key=lambda f: (-f[0], f[1]))
    return [(trie.labels(node), acoustic, lm) for _, _, node, acoustic, lm in finals[:nbest]]


VITERBI_BEAM = 40.0  # nats: trellis states this far below the frame's best are dropped


def viterbi_spans(log_probs: np.ndarray, labels: tuple[int, ...]):
    """Spans and confidences of the best placement (see ``banded_viterbi``)."""
    found = banded_viterbi(log_probs, labels, VITERBI_BEAM)
    if found is None:
        found = banded_viterbi(log_probs, labels, math.inf)
    if found is None:  # probability 0: never a labelling the search returns (its score is finite)
        return tuple((-1, -1) for _ in labels), tuple(0.0 for _ in labels)
    return found[0], found[1]


def banded_viterbi(log_probs: np.ndarray, labels: tuple[int, ...], band: float):
    """Most likely placement of ``labels``: per label its (first, last) frame and the geometric
    mean of its frame probabilities. Ties prefer stay, then step, then skip; at the end the
    last label's state over the final blank. Only states within ``band`` nats of each frame's
    best, and still able to reach the end in time, stay active. Returns (spans, confidences,
    path log score), or None if the band lost every path to the end (with ``band=inf``: the
    labels have probability 0)."""
    frames, n = log_probs.shape[0], len(labels)
    if n == 0:
        return (), (), NEG_INF
    states = 2 * n + 1
    ext = [0] * states
    for k, label in enumerate(labels):
        ext[2 * k + 1] = label
    score = [NEG_INF] * states
    score[0] = float(log_probs[0, 0])
    score[1] = float(log_probs[0, ext[1]])
    lo, hi = 0, 1
    back = [[0] * states for _ in range(frames)]
    for t in range(1, frames):
        new = [NEG_INF] * states
        row = back[t]
        new_lo, new_hi = lo, min(hi + 2, states - 1)
        top = NEG_INF
        for s in range(new_lo, new_hi + 1):
            best, choice = (score[s] if s <= hi else NEG_INF), 0
            if lo <= s - 1 <= hi and score[s - 1] > best:
                best, choice = score[s - 1], 1
            if s >= 3 and s % 2 == 1 and ext[s] != ext[s - 2] and lo <= s - 2 <= hi and score[s - 2] > best:
                best, choice = score[s - 2], 2
            new[s] = best + float(log_probs[t, ext[s]])
            row[s] = choice
            if new[s] > top:
                top = new[s]
        floor_state = states - 2 - 2 * (frames - 1 - t)
        while new_lo < new_hi and (new_lo < floor_state or new[new_lo] < top - band):
            new_lo += 1
        while new_hi > new_lo and new[new_hi] < top - band:
            new_hi -= 1
        lo, hi = new_lo, new_hi
        score = new
    if hi < states - 2:
        return None
    if hi == states - 1 and (lo > states - 2 or score[states - 1] >= score[states - 2]):
        state = states - 1
    else:
        state = states - 2
    path_score = score[state]
    if path_score == NEG_INF:  # the states left in the band cannot spell the labels
        return None
    first = [0] * n
    last = [0] * n
    sums = [0.0] * n
    counts = [0] * n
    for t in range(frames - 1, -1, -1):
        if state % 2 == 1:
            k = state // 2
            if counts[k] == 0:
                last[k] = t
            first[k] = t
            sums[k] += float(log_probs[t, ext[state]])
            counts[k] += 1
        state -= back[t][state]
    spans = tuple((first[k], last[k]) for k in range(n))
    confidences = tuple(math.exp(sums[k] / counts[k]) for k in range(n))
    return spans, confidences, path_score
