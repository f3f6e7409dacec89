"""Forced alignment of manifest items: each character and word of the transcript gets a start,
an end and a confidence, through ``ctc.viterbi`` (the compiled search's Viterbi)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .checkpoint import LoadedModel
from .ctc import viterbi
from .errors import CodecError, ItemError
from .inference import NetworkOutput, run_network
from .manifest import ManifestItem
from .recognition import DecodeOptions, best_hypotheses
from .results import ItemResult, char_spans, word_spans


def align_output(model: LoadedModel, output: NetworkOutput, options: DecodeOptions = DecodeOptions()) -> ItemResult:
    """Forced alignment of the item's transcript, or of the decoded text when it has none."""
    item = output.item
    if output.error is not None:
        return ItemResult(id=item.id, path=item.path, error=str(output.error))
    try:
        if item.text is not None:
            labels = model.codec.encode(item.text)
        else:
            hypotheses = best_hypotheses(model, output.log_probs, options)
            labels = list(hypotheses[0].labels) if hypotheses else []
        alignment = viterbi(output.log_probs, labels, where=item.where)
    except CodecError as exc:
        return ItemResult(id=item.id, path=item.path, error=f"{item.where}: text: {exc}")
    except ItemError as exc:
        return ItemResult(id=item.id, path=item.path, error=str(exc))
    chars = char_spans(model.codec, alignment.labels, alignment.spans, alignment.confidences, output.axis)
    line_bbox = None
    if output.axis.unit == "px":
        y0 = item.bbox[1] if item.bbox else 0
        line_bbox = (round(output.axis.start), y0, round(output.axis.extent), y0 + output.source_height)
    return ItemResult(id=item.id, path=item.path, text=model.codec.decode(alignment.labels),
                      score=alignment.score, unit=output.axis.unit, chars=chars, words=word_spans(chars),
                      source_extent=(output.axis.start, output.axis.extent),
                      aligned="transcript" if item.text is not None else "decoded", line_bbox=line_bbox,
                      page_size=output.page_size)


def align_items(model: LoadedModel, items: Iterable[ManifestItem], *, batch_size: int = 16, device="cpu",
                options: DecodeOptions = DecodeOptions()) -> Iterator[ItemResult]:
    for output in run_network(model, items, batch_size=batch_size, device=device):
        yield align_output(model, output, options)
