"""Decode and align manifest items with a loaded model: the library behind the commands."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from .checkpoint import LoadedModel
from .codec import Codec
from .decoding import CompiledScorers, Scorer, greedy_decode, prefix_beam_search
from .decoding.constants import (
    DEFAULT_BEAM_PRUNE,
    DEFAULT_BEAM_WIDTH,
    DEFAULT_LM_ALPHA,
    DEFAULT_LM_BETA,
    DEFAULT_PRUNE_LOG_PROB,
    DEFAULT_TOP_K,
    DEFAULT_UNK_OFFSET,
    MAX_BEAM_WIDTH,
)
from .decoding.kenlm_binary import is_kenlm_binary
from .errors import OptionError
from .inference import NetworkOutput, run_network
from .manifest import ManifestItem
from .results import ItemResult, hypothesis_result


@dataclass(frozen=True)
class DecodeOptions:
    beam: int = DEFAULT_BEAM_WIDTH  # prefix beam width; 1 = greedy best path
    nbest: int = 1  # alternatives to report per input
    prune_log_prob: float = DEFAULT_PRUNE_LOG_PROB  # per-frame symbol cut (natural log); -inf = none
    top_k: int = DEFAULT_TOP_K  # per-frame symbol cap; 0 = none
    beam_prune: float = DEFAULT_BEAM_PRUNE  # prefixes this far (natural log) below the frame's best drop; inf = none
    scorers: CompiledScorers | Scorer | None = None  # LM / lexicon / hotwords bound to the model's codec

    def __post_init__(self) -> None:
        if isinstance(self.beam, bool) or not isinstance(self.beam, int) or not 1 <= self.beam <= MAX_BEAM_WIDTH:
            raise OptionError(f"--beam must be 1 to {MAX_BEAM_WIDTH}, got {self.beam!r}")
        if isinstance(self.nbest, bool) or not isinstance(self.nbest, int) or not 1 <= self.nbest <= MAX_BEAM_WIDTH:
            raise OptionError(f"--nbest must be 1 to {MAX_BEAM_WIDTH}, got {self.nbest!r}")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
            raise OptionError(f"--top-k must be 0 or more, got {self.top_k!r}")
        if isinstance(self.beam_prune, bool) or not isinstance(self.beam_prune, (int, float)) \
                or not self.beam_prune >= 0:
            raise OptionError(f"--beam-prune must be a number of nats >= 0 (inf: off), got {self.beam_prune!r}")
        if math.isnan(self.prune_log_prob) or self.prune_log_prob == math.inf:
            raise OptionError(f"--prune must be a log-probability (a number <= 0, or -inf), got {self.prune_log_prob}")
        if self.scorers is not None and getattr(self.scorers, "active", True) and self.beam == 1:
            raise OptionError("--lm, --lexicon, --hotword and --beta need the beam search: use --beam 2 or more")


def build_decode_options(codec: Codec, *, beam: int = DEFAULT_BEAM_WIDTH, nbest: int = 1,
                         lm: str | Sequence[str] | None = None, alpha: float = DEFAULT_LM_ALPHA,
                         beta: float = DEFAULT_LM_BETA, lexicon: str | None = None,
                         hotwords: Sequence[str] | None = None, prune: float = DEFAULT_PRUNE_LOG_PROB,
                         top_k: int = DEFAULT_TOP_K, unk_offset: float = DEFAULT_UNK_OFFSET,
                         char_alpha: float = DEFAULT_LM_ALPHA, beam_prune: float = DEFAULT_BEAM_PRUNE) -> DecodeOptions:
    """DecodeOptions for a model's codec, loading the scorer files here (the CLI's flags have
    these names). ``lm``: a character LM from ``ctctool lm build``, a word n-gram LM as ARPA
    (``.arpa`` / ``.arpa.gz``, e.g. from ``ctctool lm build --word``), or one of each. With a
    word LM, ``alpha`` and ``beta`` weigh it (beta per word) and ``char_alpha`` weighs the
    character LM; without one, ``alpha`` weighs the character LM and ``beta`` is per character.
    ``lexicon``: a word list; ``hotwords``: ``WORD`` or ``WORD:BOOST`` specs; ``unk_offset``: the
    word LM's score while a word is spelled that starts no vocabulary word (natural log). A
    KenLM binary word LM is read through the ``kenlm`` module and scored by the Python search
    (``decoding.kenlm_binary``): alone, without a character LM, lexicon or hotwords."""
    for name, value in (("alpha", alpha), ("beta", beta), ("prune", prune), ("unk_offset", unk_offset),
                        ("char_alpha", char_alpha)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) \
                or (name != "prune" and not math.isfinite(value)):
            flag = name.replace("_", "-")
            raise OptionError(f"--{flag} must be a {'finite ' if name != 'prune' else ''}number, got {value!r}")
    paths = [lm] if isinstance(lm, str) else list(lm or [])
    word_paths = [p for p in paths if is_word_lm_path(p)]  # reads each file's first bytes once
    char_paths = [p for p in paths if p not in word_paths]
    if len(word_paths) > 1 or len(char_paths) > 1:
        raise OptionError("--lm: give at most one character LM (.npz) and one word LM (.arpa, .arpa.gz, "
                          "KenLM binary)")
    if word_paths and is_kenlm_binary(word_paths[0]):
        if char_paths or lexicon or hotwords:
            raise OptionError(f"--lm {word_paths[0]}: a KenLM binary LM is scored on its own; to combine it "
                              "with a character LM, --lexicon or --hotword, give the ARPA file instead")
        from .decoding.kenlm_binary import KenLMBinaryScorer, load_kenlm

        scorer = KenLMBinaryScorer(load_kenlm(word_paths[0]), codec.labels, alpha=alpha, beta=beta,
                                   unk_offset=unk_offset)
        return DecodeOptions(beam=beam, nbest=nbest, prune_log_prob=float(prune), top_k=top_k, scorers=scorer,
                             beam_prune=beam_prune)
    word_lm = None
    if word_paths:
        from .decoding.word_tables import bind_word_lm, load_word_lm_tables

        word_lm = bind_word_lm(load_word_lm_tables(word_paths[0]), codec.labels, alpha=alpha, beta=beta,
                               unk_offset=unk_offset)
    scorers = None
    if paths or lexicon or hotwords or beta:
        from .decoding.scorers import CharNgramLM, compile_scorers, parse_hotword, read_word_list

        scorers = compile_scorers(
            codec.labels, lm=CharNgramLM.load(char_paths[0]) if char_paths else None,
            alpha=char_alpha if word_lm is not None else alpha, beta=0.0 if word_lm is not None else beta,
            lexicon=read_word_list(lexicon) if lexicon else None,
            hotwords=[parse_hotword(spec) for spec in hotwords] if hotwords else None, word_lm=word_lm)
    return DecodeOptions(beam=beam, nbest=nbest, prune_log_prob=float(prune), top_k=top_k, scorers=scorers,
                         beam_prune=beam_prune)


def is_word_lm_path(path: str) -> bool:
    return path.endswith((".arpa", ".arpa.gz")) or is_kenlm_binary(path)


def best_hypotheses(model: LoadedModel, log_probs, options: DecodeOptions):
    if options.beam == 1 and options.scorers is None:
        return [greedy_decode(log_probs)]
    return prefix_beam_search(log_probs, options.beam, options.nbest, prune_log_prob=options.prune_log_prob,
                              top_k=options.top_k, scorers=options.scorers, num_classes=model.codec.size,
                              beam_prune=options.beam_prune)


def decode_output(model: LoadedModel, output: NetworkOutput, options: DecodeOptions) -> ItemResult:
    if output.error is not None:
        return ItemResult(id=output.item.id, path=output.item.path, error=str(output.error))
    hypotheses = best_hypotheses(model, output.log_probs, options)
    if not hypotheses:  # a lexicon no hypothesis could satisfy
        return ItemResult(id=output.item.id, path=output.item.path, text="", score=float("-inf"),
                          unit=output.axis.unit, source_extent=(output.axis.start, output.axis.extent))
    nbest = tuple((model.codec.decode(h.labels), h.total_score) for h in hypotheses) if options.nbest > 1 else ()
    return hypothesis_result(output.item.id, output.item.path, model.codec, hypotheses[0], output.axis, nbest)


def decode_items(model: LoadedModel, items: Iterable[ManifestItem], *, batch_size: int = 16, device="cpu",
                 options: DecodeOptions = DecodeOptions()) -> Iterator[ItemResult]:
    for output in run_network(model, items, batch_size=batch_size, device=device):
        yield decode_output(model, output, options)
