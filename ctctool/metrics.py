"""Character and word error rates with the substitution / insertion / deletion breakdown."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import editdistance


@dataclass(frozen=True)
class EditOps:
    substitutions: tuple[tuple[str, str], ...]  # (reference token, hypothesis token)
    insertions: tuple[str, ...]  # hypothesis tokens with no reference counterpart
    deletions: tuple[str, ...]  # reference tokens the hypothesis lacks

    @property
    def errors(self) -> int:
        return len(self.substitutions) + len(self.insertions) + len(self.deletions)


def edit_ops(reference: Sequence, hypothesis: Sequence) -> EditOps:
    """One minimal edit script from reference to hypothesis (Levenshtein with backtrace).

    The shared prefix and suffix are stripped first, so well-recognised lines cost little.
    Ties prefer substitution, then deletion, then insertion.
    """
    subs, ins, dels = [], [], []
    for ref_token, hyp_token in alignment(reference, hypothesis):
        if ref_token is None:
            ins.append(hyp_token)
        elif hyp_token is None:
            dels.append(ref_token)
        elif ref_token != hyp_token:
            subs.append((ref_token, hyp_token))
    return EditOps(tuple(subs), tuple(ins), tuple(dels))


def alignment(reference: Sequence, hypothesis: Sequence) -> list[tuple]:
    """The minimal edit script as aligned pairs, in order: (r, h) matches or substitutions,
    (r, None) deletions, (None, h) insertions; the same script ``edit_ops`` counts."""
    start = 0
    while start < len(reference) and start < len(hypothesis) and reference[start] == hypothesis[start]:
        start += 1
    end_r, end_h = len(reference), len(hypothesis)
    while end_r > start and end_h > start and reference[end_r - 1] == hypothesis[end_h - 1]:
        end_r -= 1
        end_h -= 1
    ref, hyp = reference[start:end_r], hypothesis[start:end_h]
    n, m = len(ref), len(hyp)
    # cost[i][j]: edits to turn ref[:i] into hyp[:j]
    cost = [list(range(m + 1))] + [[i] + [0] * m for i in range(1, n + 1)]
    for i in range(1, n + 1):
        row, above = cost[i], cost[i - 1]
        r = ref[i - 1]
        for j in range(1, m + 1):
            row[j] = min(above[j - 1] + (r != hyp[j - 1]), above[j] + 1, row[j - 1] + 1)
    middle: list[tuple] = []
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and cost[i][j] == cost[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            middle.append((ref[i - 1], hyp[j - 1]))
            i, j = i - 1, j - 1
        elif i > 0 and cost[i][j] == cost[i - 1][j] + 1:
            middle.append((ref[i - 1], None))
            i -= 1
        else:
            middle.append((None, hyp[j - 1]))
            j -= 1
    return ([(t, t) for t in reference[:start]] + middle[::-1]
            + [(t, t) for t in reference[end_r:]])


@dataclass(frozen=True)
class LineResult:
    id: str
    path: str
    reference: str
    hypothesis: str
    char_errors: int
    ref_chars: int
    word_errors: int
    ref_words: int

    @property
    def cer(self) -> float:
        return self.char_errors / max(1, self.ref_chars)


def score_line(item_id: str, path: str, reference: str, hypothesis: str) -> LineResult:
    ref_words, hyp_words = reference.split(), hypothesis.split()
    return LineResult(
        id=item_id, path=path, reference=reference, hypothesis=hypothesis,
        char_errors=editdistance.eval(reference, hypothesis), ref_chars=len(reference),
        word_errors=editdistance.eval(ref_words, hyp_words), ref_words=len(ref_words),
    )


@dataclass
class ErrorSummary:
    lines: int = 0
    chars: int = 0  # reference characters
    words: int = 0  # reference words
    char_errors: int = 0
    word_errors: int = 0
    substitutions: int = 0
    insertions: int = 0
    deletions: int = 0
    case_insensitive_char_errors: int = 0
    confusions: Counter[tuple[str, str]] = field(default_factory=Counter)  # (ref, hyp); "" = nothing

    def add(self, line: LineResult) -> None:
        self.lines += 1
        self.chars += line.ref_chars
        self.words += line.ref_words
        self.char_errors += line.char_errors
        self.word_errors += line.word_errors
        self.case_insensitive_char_errors += editdistance.eval(line.reference.casefold(), line.hypothesis.casefold())
        if line.char_errors:
            ops = edit_ops(line.reference, line.hypothesis)
            self.substitutions += len(ops.substitutions)
            self.insertions += len(ops.insertions)
            self.deletions += len(ops.deletions)
            self.confusions.update(ops.substitutions)
            self.confusions.update(("", h) for h in ops.insertions)
            self.confusions.update((r, "") for r in ops.deletions)

    @property
    def cer(self) -> float | None:
        """Character error rate; None when no line was scored (no score, not a perfect one)."""
        return self.char_errors / max(1, self.chars) if self.lines else None

    @property
    def wer(self) -> float | None:
        return self.word_errors / max(1, self.words) if self.lines else None

    @property
    def case_insensitive_cer(self) -> float | None:
        return self.case_insensitive_char_errors / max(1, self.chars) if self.lines else None
