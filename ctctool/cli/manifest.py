from __future__ import annotations

import json
from typing import Annotated

import typer

from .common import EXIT_ERROR, Verbosity, echo_err, shared_options

app = typer.Typer(help="Check, summarise and import manifests.", no_args_is_help=True)
import_app = typer.Typer(help="Make a manifest from another tool's layout.", no_args_is_help=True)
app.add_typer(import_app, name="import")

OutputOption = Annotated[str, typer.Option("--output", "-o", help="Manifest to write (- for stdout).")]
LinePaddingOption = Annotated[int, typer.Option("--line-padding", min=0, max=100, help="Pixels of room around "
                                                "each line's outline (its box, and its polygon mask).")]


@app.command("validate")
@shared_options("verbosity")
def validate_command(
    manifest: Annotated[str, typer.Argument(help="Manifest to check.")],
    no_files: Annotated[bool, typer.Option("--no-files", help="Check the lines only, not that files open.")] = False,
    need_text: Annotated[bool, typer.Option("--need-text", help="Every line must carry a transcript.")] = False,
    *,
    verbosity: Verbosity,
) -> None:
    """Check every line and every file; print each problem as manifest:line: field: reason."""
    from ..manifest import validate_manifest

    report = validate_manifest(manifest, check_files=not no_files, need_text=need_text)
    for error in report.errors:
        typer.echo(error)
    if report.errors:
        echo_err(f"{manifest}: {len(report.errors)} problem(s) in {report.items} readable item(s)")
        raise typer.Exit(EXIT_ERROR)
    echo_err(f"{manifest}: {report.items} items ok")


@app.command("stats")
@shared_options("verbosity")
def stats_command(
    manifest: Annotated[str, typer.Argument(help="Manifest to summarise.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    *,
    verbosity: Verbosity,
) -> None:
    """Counts, characters and a transcript-length histogram."""
    from dataclasses import asdict

    from ..manifest import manifest_stats, read_manifest

    stats = manifest_stats(read_manifest(manifest))
    if as_json:
        typer.echo(json.dumps(asdict(stats), ensure_ascii=False))
        return
    typer.echo(f"items: {stats.items} ({stats.with_text} with text); kinds: "
               + ", ".join(f"{k} {v}" for k, v in stats.kinds.items()))
    if stats.total_duration is not None:
        typer.echo(f"audio: {stats.total_duration:.1f} s")
    typer.echo(f"transcript length: min {stats.min_length}, mean {stats.mean_length:.1f}, max {stats.max_length}")
    typer.echo(f"characters: {len(stats.characters)} distinct, {sum(stats.characters.values())} in all")
    typer.echo("  " + " ".join(f"{c!r}:{n}" for c, n in stats.characters.items()))
    if stats.length_histogram:
        peak = max(count for _, _, count in stats.length_histogram)
        typer.echo("length histogram:")
        for low, high, count in stats.length_histogram:
            typer.echo(f"  {low:>4}-{high:<4} {count:>7} {'#' * round(40 * count / max(1, peak))}")


def _write(result, output: str, what: str) -> None:
    from ..manifest import write_manifest

    for reason in result.skipped:
        echo_err(f"skipped: {reason}")
    count = write_manifest(result.items, output)
    echo_err(f"{what}: wrote {count} items to {output}" + (f", skipped {len(result.skipped)}" if result.skipped else ""))


@import_app.command("gt-txt")
@shared_options("verbosity")
def import_gt_txt_command(
    folder: Annotated[str, typer.Argument(help="Folder of line images with .gt.txt sidecars.")],
    output: OutputOption,
    *,
    verbosity: Verbosity,
) -> None:
    """Images with <stem>.gt.txt transcripts (kraken, calamari, tesstrain, ocropus)."""
    from ..manifest import import_gt_txt

    _write(import_gt_txt(folder), output, folder)


@import_app.command("tsv")
@shared_options("verbosity")
def import_tsv_command(
    source: Annotated[str, typer.Argument(help="A path<TAB>label list (PaddleOCR's format).")],
    output: OutputOption,
    *,
    verbosity: Verbosity,
) -> None:
    """path<TAB>label lines; paths relative to the list's folder."""
    from ..manifest import import_tsv

    _write(import_tsv(source), output, source)


def _write_documents(result, output: str, what: str) -> None:
    from ..manifest import write_manifest

    for line in result.problems():
        echo_err(f"warning: {line}")
    count = write_manifest(result.items, output)
    echo_err(f"{what}: wrote {count} lines from {result.documents} document(s) to {output}")


@import_app.command("page")
@shared_options("verbosity")
def import_page_command(
    sources: Annotated[list[str], typer.Argument(help="PAGE XML files, or folders of them.")],
    output: OutputOption,
    line_padding: LinePaddingOption = 0,
    *,
    verbosity: Verbosity,
) -> None:
    """PAGE XML (2013, 2019: Transkribus, eScriptorium, OCR-D): one item per text line, in
    reading order, with the page image, bbox, polygon, baseline and transcription."""
    from ..documents import import_page

    _write_documents(import_page(sources, line_padding=line_padding), output, "page")


@import_app.command("alto")
@shared_options("verbosity")
def import_alto_command(
    sources: Annotated[list[str], typer.Argument(help="ALTO XML files, or folders of them.")],
    output: OutputOption,
    line_padding: LinePaddingOption = 0,
    *,
    verbosity: Verbosity,
) -> None:
    """ALTO v2-v4 (eScriptorium, kraken, library digitisation): one item per text line, in
    reading order, with the page image, bbox, polygon, baseline and transcription."""
    from ..documents import import_alto

    _write_documents(import_alto(sources, line_padding=line_padding), output, "alto")


@import_app.command("kaldi")
@shared_options("verbosity")
def import_kaldi_command(
    folder: Annotated[str, typer.Argument(help="A Kaldi data directory (wav.scp, text, optional segments, "
                                          "utt2spk).")],
    output: OutputOption,
    *,
    verbosity: Verbosity,
) -> None:
    """Kaldi data directories: one item per utterance (segments give offset and duration)."""
    from ..layouts import import_kaldi

    _write(import_kaldi(folder), output, folder)


@import_app.command("hf")
@shared_options("verbosity")
def import_hf_command(
    folder: Annotated[str, typer.Argument(help="A Hugging Face imagefolder / audiofolder (metadata.csv or "
                                          "metadata.jsonl beside the files).")],
    output: OutputOption,
    text_column: Annotated[str | None, typer.Option("--text-column", help="The transcript column [default: "
                                                    "text, transcription, sentence or label].")] = None,
    *,
    verbosity: Verbosity,
) -> None:
    """Hugging Face imagefolder / audiofolder layouts: file_name plus a transcript column."""
    from ..layouts import import_hf

    _write(import_hf(folder, text_column), output, folder)
