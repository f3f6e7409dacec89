from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..threads import MAX_WORKERS, usable_cores
from .common import Verbosity, echo_err, shared_options


@shared_options("verbosity")
def synth_command(
    corpus: Annotated[list[str], typer.Argument(help="Plain-text files (one line per sample) or manifests "
                                                "(.jsonl, .jsonl.gz) whose transcripts to draw.")],
    output: Annotated[str, typer.Option("--output", "-o", help="Folder to write images/ and manifest.jsonl "
                                        "into.")],
    fonts: Annotated[str, typer.Option("--fonts", help="Font file, folder (searched recursively), or a text "
                                       "file listing them; several separated by commas.")],
    samples: Annotated[int | None, typer.Option("--n", min=1, help="Samples to make, cycling through the "
                                                "corpus in a seeded order [default: each text once].")] = None,
    height: Annotated[int, typer.Option("--height", min=8, max=256, help="Output line height in pixels.")] = 48,
    degrade: Annotated[str, typer.Option("--degrade", help="none, light, scan or heavy; several separated by "
                                         "commas (each sample draws one), or all.")] = "light",
    cut: Annotated[str | None, typer.Option("--cut", help="MIN-MAX: re-flow plain text into pieces of MIN-MAX "
                                            "characters instead of one sample per line.")] = None,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Same seed, same images.")] = 0,
    workers: Annotated[int | None, typer.Option("--workers", min=1, max=MAX_WORKERS, help="Processes [default: the cores "
                                                "available].")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing manifest in the "
                                            "folder.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")] = False,
    *,
    verbosity: Verbosity,
) -> None:
    """Render text lines in the given fonts, with scan-like damage, as a training manifest."""
    from ..synth import SynthConfig, parse_levels, synthesize
    from ..synth.corpus import parse_cut, read_corpus
    from ..synth.fonts import font_files, open_faces

    config = SynthConfig(height=height, degrade=parse_levels(degrade), seed=seed, samples=samples)
    pieces = parse_cut(cut) if cut else None
    faces, problems = open_faces(font_files(fonts))
    for problem in problems:
        echo_err(f"warning: skipping {problem.path}: {problem.reason}")
    text = read_corpus(corpus, cut=pieces, seed=seed)
    total = samples or len(text.texts)
    with _progress(total, quiet) as advance:
        report = synthesize(text, faces, output, config, workers=workers or usable_cores(), overwrite=overwrite,
                            progress=advance)
    if not quiet:
        echo_err(f"{report.manifest}: {report.written} lines in {len(report.faces_used)} of {report.faces} "
                 f"font faces, {height} px high, degradation {','.join(config.degrade)}")
    skipped = []
    if text.empty:
        skipped.append(f"{text.empty} empty lines")
    if report.no_face:
        skipped.append(f"{report.no_face} samples no face draws completely (e.g. "
                       f"{'; '.join(report.missing_examples[:3])})")
    if report.unrenderable:
        skipped.append(f"{report.unrenderable} samples drawn at an absurd size")
    if skipped:
        echo_err("skipped: " + ", ".join(skipped))
    if report.written == 0:
        echo_err("error: no line was written")
        raise typer.Exit(1)


class _progress:
    """A rich bar on a terminal, nothing otherwise; yields the function that advances it."""

    def __init__(self, total: int, quiet: bool):
        self.total, self.bar = total, None
        if not quiet and sys.stderr.isatty():
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(TextColumn("[bold]synth"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                transient=True)

    def __enter__(self):
        if self.bar is None:
            return None
        self.bar.start()
        task = self.bar.add_task("synth", total=self.total)
        return lambda count: self.bar.advance(task, count)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()
