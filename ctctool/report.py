"""``ctctool eval --report report.html``: one self-contained HTML file to look at.

No scripts, no network: styles inline, pictures as data URIs. Sections: the summary, CER by
reference length, CER by source (font, voice, speaker, document: the first of those fields
the items carry, else the input's folder), the most frequent confusions, and the worst lines,
each shown as its image (or log-mel spectrogram) with reference and hypothesis aligned
character by character, differences marked.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections import defaultdict

from .checkpoint import LoadedModel
from .evaluation import EvalReport
from .fileio import atomic_write
from .manifest import ManifestItem
from .metrics import ErrorSummary, LineResult, alignment

LENGTH_BUCKETS = ((1, 10), (11, 20), (21, 40), (41, 80), (81, 10**9))
SOURCE_FIELDS = ("font", "voice", "speaker", "engine", "document")
PICTURE_HEIGHT = 48  # px: line images are scaled to this height in the report

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f0f0f0}td.n{text-align:right;font-variant-numeric:tabular-nums}
.line{margin:1em 0 2em;border-top:1px solid #ddd;padding-top:0.6em}
.pair{font-family:ui-monospace,monospace;font-size:15px;white-space:pre;line-height:1.6}
.ok{color:#222}.sub{background:#ffd27a}.del{background:#ff9d9d}.ins{background:#9dd8ff}
img{display:block;max-width:100%;image-rendering:pixelated;margin:0.3em 0}
.legend span{padding:0 6px;margin-right:8px}
"""


def source_of(item: ManifestItem) -> str:
    for name in SOURCE_FIELDS:
        value = item.extra.get(name)
        if isinstance(value, (str, int)) and str(value):
            return os.path.basename(str(value)) if name == "document" else str(value)
    return os.path.dirname(item.path) or "."


def write_html_report(path: str, report: EvalReport, items_by_id: dict[str, ManifestItem], model: LoadedModel,
                      *, title: str, worst: int = 20, confusions: int = 20) -> None:
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
             f"<style>{STYLE}</style></head><body><h1>{_e(title)}</h1>"]
    parts.append(_summary(report))
    parts.append(_grouped("CER by reference length (characters)", _by_length(report.lines)))
    parts.append(_grouped("CER by source", _by_source(report.lines, items_by_id)))
    parts.append(_confusions(report.summary, confusions))
    parts.append(_worst(report, items_by_id, model, worst))
    parts.append("</body></html>\n")
    with atomic_write(path, "w", encoding="utf-8") as handle:
        handle.write("".join(parts))


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def _summary(report: EvalReport) -> str:
    s = report.summary
    rows = [("CER", _percent(s.cer)), ("WER", _percent(s.wer)), ("CER, case-insensitive", _percent(s.case_insensitive_cer)),
            ("lines scored", s.lines), ("lines failed", len(report.failures)), ("reference characters", s.chars),
            ("substitutions", s.substitutions), ("insertions", s.insertions), ("deletions", s.deletions)]
    body = "".join(f"<tr><th>{_e(k)}</th><td class='n'>{_e(v)}</td></tr>" for k, v in rows)
    return f"<h2>Summary</h2><table id='summary'>{body}</table>"


def _by_length(lines: list[LineResult]) -> dict[str, ErrorSummary]:
    groups: dict[str, ErrorSummary] = {}
    for low, high in LENGTH_BUCKETS:
        label = f"{low}-{high}" if high < 10**9 else f"{low}+"
        members = [line for line in lines if low <= line.ref_chars <= high]
        if members:
            groups[label] = _summarise(members)
    return groups


def _by_source(lines: list[LineResult], items_by_id: dict[str, ManifestItem]) -> dict[str, ErrorSummary]:
    members: dict[str, list[LineResult]] = defaultdict(list)
    for line in lines:
        members[source_of(items_by_id[line.id])].append(line)
    return {name: _summarise(group) for name, group in sorted(members.items())}


def _summarise(lines: list[LineResult]) -> ErrorSummary:
    summary = ErrorSummary()
    for line in lines:
        summary.add(line)
    return summary


def _grouped(heading: str, groups: dict[str, ErrorSummary]) -> str:
    rows = "".join(f"<tr><td>{_e(name)}</td><td class='n'>{g.lines}</td><td class='n'>{g.chars}</td>"
                   f"<td class='n'>{_percent(g.cer)}</td><td class='n'>{_percent(g.wer)}</td></tr>"
                   for name, g in groups.items())
    return (f"<h2>{_e(heading)}</h2><table><tr><th>group</th><th>lines</th><th>characters</th><th>CER</th>"
            f"<th>WER</th></tr>{rows}</table>")


def _confusions(summary: ErrorSummary, count: int) -> str:
    rows = "".join(f"<tr><td class='pair'>{_e(repr(r))}</td><td class='pair'>{_e(repr(h))}</td>"
                   f"<td class='n'>{n}</td></tr>" for (r, h), n in summary.confusions.most_common(count))
    return ("<h2>Most frequent confusions</h2><table><tr><th>reference</th><th>recognized</th><th>count</th></tr>"
            f"{rows}</table>")


def aligned_html(reference: str, hypothesis: str) -> tuple[str, str]:
    """Two rows of equal width: reference and hypothesis character by character, with
    substitutions, deletions (reference only) and insertions (hypothesis only) marked."""
    top, bottom = [], []
    for r, h in alignment(reference, hypothesis):
        kind = "ins" if r is None else "del" if h is None else "ok" if r == h else "sub"
        top.append(f"<span class='{kind}'>{_e(r if r is not None else ' ')}</span>")
        bottom.append(f"<span class='{kind}'>{_e(h if h is not None else ' ')}</span>")
    return "".join(top), "".join(bottom)


def _picture(model: LoadedModel, item: ManifestItem) -> str:
    """The line image (or the clip's log-mel spectrogram) as a PNG data URI; '' if unreadable."""
    import numpy as np
    from PIL import Image

    try:
        if model.modality == "image":
            from .features.image import open_line_image

            picture = open_line_image(item)
            width = max(1, round(picture.width * PICTURE_HEIGHT / max(1, picture.height)))
            picture = picture.resize((min(width, 4000), PICTURE_HEIGHT))
        else:
            values = model.extractor.load(item).values
            gray = np.clip((values[::-1] + 3.0) / 6.0 * 255.0, 0, 255).astype(np.uint8)
            picture = Image.fromarray(gray, mode="L").resize((min(values.shape[1] * 2, 4000), values.shape[0] * 2))
    except Exception:  # noqa: BLE001 - a picture is a courtesy; the line is listed anyway
        return ""
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _worst(report: EvalReport, items_by_id: dict[str, ManifestItem], model: LoadedModel, count: int) -> str:
    lines = [line for line in report.worst_lines(count) if line.char_errors]
    parts = [f"<h2>Worst lines ({len(lines)})</h2><p class='legend'><span class='sub'>substituted</span>"
             "<span class='del'>missing (in the reference only)</span><span class='ins'>inserted (recognized "
             "only)</span></p>"]
    for line in lines:
        item = items_by_id[line.id]
        picture = _picture(model, item)
        top, bottom = aligned_html(line.reference, line.hypothesis)
        parts.append(f"<div class='line' id='{_e(line.id)}'><b>{_e(line.id)}</b> &nbsp; CER {_percent(line.cer)}, "
                     f"{line.char_errors} of {line.ref_chars} characters &nbsp; <small>{_e(item.path)}</small>"
                     + (f"<img alt='{_e(line.id)}' src='{picture}'>" if picture else "<p>(no picture)</p>")
                     + f"<div class='pair'>ref <span data-row='reference'>{top}</span>\n"
                     f"hyp <span data-row='hypothesis'>{bottom}</span></div></div>")
    return "".join(parts)
