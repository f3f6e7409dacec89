from __future__ import annotations

from typing import Annotated

import typer

from .common import VerboseOption, echo_err, errors_to_exit

app = typer.Typer(help="Character language models for the beam search.", no_args_is_help=True)


@app.command("build")
def build_command(
    corpus: Annotated[str, typer.Argument(help="Plain text (one line per sentence), or a manifest whose "
                                          "transcripts to use (.jsonl / .jsonl.gz).")],
    output: Annotated[str, typer.Option("--output", "-o", help="LM file to write.")],
    order: Annotated[int, typer.Option("--order", min=1, max=12, help="Characters of context + 1.")] = 6,
    verbose: VerboseOption = False,
) -> None:
    """Train a character n-gram LM (interpolated Witten-Bell) for decode --lm."""
    with errors_to_exit(verbose):
        from ..decoding.scorers import CharNgramLM
        from ..errors import ConfigError

        if corpus.endswith((".jsonl", ".jsonl.gz")):
            from ..manifest import read_manifest

            lines = [item.text for item in read_manifest(corpus) if item.text]
        else:
            try:
                with open(corpus, encoding="utf-8") as handle:
                    lines = handle.read().splitlines()
            except FileNotFoundError:
                raise ConfigError(f"{corpus}: no such corpus file") from None
            except UnicodeDecodeError as exc:
                raise ConfigError(f"{corpus}: not UTF-8 text (byte {exc.start})") from None
        lm = CharNgramLM.build(lines, order=order)
        lm.save(output)
        echo_err(f"{output}: order {order}, {lm.lines} lines, {len(lm.chars)} characters, "
                 f"{len(lm.backoff_state)} contexts")
