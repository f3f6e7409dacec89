"""Options and helpers shared by every command: device, threads, verbosity, error handling."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Annotated

import typer

from ..decoding.constants import (
    DEFAULT_LM_ALPHA,
    DEFAULT_LM_BETA,
    DEFAULT_PRUNE_LOG_PROB,
)
from ..errors import ConfigError, CtcToolError

# Exit codes (DESIGN.md): 0 ok, 1 error, 2 usage error, 3 partial failure under --keep-going.
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3

DeviceOption = Annotated[str, typer.Option("--device", "-d", envvar="CTCTOOL_DEVICE",
                                           help="auto, cpu, cuda or cuda:N.")]
ThreadsOption = Annotated[int | None, typer.Option("--threads", envvar="CTCTOOL_THREADS", min=1,
                                                   help="CPU threads for torch (default: 2, or fewer cores).")]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks on errors.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", envvar="CTCTOOL_QUIET",
                                           help="No progress bars or info messages on stderr.")]
BatchOption = Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Inputs per network batch.")]

# Measured on the 2-core CI machines (see README "Threads"): 2 threads beat 1 on a quiet
# machine; more threads than cores only adds contention.
DEFAULT_THREADS = 2


def echo_err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def setup_torch(device: str, threads: int | None):
    """Apply --threads and resolve --device; returns a torch.device."""
    import torch

    count = threads or min(DEFAULT_THREADS, os.cpu_count() or 1)
    torch.set_num_threads(count)
    name = device.strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: this torch build or machine has no CUDA GPU; use --device cpu")
        try:
            resolved = torch.device(name)
        except RuntimeError:
            raise ConfigError(f"--device {device}: expected cuda or cuda:N") from None
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {device}: only {torch.cuda.device_count()} GPU(s) visible")
        return resolved
    raise ConfigError(f"--device {device}: expected auto, cpu, cuda or cuda:N")


@contextlib.contextmanager
def errors_to_exit(verbose: bool) -> Iterator[None]:
    """Library errors become one line on stderr and exit code 1; a traceback only with -v."""
    try:
        yield
    except typer.Exit:
        raise
    except CtcToolError as exc:
        if verbose:
            raise
        echo_err(f"error: {exc}")
        raise typer.Exit(EXIT_ERROR) from None
    except KeyboardInterrupt:
        echo_err("interrupted")
        raise typer.Exit(130) from None
    except BrokenPipeError:
        # A closed pipe (`ctctool decode ... | head`) is not an error of ours.
        with contextlib.suppress(Exception):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        raise typer.Exit(0) from None
    except MemoryError:
        echo_err("error: out of memory; try a smaller --batch-size")
        raise typer.Exit(EXIT_ERROR) from None
    except Exception as exc:  # noqa: BLE001
        if verbose:
            raise
        echo_err(f"error: unexpected {type(exc).__name__}: {exc} (run with -v for a traceback)")
        raise typer.Exit(EXIT_ERROR) from None


def read_inputs(inputs: list[str]):
    """Manifest items from the command's inputs: files, manifests (.jsonl[.gz]), or ``-`` for stdin.

    On stdin, a first line starting with ``{`` means a manifest; otherwise one path per line.
    """
    from ..manifest import ManifestItem, guess_kind, read_manifest, read_manifest_text

    if not inputs:
        raise ConfigError("give input files, a manifest, or - to read paths from stdin")
    items: list[ManifestItem] = []
    for argument in inputs:
        if argument == "-":
            text = sys.stdin.read()
            first = next((line for line in text.splitlines() if line.strip()), "")
            if first.lstrip().startswith("{"):
                items += read_manifest_text(text, source="<stdin>", root=os.getcwd())
            else:
                for number, line in enumerate(text.splitlines(), start=1):
                    path = line.strip()
                    if path:
                        items.append(ManifestItem(path=path, root=os.getcwd(), kind=guess_kind(path),
                                                  id=path, source=f"<stdin>:{number}"))
        elif argument.endswith((".jsonl", ".jsonl.gz")):
            items += read_manifest(argument)
        else:
            items.append(ManifestItem(path=argument, root=os.getcwd(), kind=guess_kind(argument), id=argument,
                                      source=argument))
    return items


def checked_results(results, *, keep_going: bool, failures: list[str], on_result=None):
    """Pass results through; a failed item stops the run (what came before is already written)
    unless ``keep_going``, when it is reported on stderr, counted, and passed on as an error row."""
    for result in results:
        if result.error:
            if not keep_going:
                raise CtcToolError(result.error)
            failures.append(result.error)
            echo_err(f"error: {result.error}")
        elif on_result is not None:
            on_result(result)
        yield result


def exit_if_partial(failures: list[str], total: int) -> None:
    if failures:
        echo_err(f"{len(failures)} of {total} inputs failed")
        raise typer.Exit(EXIT_PARTIAL)


def load_for_inference(model_path: str, device: str, threads: int | None):
    from ..checkpoint import load_model

    torch_device = setup_torch(device, threads)
    return load_model(model_path, torch_device), torch_device


# ---------------------------------------------------------------- decoding options (decode, eval, align)

BeamOption = Annotated[int, typer.Option("--beam", min=1, envvar="CTCTOOL_BEAM",
                                         help="Prefix beam width; 1 = greedy best path.")]
NbestOption = Annotated[int, typer.Option("--nbest", min=1, help="Alternatives to report per input (jsonl).")]
LmOption = Annotated[str | None, typer.Option("--lm", help="Character LM from `ctctool lm build`.")]
AlphaOption = Annotated[float, typer.Option("--alpha", help="Weight of the LM log-probability.")]
BetaOption = Annotated[float, typer.Option("--beta", help="Score bonus per emitted character.")]
LexiconOption = Annotated[str | None, typer.Option("--lexicon", help="Word list: output words must come "
                                                   "from it (one word per line).")]
HotwordOption = Annotated[list[str] | None, typer.Option("--hotword", help="WORD or WORD:BOOST (log-score per "
                                                         "matched character); repeatable.")]
PruneOption = Annotated[float, typer.Option("--prune", help="Per-frame cut: symbols with a smaller natural-log "
                                            "probability do not extend prefixes (-inf: none).")]
TopKOption = Annotated[int, typer.Option("--top-k", min=0, help="At most this many symbols extend prefixes "
                                         "per frame (0: no cap).")]


def decode_options(loaded, *, beam: int, nbest: int = 1, lm: str | None = None, alpha: float | None = None,
                   beta: float | None = None, lexicon: str | None = None, hotwords: list[str] | None = None,
                   prune: float | None = None, top_k: int = 0):
    """DecodeOptions for a loaded model from the shared command-line flags."""
    from ..recognize import DecodeOptions

    scorers = None
    if lm or lexicon or hotwords or beta:
        from ..decoding.scorers import CharNgramLM, compile_scorers, parse_hotword, read_word_list

        scorers = compile_scorers(
            loaded.codec.labels,
            lm=CharNgramLM.load(lm) if lm else None,
            alpha=DEFAULT_LM_ALPHA if alpha is None else alpha,
            beta=DEFAULT_LM_BETA if beta is None else beta,
            lexicon=read_word_list(lexicon) if lexicon else None,
            hotwords=[parse_hotword(spec) for spec in hotwords] if hotwords else None,
        )
        if scorers.skipped_words:
            echo_err(f"warning: {scorers.skipped_words} lexicon/hotword entries use characters the model "
                     "cannot spell (or a space, for hotwords) and were left out")
        if beam == 1:
            raise ConfigError("--lm, --lexicon, --hotword and --beta need the beam search: use --beam 2 or more")
    return DecodeOptions(beam=beam, nbest=nbest, prune_log_prob=DEFAULT_PRUNE_LOG_PROB if prune is None else prune,
                         top_k=top_k, scorers=scorers)
