from __future__ import annotations

import json
from typing import Annotated

import typer

from .common import Verbosity, shared_options


def _metric_summary(metrics: dict, modality: str = "image") -> str:
    """``heldout-none CER 2.48%`` for each set the card reports, in the card's order; WER for
    speech models, where it is the headline."""
    parts = []
    for name, figures in metrics.items():
        key = "wer" if "wer" in figures and ("cer" not in figures or modality == "audio") else "cer"
        value = figures.get(key)
        if isinstance(value, (int, float)):
            parts.append(f"{name} {key.upper()} {100 * value:.2f}%")
    return "; ".join(parts) or "-"


@shared_options("verbosity")
def models_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    *,
    verbosity: Verbosity,
) -> None:
    """List the bundled models: any command that takes MODEL also takes one of these names."""
    from ..checkpoint import read_model_file
    from ..models import bundled_models

    rows = []
    for card in bundled_models():
        payload = read_model_file(str(card.path))
        rows.append({
            "name": card.name, "modality": card.modality, "alphabet_size": len(payload["codec"]["labels"]),
            "file_bytes": card.file_bytes, "training_data": card.training_data, "metrics": card.metrics,
            "licence": card.licence, "description": card.description, "path": str(card.path),
        })
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        typer.echo("no bundled models installed")
        return
    import shutil
    import textwrap

    # One block per model, wrapped to the terminal: a table of seven columns folded the card's
    # sentences into one-word lines at 80 columns.
    width = max(40, min(100, shutil.get_terminal_size((80, 24)).columns))
    typer.echo("bundled models; any MODEL argument takes a name (ctctool info NAME: its card)")
    for row in rows:
        typer.echo(f"\n{row['name']}: {row['modality']}, {row['alphabet_size']} labels, "
                   f"{row['file_bytes'] / 1e6:.1f} MB")
        for label, text in (("trained on", row["training_data"]), ("measured", _metric_summary(row["metrics"], row["modality"])),
                            ("licence", row["licence"])):
            typer.echo(textwrap.fill(text, width, initial_indent=f"  {label}: ", subsequent_indent="    "))
