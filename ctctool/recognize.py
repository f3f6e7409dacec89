"""Decode and align manifest items with a loaded model: the library behind the commands."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .checkpoint import LoadedModel
from .codec import normalize
from .decoding import greedy_decode
from .errors import CodecError, CtcToolError, ItemError
from .inference import NetworkOutput, run_network
from .manifest import ManifestItem
from .results import ItemResult, char_spans, hypothesis_result, word_spans


@dataclass(frozen=True)
class DecodeOptions:
    beam: int = 1  # 1 = greedy best path
    nbest: int = 1  # alternatives to report per input


def decode_output(model: LoadedModel, output: NetworkOutput, options: DecodeOptions) -> ItemResult:
    if output.error is not None:
        return ItemResult(id=output.item.id, path=output.item.path, error=str(output.error))
    hypothesis = greedy_decode(output.log_probs)
    return hypothesis_result(output.item.id, output.item.path, model.codec, hypothesis, output.axis)


def decode_items(model: LoadedModel, items: Iterable[ManifestItem], *, batch_size: int = 16,
                 device="cpu", beam: int = 1, nbest: int = 1) -> Iterator[ItemResult]:
    options = DecodeOptions(beam=beam, nbest=nbest)
    for output in run_network(model, items, batch_size=batch_size, device=device):
        yield decode_output(model, output, options)


def align_output(model: LoadedModel, output: NetworkOutput) -> ItemResult:
    """Forced alignment of the item's transcript, or of the decoded text when it has none."""
    from .align import forced_align

    item = output.item
    if output.error is not None:
        return ItemResult(id=item.id, path=item.path, error=str(output.error))
    try:
        if item.text is not None:
            labels = model.codec.encode(item.text)
        else:
            labels = list(greedy_decode(output.log_probs).labels)
        alignment = forced_align(output.log_probs, labels, where=item.where)
    except CodecError as exc:
        return ItemResult(id=item.id, path=item.path, error=f"{item.where}: text: {exc}")
    except ItemError as exc:
        return ItemResult(id=item.id, path=item.path, error=str(exc))
    chars = char_spans(model.codec, alignment.labels, alignment.spans, alignment.confidences, output.axis)
    extra = {"aligned": "transcript" if item.text is not None else "decoded"}
    if output.axis.unit == "px":
        y0, height = (item.bbox[1], item.bbox[3] - item.bbox[1]) if item.bbox else (0, None)
        extra["line_bbox"] = (round(output.axis.origin), y0, round(output.axis.extent),
                              y0 + (height if height is not None else _image_height(item)))
    return ItemResult(id=item.id, path=item.path, text=normalize(model.codec.decode(alignment.labels), "none"),
                      score=alignment.score, unit=output.axis.unit, chars=chars, words=word_spans(chars),
                      source_extent=(output.axis.origin, output.axis.extent), extra=extra)


def _image_height(item: ManifestItem) -> int:
    from PIL import Image

    try:
        with Image.open(item.resolved_path) as image:
            return image.height
    except (OSError, ValueError) as exc:
        raise CtcToolError(f"{item.where}: path: cannot read {item.resolved_path}: {exc}") from None


def align_items(model: LoadedModel, items: Iterable[ManifestItem], *, batch_size: int = 16,
                device="cpu") -> Iterator[ItemResult]:
    for output in run_network(model, items, batch_size=batch_size, device=device):
        yield align_output(model, output)
