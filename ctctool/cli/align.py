from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from ..decoding.constants import DEFAULT_BEAM_WIDTH, DEFAULT_LM_ALPHA, DEFAULT_LM_BETA
from .common import (
    AlphaOption,
    BatchOption,
    BeamOption,
    BetaOption,
    DeviceOption,
    HotwordOption,
    LexiconOption,
    LmOption,
    ThreadsOption,
    VerboseOption,
    checked_results,
    decode_options,
    errors_to_exit,
    exit_if_partial,
    load_for_inference,
    read_inputs,
)


def align_command(
    model: Annotated[str, typer.Argument(help="Model file.")],
    manifest: Annotated[str, typer.Argument(help="Manifest (items with text are force-aligned to it; "
                                            "items without are aligned to the decoded text), or -.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="jsonl, tsv, hocr (images), ctm or textgrid "
                                     "(audio).")] = "jsonl",
    png: Annotated[str | None, typer.Option("--png", help="Also draw each input with its spans into this "
                                            "folder.")] = None,
    out_dir: Annotated[str | None, typer.Option("--out-dir", help="Folder for --format textgrid files.")] = None,
    keep_going: Annotated[bool, typer.Option("--keep-going", help="An input that fails becomes an error; "
                                             "the rest are still aligned (exit 3).")] = False,
    beam: BeamOption = DEFAULT_BEAM_WIDTH,
    lm: LmOption = None,
    alpha: AlphaOption = DEFAULT_LM_ALPHA,
    beta: BetaOption = DEFAULT_LM_BETA,
    lexicon: LexiconOption = None,
    hotword: HotwordOption = None,
    batch_size: BatchOption = 16,
    device: DeviceOption = "auto",
    threads: ThreadsOption = None,
    verbose: VerboseOption = False,
) -> None:
    """CTC forced alignment: a start and end for every character and word, with confidences."""
    with errors_to_exit(verbose):
        from ..errors import ConfigError
        from ..recognize import align_items
        from ..writers import ALIGN_FORMATS, get_writer, write_textgrids

        if fmt not in ALIGN_FORMATS:
            raise ConfigError(f"unknown --format {fmt!r} for align; choose from {', '.join(ALIGN_FORMATS)}")
        if fmt == "textgrid" and not out_dir:
            raise ConfigError("--format textgrid writes one file per input: give --out-dir")
        items = read_inputs([manifest])
        by_id = {item.id: item for item in items}
        loaded, torch_device = load_for_inference(model, device, threads)
        options = decode_options(loaded, beam=beam, lm=lm, alpha=alpha, beta=beta, lexicon=lexicon, hotwords=hotword)
        if png:
            os.makedirs(png, exist_ok=True)
        failures: list[str] = []
        results = checked_results(
            align_items(loaded, items, batch_size=batch_size, device=torch_device, options=options),
            keep_going=keep_going, failures=failures,
            on_result=(lambda result: draw_png(loaded, by_id[result.id], result, png)) if png else None)
        if fmt == "textgrid":
            for path in write_textgrids(results, out_dir):
                typer.echo(path)
        else:
            get_writer("align", fmt)(results, sys.stdout)
        exit_if_partial(failures, len(items))


def draw_png(loaded, item, result, folder: str) -> None:
    from ..writers import safe_name

    path = os.path.join(folder, safe_name(result.id) + ".png")
    if loaded.modality == "image":
        from ..features.image import open_line_image
        from ..writers import draw_alignment_png

        draw_alignment_png(open_line_image(item), result, path)
    else:
        from ..writers import draw_spectrogram_png

        draw_spectrogram_png(loaded.extractor.load(item), result, path)
