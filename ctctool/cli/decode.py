from __future__ import annotations

import functools
import sys
from typing import Annotated

import typer

from .common import (
    Backend,
    Counted,
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
    stream_inputs,
)


@shared_options("decode", "limits", "runtime", "backend")
def decode_command(
    model: ModelArgument,
    inputs: Annotated[list[str], typer.Argument(help="Images / clips, manifests (.jsonl), or - for paths "
                                                "(or a manifest) on stdin.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="text, tsv, jsonl, ctm (audio: word times), or page / "
                                     "alto (the PAGE or ALTO documents the inputs were imported from, filled in, "
                                     "into --out-dir).")] = "text",
    out_dir: Annotated[str | None, typer.Option("--out-dir", help="Folder for --format page / alto "
                                                "documents.")] = None,
    keep_going: Annotated[bool, typer.Option("--keep-going", help="An input that fails becomes an error row; "
                                             "the rest are still decoded (exit 3).")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Inputs per network batch.")] = 16,
    shard: Annotated[str | None, typer.Option("--shard", metavar="K/N", help="Decode only the K-th of N "
                                              "contiguous slices of the inputs (job K of N); the N outputs "
                                              "concatenated in K order are the one-job output.")] = None,
    *,
    decode: DecodeFlags,
    limits: Limits,
    runtime: Runtime,
    backend: Backend,
) -> None:
    """Recognize images or clips; one result per input, in input order, on stdout."""
    from ..errors import OptionError
    from ..recognition import decode_items
    from ..writers import get_writer

    documents = fmt in ("page", "alto")
    if documents and not out_dir:
        raise OptionError(f"--format {fmt} writes one document per input page: give --out-dir")
    writer = None if documents else get_writer("decode", fmt)
    part = parse_shard(shard)
    if part is not None and part[0] > 1 and fmt == "tsv":
        writer = functools.partial(writer, header=False)
    # Without --shard (which needs the whole list to cut it), paths on stdin stream through.
    items = Counted(stream_inputs(inputs) if part is None else shard_items(read_inputs(inputs), part))
    loaded, torch_device = load_for_inference(model, runtime, limits, backend)
    options = decode_options(loaded, decode)
    from ..writers import check_format

    check_format("decode", fmt, loaded.modality)  # ctm for audio, page / alto for images
    failures: list[str] = []
    if documents:
        from ..document_export import write_documents

        seen: dict = {}
        recorded = (seen.setdefault(item.id, item) for item in items)
        results = decode_items(loaded, recorded, batch_size=batch_size, device=torch_device, options=options)
        for path in write_documents(checked_results(results, keep_going=keep_going, failures=failures), seen,
                                    out_dir, fmt):
            typer.echo(path)
        exit_if_partial(failures, items.count)
        return
    results = decode_items(loaded, items, batch_size=batch_size, device=torch_device, options=options)
    writer(checked_results(results, keep_going=keep_going, failures=failures), sys.stdout)
    exit_if_partial(failures, items.count)
