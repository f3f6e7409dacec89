"""The ``ctctool`` command line: one Typer app, one module per command.

Command modules import torch inside their bodies, so ``ctctool --help`` stays fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ..threads import start_load_sample
from ..version import __version__

start_load_sample()  # other processes' CPU use over our start-up picks the default thread count

app = typer.Typer(
    name="ctctool",
    help="Train, evaluate, run and inspect CTC recognizers for text-line images and short audio clips.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from ..decoding import BACKEND

        typer.echo(f"ctctool {__version__} (beam search backend: {BACKEND})")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and decoder backend, then exit.")] = False,
) -> None:
    """Train, evaluate, run and inspect CTC recognizers for text-line images and short audio clips."""


from . import align, decode, evaluate, export, info, lm, manifest, models, synth, train  # noqa: E402  (registers the commands)

app.command("train")(train.train_command)
app.command("eval")(evaluate.eval_command)
app.command("decode")(decode.decode_command)
app.command("align")(align.align_command)
app.command("info")(info.info_command)
app.command("export")(export.export_command)
app.command("models")(models.models_command)
app.command("synth")(synth.synth_command)
app.add_typer(manifest.app, name="manifest")
app.add_typer(lm.app, name="lm")


def main() -> None:
    # A process killed by a signal from native code (a SIGABRT inside gloo under torchrun, a
    # fault in a compiled extension) prints every thread's Python stack before it dies, so
    # the report says where it was instead of only "Signal 6 received".
    import faulthandler

    try:
        if not faulthandler.is_enabled():
            faulthandler.enable()
    except (OSError, ValueError, RuntimeError):  # stderr closed or without a file descriptor
        pass
    app()
