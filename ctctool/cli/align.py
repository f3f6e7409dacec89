from __future__ import annotations

import functools
import os
import sys
from typing import Annotated

import typer

from .common import (
    Backend,
    DecodeFlags,
    Limits,
    ModelArgument,
    Runtime,
    checked_results,
    decode_options,
    exit_if_partial,
    load_for_inference,
    parse_shard,
    read_inputs,
    shard_items,
    shared_options,
)


@shared_options("decode", "limits", "runtime", "backend")
def align_command(
    model: ModelArgument,
    manifest: Annotated[str, typer.Argument(help="Manifest (items with text are force-aligned to it; "
                                            "items without are aligned to the decoded text), or -.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="jsonl, tsv, hocr, page or alto (images), ctm "
                                     "or textgrid (audio).")] = "jsonl",
    png: Annotated[str | None, typer.Option("--png", help="Also draw each input with its spans into this "
                                            "folder.")] = None,
    out_dir: Annotated[str | None, typer.Option("--out-dir", help="Folder for --format textgrid, page and alto "
                                                "files.")] = None,
    keep_going: Annotated[bool, typer.Option("--keep-going", help="An input that fails becomes an error; "
                                             "the rest are still aligned (exit 3).")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Inputs per network batch.")] = 16,
    shard: Annotated[str | None, typer.Option("--shard", metavar="K/N", help="Align only the K-th of N "
                                              "contiguous slices of the items (job K of N); the N outputs "
                                              "concatenated in K order are the one-job output (jsonl, "
                                              "tsv, textgrid).")] = None,
    *,
    decode: DecodeFlags,
    limits: Limits,
    runtime: Runtime,
    backend: Backend,
) -> None:
    """CTC forced alignment: a start and end for every character and word, with confidences."""
    from ..align import align_items
    from ..errors import OptionError
    from ..writers import check_format, get_writer, write_textgrids

    if fmt in ("textgrid", "page", "alto") and not out_dir:
        raise OptionError(f"--format {fmt} writes one file per input{' page' if fmt != 'textgrid' else ''}: "
                          "give --out-dir")
    if fmt not in ("textgrid", "page", "alto"):
        get_writer("align", fmt)  # an unknown format is a usage error before any work
    part = parse_shard(shard)
    if part is not None and fmt in ("hocr", "ctm"):
        raise OptionError(f"--shard with --format {fmt}: the N outputs would not concatenate into the one-job "
                          "output (hocr is one document, ctm is sorted by file); use jsonl or tsv")
    items = shard_items(read_inputs([manifest]), part)
    by_id = {item.id: item for item in items}
    loaded, torch_device = load_for_inference(model, runtime, limits, backend)
    check_format("align", fmt, loaded.modality)
    options = decode_options(loaded, decode)
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
    elif fmt in ("page", "alto"):
        from ..document_export import write_documents

        for path in write_documents(results, by_id, out_dir, fmt):
            typer.echo(path)
    else:
        writer = get_writer("align", fmt)
        if part is not None and part[0] > 1 and fmt == "tsv":
            writer = functools.partial(writer, header=False)
        writer(results, sys.stdout)
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
