"""ctctool: train, evaluate, run and inspect CTC recognizers for text-line images and audio clips.

The public API is small and imports torch only when used::

    import ctctool
    model = ctctool.load_model("model.pt")
    for result in ctctool.recognize(model, ["line.png"]):
        print(result.text)
"""

from .version import __version__

__all__ = ["__version__", "load_model", "recognize"]


def load_model(path: str, device: str = "cpu"):
    """A model file, loaded safely (``weights_only=True``), ready for ``recognize``."""
    from .checkpoint import load_model as _load

    return _load(path, device)


def recognize(model, inputs, *, batch_size: int = 16, device: str = "cpu", beam: int = 16):
    """Decoded ``ItemResult`` for each input (paths or ManifestItems), in input order."""
    from .manifest import ManifestItem, guess_kind
    from .recognize import DecodeOptions, decode_items

    items = [x if isinstance(x, ManifestItem) else ManifestItem(path=str(x), kind=guess_kind(str(x)), id=str(x))
             for x in inputs]
    return decode_items(model, items, batch_size=batch_size, device=device, options=DecodeOptions(beam=beam))
