from __future__ import annotations

from typing import Annotated

import typer

from .common import Verbosity, echo_err, shared_options

app = typer.Typer(help="Language models for the beam search: character n-grams, and word n-grams (ARPA).", no_args_is_help=True)


@app.command("build")
@shared_options("verbosity")
def build_command(
    corpus: Annotated[str, typer.Argument(help="Plain text (one line per sentence), or a manifest whose "
                                          "transcripts to use (.jsonl / .jsonl.gz).")],
    output: Annotated[str, typer.Option("--output", "-o", help="LM file to write.")],
    order: Annotated[int | None, typer.Option("--order", min=1, max=12, help="Context + 1: characters "
                                              "[default 6], or words with --word [default 3].")] = None,
    word: Annotated[bool, typer.Option("--word", help="A word n-gram LM (interpolated modified Kneser-Ney, "
                                       "words split at whitespace) written as ARPA (.arpa or .arpa.gz).")] = False,
    *,
    verbosity: Verbosity,
) -> None:
    """Train a character n-gram LM (interpolated Witten-Bell) for decode --lm, or with --word a
    word n-gram LM in ARPA format."""
    import unicodedata

    from ..decoding.scorers import CharNgramLM
    from ..errors import OptionError
    from ..fileio import check_writable, read_text

    check_writable(output, "LM file")  # before building: -o a folder is found now
    if corpus.endswith((".jsonl", ".jsonl.gz")):
        from ..manifest import read_manifest

        lines = [item.text for item in read_manifest(corpus) if item.text]
    else:
        lines = read_text(corpus, "corpus").splitlines()
    if word:
        from ..decoding.word_lm import MAX_ORDER, build_kneser_ney

        if not output.endswith((".arpa", ".arpa.gz")):
            raise OptionError(f"--word writes ARPA: name the output .arpa or .arpa.gz, got {output}")
        if order is not None and order > MAX_ORDER:
            raise OptionError(f"--order for a word LM must be 1..{MAX_ORDER}, got {order}")
        model = build_kneser_ney((unicodedata.normalize("NFC", line).split() for line in lines), order=order or 3)
        model.save(output)
        echo_err(f"{output}: word {model.order}-gram LM, " + ", ".join(
            f"{len(table)} {n}-grams" for n, table in enumerate(model.ngrams, start=1)))
        return
    order = order or 6
    lm = CharNgramLM.build(lines, order=order)
    lm.save(output)
    echo_err(f"{output}: order {order}, {lm.lines} lines, {len(lm.chars)} characters, "
             f"{len(lm.backoff_state)} contexts")
