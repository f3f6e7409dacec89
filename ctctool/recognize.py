"""Decode and align manifest items with a loaded model: the library behind the commands."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .checkpoint import LoadedModel
from .decoding import CompiledScorers, greedy_decode, prefix_beam_search
from .decoding.constants import DEFAULT_BEAM_WIDTH, DEFAULT_PRUNE_LOG_PROB, DEFAULT_TOP_K
from .errors import CodecError, ItemError
from .inference import NetworkOutput, run_network
from .manifest import ManifestItem
from .results import ItemResult, char_spans, hypothesis_result, word_spans


@dataclass(frozen=True)
class DecodeOptions:
    beam: int = DEFAULT_BEAM_WIDTH  # prefix beam width; 1 = greedy best path
    nbest: int = 1  # alternatives to report per input
    prune_log_prob: float = DEFAULT_PRUNE_LOG_PROB  # per-frame symbol cut (natural log)
    top_k: int = DEFAULT_TOP_K  # per-frame symbol cap; 0 = none
    scorers: CompiledScorers | None = None  # LM / lexicon / hotwords bound to the model's codec


def best_hypotheses(model: LoadedModel, log_probs, options: DecodeOptions):
    if options.beam == 1 and options.scorers is None:
        return [greedy_decode(log_probs)]
    return prefix_beam_search(log_probs, options.beam, options.nbest, prune_log_prob=options.prune_log_prob,
                              top_k=options.top_k, scorers=options.scorers, num_classes=model.codec.size)


def decode_output(model: LoadedModel, output: NetworkOutput, options: DecodeOptions) -> ItemResult:
    if output.error is not None:
        return ItemResult(id=output.item.id, path=output.item.path, error=str(output.error))
    hypotheses = best_hypotheses(model, output.log_probs, options)
    if not hypotheses:  # a lexicon no hypothesis could satisfy
        return ItemResult(id=output.item.id, path=output.item.path, text="", score=float("-inf"),
                          unit=output.axis.unit, source_extent=(output.axis.origin, output.axis.extent))
    nbest = tuple((model.codec.decode(h.labels), h.total_score) for h in hypotheses) if options.nbest > 1 else ()
    return hypothesis_result(output.item.id, output.item.path, model.codec, hypotheses[0], output.axis, nbest)


def decode_items(model: LoadedModel, items: Iterable[ManifestItem], *, batch_size: int = 16, device="cpu",
                 options: DecodeOptions = DecodeOptions()) -> Iterator[ItemResult]:
    for output in run_network(model, items, batch_size=batch_size, device=device):
        yield decode_output(model, output, options)


def align_output(model: LoadedModel, output: NetworkOutput, options: DecodeOptions = DecodeOptions()) -> ItemResult:
    """Forced alignment of the item's transcript, or of the decoded text when it has none."""
    from .align import forced_align

    item = output.item
    if output.error is not None:
        return ItemResult(id=item.id, path=item.path, error=str(output.error))
    try:
        if item.text is not None:
            labels = model.codec.encode(item.text)
        else:
            hypotheses = best_hypotheses(model, output.log_probs, options)
            labels = list(hypotheses[0].labels) if hypotheses else []
        alignment = forced_align(output.log_probs, labels, where=item.where)
    except CodecError as exc:
        return ItemResult(id=item.id, path=item.path, error=f"{item.where}: text: {exc}")
    except ItemError as exc:
        return ItemResult(id=item.id, path=item.path, error=str(exc))
    chars = char_spans(model.codec, alignment.labels, alignment.spans, alignment.confidences, output.axis)
    extra = {"aligned": "transcript" if item.text is not None else "decoded"}
    if output.axis.unit == "px":
        y0 = item.bbox[1] if item.bbox else 0
        extra["line_bbox"] = (round(output.axis.origin), y0, round(output.axis.extent), y0 + output.source_height)
    return ItemResult(id=item.id, path=item.path, text=model.codec.decode(alignment.labels),
                      score=alignment.score, unit=output.axis.unit, chars=chars, words=word_spans(chars),
                      source_extent=(output.axis.origin, output.axis.extent), extra=extra)


def align_items(model: LoadedModel, items: Iterable[ManifestItem], *, batch_size: int = 16, device="cpu",
                options: DecodeOptions = DecodeOptions()) -> Iterator[ItemResult]:
    for output in run_network(model, items, batch_size=batch_size, device=device):
        yield align_output(model, output, options)
