"""Scoring a model on a manifest with transcripts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .checkpoint import LoadedModel
from .codec import normalize
from .errors import CtcToolError
from .manifest import ManifestItem
from .metrics import ErrorSummary, LineResult, score_line
from .recognition import DecodeOptions, decode_items


@dataclass
class EvalReport:
    summary: ErrorSummary = field(default_factory=ErrorSummary)
    lines: list[LineResult] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (id, error message)

    def worst_lines(self, count: int) -> list[LineResult]:
        return sorted(self.lines, key=lambda line: (-line.cer, -line.char_errors, line.id))[:count]

    def as_dict(self, *, confusions: int = 10, worst: int = 10) -> dict:
        s = self.summary
        return {
            "cer": s.cer, "wer": s.wer, "case_insensitive_cer": s.case_insensitive_cer,
            "lines": s.lines, "chars": s.chars, "words": s.words,
            "char_errors": s.char_errors, "word_errors": s.word_errors,
            "substitutions": s.substitutions, "insertions": s.insertions, "deletions": s.deletions,
            "failed": len(self.failures),
            "confusions": [{"reference": r, "recognized": h, "count": n} for (r, h), n in s.confusions.most_common(confusions)],
            "worst": [{"id": line.id, "cer": line.cer, "reference": line.reference, "recognized": line.hypothesis}
                      for line in self.worst_lines(worst) if line.char_errors],
        }


def evaluate_items(model: LoadedModel, items: Iterable[ManifestItem], *, batch_size: int = 16, device="cpu",
                   options: DecodeOptions = DecodeOptions(), keep_going: bool = False) -> EvalReport:
    """Decode every item and compare with its (normalized) transcript.

    Unreadable inputs raise at once unless ``keep_going``; then they are listed in ``failures``
    and left out of the rates.
    """
    report = EvalReport()
    items = list(items)
    by_id = {item.id: item for item in items}
    for result in decode_items(model, items, batch_size=batch_size, device=device, options=options):
        if result.error:
            if not keep_going:
                raise CtcToolError(result.error)
            report.failures.append((result.id, result.error))
            continue
        reference = normalize(by_id[result.id].text or "", model.codec.normalization)
        line = score_line(result.id, result.path, reference, result.text)
        report.summary.add(line)
        report.lines.append(line)
    return report
