from __future__ import annotations

import json
from typing import Annotated

import typer

from .common import ModelArgument, Verbosity, shared_options


@shared_options("verbosity")
def info_command(
    model: ModelArgument,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    *,
    verbosity: Verbosity,
) -> None:
    """Show what a model file (or an exported .onnx) holds: modality, alphabet, features, network size, training metadata,
    and for a bundled model its card (training data, recipe, metrics, licence)."""
    from dataclasses import asdict

    from ..checkpoint import describe_model
    from ..models import bundled_model

    if model.lower().endswith(".onnx"):
        from ..onnx_network import describe_onnx_model

        info = describe_onnx_model(model)
    else:
        info = describe_model(model)
    card = bundled_model(model)
    if card is not None:
        fields = asdict(card)
        fields.pop("path")
        fields.update(fields.pop("extra"))
        info = {"card": fields, **info}
    if as_json:
        typer.echo(json.dumps(info, ensure_ascii=False, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=model, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    training = info.pop("training")
    for key, value in info.pop("card", {}).items():
        table.add_row(f"card.{key}", value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
    for key, value in info.items():
        table.add_row(key, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
    for key, value in training.items():
        table.add_row(f"training.{key}", value if isinstance(value, str) else json.dumps(value))
    Console(highlight=False).print(table)
