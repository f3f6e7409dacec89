"""Bundled models: model files installed with the package, each with a JSON model card.

A bundled model is ``NAME.pt`` (an ordinary ctctool model file) beside ``NAME.json`` (its card:
what it reads, what it was trained on, how it was rebuilt and the metrics of that rebuild).
Wherever a command or the library takes a model path it also takes a bundled name:
``resolve_model`` turns a name into the installed file, before trying it as a path (names
are lowercase words without a suffix; write ``./latin-print`` for a file of that name).
The card is a file beside the model rather than inside it, so that a rebuild can write the
metrics it measured after the model file exists, and a card can be read without the weights.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CheckpointError

BUNDLED_DIR = Path(__file__).resolve().parent
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
CARD_TEXT_FIELDS = ("description", "modality", "training_data", "licence", "rebuild")


@dataclass(frozen=True)
class ModelCard:
    name: str
    path: Path  # the model file
    description: str
    modality: str
    training_data: str
    licence: str
    rebuild: str  # the command that rebuilds the file from the bundled recipe
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # eval set -> {cer, wer, items}
    extra: dict[str, Any] = field(default_factory=dict)  # everything else the card holds

    @property
    def file_bytes(self) -> int:
        return self.path.stat().st_size


def _read_card(card_path: Path) -> ModelCard:
    name = card_path.stem
    try:
        document = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{card_path}: unreadable model card ({exc})") from None
    if not isinstance(document, dict):
        raise CheckpointError(f"{card_path}: a model card is a JSON object")
    for key in CARD_TEXT_FIELDS:
        if not isinstance(document.get(key), str):
            raise CheckpointError(f"{card_path}: {key}: expected text")
    metrics = document.get("metrics", {})
    if not isinstance(metrics, dict) or not all(isinstance(value, dict) for value in metrics.values()):
        raise CheckpointError(f"{card_path}: metrics: expected a mapping of set name to figures")
    extra = {key: value for key, value in document.items() if key not in CARD_TEXT_FIELDS + ("metrics", "name")}
    return ModelCard(name=name, path=card_path.with_suffix(".pt"), metrics=metrics, extra=extra,
                     **{key: document[key] for key in CARD_TEXT_FIELDS})


def bundled_models(directory: Path | None = None) -> list[ModelCard]:
    """The installed models, by name; a card whose model file is missing is left out."""
    directory = directory or BUNDLED_DIR
    cards = []
    for card_path in sorted(directory.glob("*.json")):
        if _NAME.fullmatch(card_path.stem) and card_path.with_suffix(".pt").is_file():
            cards.append(_read_card(card_path))
    return cards


def bundled_model(name: str, directory: Path | None = None) -> ModelCard | None:
    """The card of the bundled model called ``name``, or None when there is none."""
    directory = directory or BUNDLED_DIR
    if not _NAME.fullmatch(name):
        return None
    card_path = directory / f"{name}.json"
    if not (card_path.is_file() and card_path.with_suffix(".pt").is_file()):
        return None
    return _read_card(card_path)


def bundled_onnx(spec: str, directory: Path | None = None) -> tuple[Path, Path] | None:
    """(the ONNX export, the model file) of the bundled model called ``spec``, when the package
    ships the export (``NAME.onnx``, written by the model's rebuild recipe) and onnxruntime is
    installed to run it; else None. Whether the export is current is checked when it loads."""
    import importlib.util

    card = bundled_model(spec, directory)
    if card is None or not card.path.with_suffix(".onnx").is_file() or importlib.util.find_spec("onnxruntime") is None:
        return None
    return card.path.with_suffix(".onnx"), card.path


def resolve_model(spec: str, directory: Path | None = None) -> str:
    """A model path for ``spec``: the bundled model of that name, else the path itself when it
    exists; neither is an error that lists the bundled names."""
    card = bundled_model(spec, directory)
    if card is not None:
        return str(card.path)
    if os.path.exists(spec):
        return spec
    names = ", ".join(card.name for card in bundled_models(directory)) or "none installed"
    raise CheckpointError(f"{spec}: no such model file, and not a bundled model name (bundled: {names})")
