from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..decoding.constants import (
    DEFAULT_BEAM_WIDTH,
    DEFAULT_LM_ALPHA,
    DEFAULT_LM_BETA,
    DEFAULT_PRUNE_LOG_PROB,
)
from .common import (
    AlphaOption,
    BatchOption,
    BeamOption,
    BetaOption,
    DeviceOption,
    HotwordOption,
    LexiconOption,
    LmOption,
    NbestOption,
    PruneOption,
    ThreadsOption,
    TopKOption,
    VerboseOption,
    checked_results,
    decode_options,
    errors_to_exit,
    exit_if_partial,
    load_for_inference,
    read_inputs,
)


def decode_command(
    model: Annotated[str, typer.Argument(help="Model file.")],
    inputs: Annotated[list[str], typer.Argument(help="Images / clips, manifests (.jsonl), or - for paths "
                                                "(or a manifest) on stdin.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="text, tsv or jsonl.")] = "text",
    keep_going: Annotated[bool, typer.Option("--keep-going", help="An input that fails becomes an error row; "
                                             "the rest are still decoded (exit 3).")] = False,
    beam: BeamOption = DEFAULT_BEAM_WIDTH,
    nbest: NbestOption = 1,
    lm: LmOption = None,
    alpha: AlphaOption = DEFAULT_LM_ALPHA,
    beta: BetaOption = DEFAULT_LM_BETA,
    lexicon: LexiconOption = None,
    hotword: HotwordOption = None,
    prune: PruneOption = DEFAULT_PRUNE_LOG_PROB,
    top_k: TopKOption = 0,
    batch_size: BatchOption = 16,
    device: DeviceOption = "auto",
    threads: ThreadsOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Recognize images or clips; one result per input, in input order, on stdout."""
    with errors_to_exit(verbose):
        from ..recognize import decode_items
        from ..writers import get_writer

        writer = get_writer("decode", fmt)
        items = read_inputs(inputs)
        loaded, torch_device = load_for_inference(model, device, threads)
        options = decode_options(loaded, beam=beam, nbest=nbest, lm=lm, alpha=alpha, beta=beta, lexicon=lexicon,
                                 hotwords=hotword, prune=prune, top_k=top_k)
        failures: list[str] = []
        results = decode_items(loaded, items, batch_size=batch_size, device=torch_device, options=options)
        writer(checked_results(results, keep_going=keep_going, failures=failures), sys.stdout)
        exit_if_partial(failures, len(items))
