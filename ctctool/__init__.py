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


def recognize(model, inputs, *, batch_size: int = 16, device: str = "cpu", **decode_options):
    """Decoded ``ItemResult`` for each input (paths or ManifestItems), in input order.

    ``decode_options`` are ``build_decode_options``'s: ``beam``, ``nbest``, ``lm`` (a file from
    ``ctctool lm build``), ``alpha``, ``beta``, ``lexicon`` (a word-list file), ``hotwords``
    (``["seven:2"]``), ``prune``, ``top_k``.
    """
    from .manifest import ManifestItem, items_from_paths
    from .recognition import build_decode_options, decode_items

    inputs = list(inputs)
    paths = iter(items_from_paths([(str(x), str(x)) for x in inputs if not isinstance(x, ManifestItem)], root="."))
    items = [x if isinstance(x, ManifestItem) else next(paths) for x in inputs]
    options = build_decode_options(model.codec, **decode_options)
    return decode_items(model, items, batch_size=batch_size, device=device, options=options)
