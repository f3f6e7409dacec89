"""What every command shares: option groups declared once, error handling, input reading.

A command asks for option groups with ``@shared_options(...)``. The decorator adds each
group's options to the command's signature (so Typer shows them in ``--help``), collects
their values into one frozen object per group (``Runtime``, ``DecodeFlags``, ``Limits``)
and runs the command under ``errors_to_exit``. Flag names equal the library's keyword
names (``build_decode_options(**asdict(flags))``), so the CLI and the library cannot drift.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

import typer

from ..decoding.constants import (
    DEFAULT_BEAM_PRUNE,
    DEFAULT_BEAM_WIDTH,
    DEFAULT_LM_ALPHA,
    DEFAULT_LM_BETA,
    DEFAULT_PRUNE_LOG_PROB,
    DEFAULT_UNK_OFFSET,
    MAX_BEAM_WIDTH,
)
from ..errors import ConfigError, CtcToolError, OptionError
from ..threads import MAX_WORKERS

# Exit codes (see the README): 0 ok, 1 error, 2 usage error, 3 partial failure under --keep-going.
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3


def echo_err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# The MODEL argument of decode, eval, align, info and export.
ModelArgument = Annotated[str, typer.Argument(help="Model file, or a bundled model's name (ctctool models).")]


# ---------------------------------------------------------------- option groups


@dataclass(frozen=True)
class Runtime:
    device: str = "auto"  # auto, cpu, cuda or cuda:N
    threads: int | None = None  # torch CPU threads; None = threads.default_threads()
    verbose: bool = False  # tracebacks on errors


@dataclass(frozen=True)
class Backend:
    """How decode, eval and align run the network: which runtime, and long inputs in windows."""

    runtime: str = "auto"  # torch, onnx, or auto: onnx for a .onnx file or (CPU) a bundled model's export
    window: int | None = None  # feature frames per window for long inputs; None = the modality's default
    workers: int | None = None  # reader processes; None = threads.default_workers()


@dataclass(frozen=True)
class Verbosity:
    verbose: bool = False  # tracebacks on errors


@dataclass(frozen=True)
class DecodeFlags:
    """The decoding flags of decode, eval and align; names match ``build_decode_options``."""

    beam: int = DEFAULT_BEAM_WIDTH
    nbest: int = 1
    lm: list[str] | None = None
    alpha: float = DEFAULT_LM_ALPHA
    beta: float = DEFAULT_LM_BETA
    lexicon: str | None = None
    hotwords: list[str] | None = None
    prune: float = DEFAULT_PRUNE_LOG_PROB
    top_k: int = 0
    unk_offset: float = DEFAULT_UNK_OFFSET
    char_alpha: float = DEFAULT_LM_ALPHA
    beam_prune: float = DEFAULT_BEAM_PRUNE


@dataclass(frozen=True)
class Limits:
    """Per-item size limits: larger inputs are per-item errors, never a huge allocation."""

    max_width: int | None = None  # image lines: pixels after scaling to the model's height
    max_seconds: float | None = None  # audio: seconds per clip or segment


def _option(name: str, annotation, default) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)


_VERBOSE = _option("verbose", Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks on errors.")],
                   False)
_GROUPS: dict[str, tuple[type, list[inspect.Parameter]]] = {
    "verbosity": (Verbosity, [_VERBOSE]),
    "runtime": (Runtime, [
        _option("device", Annotated[str, typer.Option("--device", "-d", envvar="CTCTOOL_DEVICE",
                                                      help="auto, cpu, cuda or cuda:N.")], "auto"),
        _option("threads", Annotated[int | None, typer.Option(
            "--threads", envvar="CTCTOOL_THREADS", min=1, help="CPU threads for torch (default: half the "
            "cores, 2 to 8, fewer where other processes keep cores busy).")], None),
        _VERBOSE,
    ]),
    "backend": (Backend, [
        _option("runtime", Annotated[str, typer.Option(
            "--runtime", envvar="CTCTOOL_RUNTIME", help="Run the network with torch or onnx (onnxruntime, "
            "for a file from `ctctool export`); auto picks onnx for .onnx files, and for a bundled model on "
            "the CPU its shipped export (about 1.4x faster on one thread).")], "auto"),
        _option("window", Annotated[int | None, typer.Option(
            "--window", min=0, max=1_000_000, envvar="CTCTOOL_WINDOW",
            help="Inputs longer than this many feature frames (audio: 10 ms hops; images: pixel columns "
            "at the model's height) run in overlapping windows, stitched before the search; 0 = never "
            "[default: 3000 for audio (30 s), 4000 for images].")], None),
        _option("workers", Annotated[int | None, typer.Option(
            "--workers", min=0, max=MAX_WORKERS, envvar="CTCTOOL_WORKERS",
            help="Processes that read inputs and compute features while the network runs; results stay "
            "in input order [default: 0 on 2 cores or fewer, else a quarter of the cores, at most 4].")],
                None),
    ]),
    "decode": (DecodeFlags, [
        _option("beam", Annotated[int, typer.Option("--beam", min=1, max=MAX_BEAM_WIDTH,
                                                    envvar="CTCTOOL_BEAM",
                                                    help="Prefix beam width; 1 = greedy best path.")],
                DEFAULT_BEAM_WIDTH),
        _option("nbest", Annotated[int, typer.Option("--nbest", min=1, max=MAX_BEAM_WIDTH, help="Alternatives to report per input "
                                                     "(decode jsonl).")], 1),
        _option("lm", Annotated[list[str] | None, typer.Option(
            "--lm", help="Character LM from `ctctool lm build` (.npz), or a word n-gram LM in ARPA format (.arpa, "
            ".arpa.gz; `lm build --word`) or a KenLM binary (needs pip install 'ctctool[kenlm]'; scored alone, "
            "by the slower Python search); give --lm twice to use one of each.")], None),
        _option("alpha", Annotated[float, typer.Option("--alpha", help="Weight of the LM log-probability (the "
                                                       "word LM's when there is one).")], DEFAULT_LM_ALPHA),
        _option("beta", Annotated[float, typer.Option("--beta", help="Score bonus per emitted word with a word LM, "
                                                      "else per emitted character.")], DEFAULT_LM_BETA),
        _option("char_alpha", Annotated[float, typer.Option(
            "--char-alpha", help="Weight of the character LM when a word LM is given too.")], DEFAULT_LM_ALPHA),
        _option("lexicon", Annotated[str | None, typer.Option(
            "--lexicon", help="Word list: output words must come from it (one word per line).")], None),
        _option("hotwords", Annotated[list[str] | None, typer.Option(
            "--hotword", help="WORD, \"SOME PHRASE\", or either with :BOOST (log-score per matched character); "
            "repeatable.")], None),
        _option("prune", Annotated[float, typer.Option(
            "--prune", help="Per-frame cut: symbols with a smaller natural-log probability do not extend "
            "prefixes (-inf: none).")], DEFAULT_PRUNE_LOG_PROB),
        _option("top_k", Annotated[int, typer.Option("--top-k", min=0, help="At most this many symbols extend "
                                                     "prefixes per frame (0: no cap).")], 0),
        _option("beam_prune", Annotated[float, typer.Option(
            "--beam-prune", min=0.0, help="Drop prefixes scoring more than this (natural log) below the frame's "
            "best, however wide the beam (inf: none). 10 makes wide beams much faster.")], DEFAULT_BEAM_PRUNE),
        _option("unk_offset", Annotated[float, typer.Option(
            "--unk-offset", help="Word LM: score (natural log) while a word is spelled that starts no vocabulary "
            "word.")], DEFAULT_UNK_OFFSET),
    ]),
    "limits": (Limits, [
        _option("max_width", Annotated[int | None, typer.Option(
            "--max-width", min=16, max=1_000_000, envvar="CTCTOOL_MAX_WIDTH",
            help="Longest image line accepted, in pixels after scaling to the model's height "
            "[default: 12000, or the model's].")], None),
        _option("max_seconds", Annotated[float | None, typer.Option(
            "--max-seconds", min=0.1, max=36000, envvar="CTCTOOL_MAX_SECONDS",
            help="Longest audio clip or segment accepted, in seconds [default: 120, or the "
            "model's].")], None),
    ]),
}


def shared_options(*groups: str):
    """Add the named option groups to a command; it receives them as keyword arguments
    named after the group (``runtime=Runtime(...)``, ``decode=DecodeFlags(...)``...)."""

    def decorate(command):
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name not in groups]
        added = [param for group in groups for param in _GROUPS[group][1]]

        @functools.wraps(command)
        def wrapper(**kwargs):
            grouped = {}
            for group in groups:
                cls, params = _GROUPS[group]
                grouped[group] = cls(**{p.name: kwargs.pop(p.name) for p in params})
            verbose = any(getattr(values, "verbose", False) for values in grouped.values())
            with errors_to_exit(verbose):
                return command(**kwargs, **grouped)

        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + added
        wrapper.__signature__ = signature.replace(parameters=params)
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        del wrapper.__wrapped__  # Typer must read the new signature, not the command's
        return wrapper

    return decorate


# ---------------------------------------------------------------- errors and torch set-up


@contextlib.contextmanager
def errors_to_exit(verbose: bool) -> Iterator[None]:
    """Library errors become one line on stderr and exit code 1 (2 for bad option values);
    a traceback only with -v."""
    try:
        yield
    except typer.Exit:
        raise
    except (OptionError, typer.BadParameter) as exc:
        if verbose:
            raise
        echo_err(f"error: {_one_line(exc)}")
        raise typer.Exit(EXIT_USAGE) from None
    except CtcToolError as exc:
        if verbose:
            raise
        echo_err(f"error: {_one_line(exc)}")
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
    except OSError as exc:  # a file we were pointed at: name it
        if verbose:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        echo_err(f"error: {where}{(exc.strerror or str(exc)).lower()}")
        raise typer.Exit(EXIT_ERROR) from None
    except Exception as exc:  # noqa: BLE001
        if verbose:
            raise
        if _peer_rank_failed(exc):
            rank = os.environ.get("RANK", "?")
            echo_err(f"error: rank {rank}: another training process of this torchrun job stopped (its own "
                     "error is printed above or in its log); this one stops too")
            raise typer.Exit(EXIT_ERROR) from None
        echo_err(f"error: unexpected {type(exc).__name__}: {_one_line(exc)} (run with -v for a traceback)")
        raise typer.Exit(EXIT_ERROR) from None


def _peer_rank_failed(exc: BaseException) -> bool:
    """Under torchrun: a collective failed because another rank's process went away (gloo says
    "Connection closed by peer", NCCL that a peer or the store is gone)."""
    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        return False
    text = str(exc)
    return any(sign in text for sign in ("Connection closed by peer", "Connection reset by peer", "Broken pipe",
                                         "NCCL communicator was aborted", "remote process exited"))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return " ".join(text.split()) if text else type(exc).__name__


def setup_torch(runtime: Runtime):
    """Apply --threads and resolve --device; returns a torch.device."""
    import torch

    from ..threads import default_threads

    count = runtime.threads or default_threads()
    torch.set_num_threads(count)
    device = runtime.device
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
            raise OptionError(f"--device {device}: expected cuda or cuda:N") from None
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {device}: only {torch.cuda.device_count()} GPU(s) visible")
        return resolved
    raise OptionError(f"--device {device}: expected auto, cpu, cuda or cuda:N")


def load_for_inference(model_path: str, runtime: Runtime, limits: Limits | None = None,
                       backend: Backend | None = None):
    """The model on the chosen device (run by torch or by onnxruntime), its feature extractor
    carrying the command's limits."""
    from dataclasses import replace

    torch_device = setup_torch(runtime)
    engine = (backend or Backend()).runtime.strip().lower()
    if engine not in ("auto", "torch", "onnx"):
        raise OptionError(f"--runtime must be auto, torch or onnx, got {engine!r}")
    import torch

    is_onnx_file = model_path.lower().endswith(".onnx")
    loaded = None
    onnx_device = _onnx_device(runtime, torch_device) if engine != "torch" else "cpu"
    if not is_onnx_file and engine != "torch":  # a bundled model's shipped export, where it applies
        loaded = _bundled_export(model_path, engine, torch_device, onnx_device)
    if loaded is None and (engine == "onnx" or (engine == "auto" and is_onnx_file)):
        from ..onnx_network import load_onnx_model

        loaded = load_onnx_model(model_path, threads=torch.get_num_threads(), device=onnx_device)
    if loaded is None:
        from ..checkpoint import load_model

        loaded = load_model(model_path, torch_device)
    else:  # either ONNX path: onnxruntime takes and gives host arrays
        torch_device = torch.device("cpu")
    if backend is not None and backend.window is not None:
        loaded = replace(loaded, window_frames=backend.window)
    if backend is not None:
        from ..threads import default_workers

        loaded = replace(loaded, read_workers=backend.workers if backend.workers is not None else default_workers())
    if limits is not None:
        loaded = replace(loaded, extractor=loaded.extractor.with_limits(max_width=limits.max_width,
                                                                         max_seconds=limits.max_seconds))
    return loaded, torch_device


def _onnx_device(runtime: Runtime, torch_device) -> str:
    """Where onnxruntime runs: the GPU when one was chosen and this onnxruntime build has a CUDA
    provider. With --device auto a CPU-only build runs on the CPU (a GPU machine with the plain
    onnxruntime refused every .onnx model); an explicit --device cuda still says it cannot."""
    if torch_device.type != "cuda":
        return "cpu"
    if runtime.device.strip().lower() == "auto":
        try:
            import onnxruntime
        except ImportError:
            return "cpu"  # loading says what is missing, where ONNX is needed at all
        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            return "cpu"
    return str(torch_device)


def _bundled_export(model_path: str, engine: str, torch_device, onnx_device: str):
    """A bundled model's shipped ONNX export, run by onnxruntime, where that is the runtime to
    use: asked for (--runtime onnx), or by default on the CPU (about twice PyTorch's speed on
    one thread; ``--runtime torch`` keeps PyTorch). None where the package has no current export
    or onnxruntime is missing: PyTorch runs the model file then."""
    if engine == "auto" and torch_device.type != "cpu":
        return None
    from ..models import bundled_onnx

    found = bundled_onnx(model_path)
    if found is None:
        return None
    import torch

    from ..fileio import file_sha256
    from ..onnx_network import StaleExportError, load_onnx_model

    export, model_file = found
    try:
        return load_onnx_model(str(export), threads=torch.get_num_threads(), device=onnx_device,
                               source_sha256=file_sha256(str(model_file)))
    except StaleExportError:
        return None


def decode_options(loaded, flags: DecodeFlags):
    """The library's DecodeOptions for these flags; warns about lexicon words the model cannot spell."""
    from dataclasses import asdict

    from ..recognition import build_decode_options

    options = build_decode_options(loaded.codec, **asdict(flags))
    if options.scorers is not None and getattr(options.scorers, "skipped_words", 0):
        echo_err(f"warning: {options.scorers.skipped_words} lexicon/hotword entries use characters the model "
                 "cannot spell and were left out")
    return options


# ---------------------------------------------------------------- inputs and results


def read_inputs(inputs: list[str]):
    """Manifest items from the command's inputs: files, manifests (.jsonl[.gz]), or ``-`` for stdin.

    On stdin, a first line starting with ``{`` means a manifest; otherwise one path per line.
    Bare paths get the path as id, made unique when a path comes twice.
    """
    from ..manifest import items_from_paths, read_manifest, read_manifest_text

    if not inputs:
        raise OptionError("give input files, a manifest, or - to read paths from stdin")
    entries: list = []  # manifest items, or (path, source) pairs for bare paths, in input order
    for argument in inputs:
        if argument == "-":
            text = sys.stdin.read().removeprefix("\ufeff")
            lines = text.split("\n")  # LF only, as manifests: a file name may hold U+2028 or NEL
            first = next((line for line in lines if line.strip()), "")
            if first.lstrip().startswith("{"):
                entries += read_manifest_text(text, source="<stdin>", root=os.getcwd())
            else:
                entries += [(line.strip(), f"<stdin>:{number}") for number, line in enumerate(lines, 1)
                            if line.strip()]
        elif argument.endswith((".jsonl", ".jsonl.gz")):
            entries += read_manifest(argument)
        else:
            entries.append((argument, argument))
    path_items = iter(items_from_paths([e for e in entries if isinstance(e, tuple)], root=os.getcwd()))
    return [next(path_items) if isinstance(e, tuple) else e for e in entries]


def stream_inputs(inputs: list[str]):
    """Like ``read_inputs``, but a list of paths on stdin (``-`` alone) is read as it arrives:
    the items come from a generator, line by line, so a pipe of a million paths gives first
    results within seconds and memory does not grow with the list (beyond the ids seen).
    Everything else (files, manifests, a manifest on stdin) is read whole here, so its errors
    come before any work."""
    from itertools import chain

    from ..manifest import read_manifest_text, stream_path_items

    if inputs != ["-"]:
        return read_inputs(inputs)
    lines = iter(sys.stdin)
    head: list[str] = []
    for line in lines:  # the first non-blank line says whether stdin holds a manifest
        head.append(line.removeprefix("\ufeff") if not head else line)
        if line.strip():
            break
    if head and head[-1].lstrip().startswith("{"):
        return read_manifest_text("".join(chain(head, lines)), source="<stdin>", root=os.getcwd())
    numbered = ((line.strip(), f"<stdin>:{number}") for number, line in enumerate(chain(head, lines), 1))
    return stream_path_items(((path, source) for path, source in numbered if path), root=os.getcwd())


class Counted:
    """An iterable that counts what passed through it (for "N of M inputs failed" on a stream)."""

    def __init__(self, items):
        self.items, self.count = items, 0

    def __iter__(self):
        for item in self.items:
            self.count += 1
            yield item


def parse_shard(spec: str | None) -> tuple[int, int] | None:
    """``K/N`` -> (K, N): this job takes the K-th of N contiguous slices of the input list."""
    if spec is None:
        return None
    head, _, tail = spec.partition("/")
    try:
        k, n = int(head), int(tail)
    except ValueError:
        raise OptionError(f"--shard must be K/N (this is job K of N), got {spec!r}") from None
    if not 1 <= k <= n <= 1_000_000:
        raise OptionError(f"--shard {spec}: need 1 <= K <= N <= 1000000")
    return k, n


def shard_items(items: list, shard: tuple[int, int] | None) -> list:
    """The K-th of N contiguous slices (sizes differ by at most one item): a pure function of
    the input list, so N jobs on N machines cover every item once, and their outputs
    concatenated in K order are the one-job output."""
    if shard is None:
        return items
    k, n = shard
    return items[(k - 1) * len(items) // n:k * len(items) // n]


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
