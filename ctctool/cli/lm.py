from __future__ import annotations

from typing import Annotated

import typer

from .common import Verbosity, echo_err, shared_options

app = typer.Typer(help="Character language models for the beam search.", no_args_is_help=True)


@app.command("build")
@shared_options("verbosity")
def build_command(
    corpus: Annotated[str, typer.Argument(help="Plain text (one line per sentence), or a manifest whose "
                                          "transcripts to use (.jsonl / .jsonl.gz).")],
    output: Annotated[str, typer.Option("--output", "-o", help="LM file to write.")],
    order: Annotated[int, typer.Option("--order", min=1, max=12, help="Characters of context + 1.")] = 6,
    *,
    verbosity: Verbosity,
) -> None:
    """Train a character n-gram LM (interpolated Witten-Bell) for decode --lm."""
    from ..decoding.scorers import CharNgramLM
    from ..fileio import check_writable, read_text

    check_writable(output, "LM file")  # before building: -o a folder is found now
    if corpus.endswith((".jsonl", ".jsonl.gz")):
        from ..manifest import read_manifest

        lines = [item.text for item in read_manifest(corpus) if item.text]
    else:
        lines = read_text(corpus, "corpus").splitlines()
    lm = CharNgramLM.build(lines, order=order)
    lm.save(output)
    echo_err(f"{output}: order {order}, {lm.lines} lines, {len(lm.chars)} characters, "
             f"{len(lm.backoff_state)} contexts")
