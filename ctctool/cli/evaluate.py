from __future__ import annotations

import json
from typing import Annotated

import typer

from .common import (
    EXIT_ERROR,
    EXIT_PARTIAL,
    Backend,
    DecodeFlags,
    Limits,
    ModelArgument,
    Runtime,
    decode_options,
    echo_err,
    load_for_inference,
    read_inputs,
    shared_options,
)


@shared_options("decode", "limits", "runtime", "backend")
def eval_command(
    model: ModelArgument,
    manifest: Annotated[str, typer.Argument(help="Manifest with transcripts (or - for one on stdin).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary object instead of tables.")] = False,
    per_line: Annotated[str | None, typer.Option("--per-line", help="Write line-level results (JSONL) here.")] = None,
    worst: Annotated[int, typer.Option("--worst", min=0, help="Worst lines to list.")] = 10,
    confusions: Annotated[int, typer.Option("--confusions", min=0, help="Most frequent confusions to list.")] = 10,
    keep_going: Annotated[bool, typer.Option("--keep-going", help="Count unreadable inputs and go on "
                                             "(exit 3) instead of stopping.")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Inputs per network batch.")] = 16,
    report_path: Annotated[str | None, typer.Option("--report", help="Also write a self-contained HTML report "
                                                    "here: tables by length and source, confusions, the worst "
                                                    "lines with their images and aligned text.")] = None,
    *,
    decode: DecodeFlags,
    limits: Limits,
    runtime: Runtime,
    backend: Backend,
) -> None:
    """Score a model on a manifest: CER, WER, error breakdown, confusions, worst lines.

    No scored line means no score: an empty manifest exits 1, and when every input fails the
    rates are null and the exit code is 3."""
    from ..errors import ManifestError
    from ..evaluation import evaluate_items
    from ..fileio import atomic_write, check_writable

    items = read_inputs([manifest])
    missing = next((item for item in items if item.text is None), None)
    if missing is not None:
        raise ManifestError(missing.source, None, "text", "missing (eval needs a transcript on every line)")
    if not items:
        echo_err(f"error: {manifest}: no items to evaluate")
        raise typer.Exit(EXIT_ERROR)
    if per_line:
        check_writable(per_line, "--per-line file")
    if report_path:
        check_writable(report_path, "--report file")
    loaded, torch_device = load_for_inference(model, runtime, limits, backend)
    options = decode_options(loaded, decode)
    report = evaluate_items(loaded, items, batch_size=batch_size, device=torch_device, options=options,
                            keep_going=keep_going)
    if per_line:
        with atomic_write(per_line, "w", encoding="utf-8") as handle:
            for line in report.lines:
                handle.write(json.dumps({"id": line.id, "path": line.path, "reference": line.reference,
                                         "hypothesis": line.hypothesis, "char_errors": line.char_errors,
                                         "chars": line.ref_chars, "word_errors": line.word_errors,
                                         "words": line.ref_words, "cer": round(line.cer, 6)},
                                        ensure_ascii=False) + "\n")
            for failure in report.failures:
                handle.write(json.dumps({"id": failure[0], "error": failure[1]}, ensure_ascii=False) + "\n")
    if report_path:
        from ..report import write_html_report

        write_html_report(report_path, report, {item.id: item for item in items}, loaded,
                          title=f"ctctool eval {model} {manifest}", worst=max(worst, 20),
                          confusions=max(confusions, 20))
        echo_err(f"wrote {report_path}")
    if as_json:
        typer.echo(json.dumps(report.as_dict(confusions=confusions, worst=worst), ensure_ascii=False))
    elif report.summary.lines:
        print_tables(report, confusions=confusions, worst=worst, modality=loaded.modality)
    for _, error in report.failures:
        echo_err(f"error: {error}")
    if report.failures:
        if not report.summary.lines:
            echo_err(f"every one of the {len(items)} inputs failed: no score")
        raise typer.Exit(EXIT_PARTIAL)


def print_tables(report, *, confusions: int, worst: int, modality: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    s = report.summary
    table = Table(title="ctctool eval", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    headline = [("WER", f"{100 * s.wer:.2f}%"), ("CER", f"{100 * s.cer:.2f}%")]
    if modality == "image":
        headline.reverse()
    for name, value in headline:
        table.add_row(name, value)
    table.add_row("CER, case-insensitive", f"{100 * s.case_insensitive_cer:.2f}%")
    table.add_row("character accuracy", f"{100 * (1 - s.cer):.2f}%")
    table.add_row("lines", str(s.lines))
    table.add_row("characters", str(s.chars))
    table.add_row("words", str(s.words))
    table.add_row("substitutions", str(s.substitutions))
    table.add_row("insertions", str(s.insertions))
    table.add_row("deletions", str(s.deletions))
    if report.failures:
        table.add_row("failed inputs", str(len(report.failures)))
    console.print(table)
    if confusions and s.confusions:
        conf = Table(title="most frequent confusions")
        for column in ("reference", "recognized", "count"):
            conf.add_column(column, justify="right" if column == "count" else "left")
        for (ref, hyp), count in s.confusions.most_common(confusions):
            conf.add_row(repr(ref) if ref else "(nothing)", repr(hyp) if hyp else "(nothing)", str(count))
        console.print(conf)
    bad = [line for line in report.worst_lines(worst) if line.char_errors]
    if bad:
        lines = Table(title="worst lines")
        for column in ("id", "CER", "reference", "recognized"):
            lines.add_column(column, overflow="fold")
        for line in bad:
            lines.add_row(line.id, f"{100 * line.cer:.1f}%", line.reference, line.hypothesis)
        console.print(lines)
