"""The training loop: plain PyTorch, readable top to bottom, resumable, DDP-aware.

One process by default (CPU or one GPU with mixed precision). Under ``torchrun`` the same
code runs DistributedDataParallel: each rank takes every world_size-th batch, rank 0
evaluates and writes files.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch.nn import functional as F

from .checkpoint import LoadedModel, atomic_torch_save, plain_state_dict, save_model
from .codec import Codec
from .data import (
    PreparationReport,
    TrainingDataset,
    bucketed_batches,
    collate,
    prepare_training_items,
)
from .errors import CheckpointError, ConfigError, FeatureError, ItemError
from .features import FeatureExtractor
from .manifest import ManifestItem
from .model import CTCRecognizer, ModelConfig, count_parameters
from .version import __version__

RESUME_FILE = "resume.pt"


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30  # passes over the training set (ignored when max_steps is set)
    max_steps: int | None = None  # optimizer steps; overrides epochs
    batch_size: int = 16
    lr: float = 2e-3  # peak AdamW learning rate after warm-up
    weight_decay: float = 1e-2
    warmup_steps: int = 100  # linear warm-up, then cosine decay to lr * final_lr_ratio
    final_lr_ratio: float = 0.02
    grad_clip: float = 5.0  # max global L2 norm of gradients
    eval_every: int | None = None  # steps between validations; None = once per epoch
    patience: int = 0  # validations without improvement before stopping; 0 = never stop early
    seed: int = 0
    augment: bool = True
    lenient: bool = False  # skip (and count) transcript characters outside the alphabet
    skip_bad: bool = False  # skip (and count) unreadable inputs instead of stopping
    num_workers: int = 0  # DataLoader worker processes
    amp: bool = True  # mixed precision (bf16 autocast) on CUDA; ignored on CPU

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError("--batch-size must be at least 1")
        if self.epochs < 1 and self.max_steps is None:
            raise ConfigError("--epochs must be at least 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError("--max-steps must be at least 1")
        if not self.lr > 0:
            raise ConfigError("--lr must be positive")


@dataclass
class TrainResult:
    steps: int
    epochs_done: float
    best_val_cer: float | None
    best_step: int | None
    stopped_early: bool
    report: PreparationReport
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)


class TrainingMonitor(Protocol):
    def start(self, total_steps: int, done_steps: int) -> None: ...
    def step(self, step: int, loss: float, steps_per_second: float) -> None: ...
    def evaluated(self, step: int, metrics: dict[str, Any]) -> None: ...
    def message(self, text: str) -> None: ...
    def close(self) -> None: ...


class SilentMonitor:
    def start(self, total_steps: int, done_steps: int) -> None: ...
    def step(self, step: int, loss: float, steps_per_second: float) -> None: ...
    def evaluated(self, step: int, metrics: dict[str, Any]) -> None: ...
    def message(self, text: str) -> None: ...
    def close(self) -> None: ...


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def modality_of(items: Sequence[ManifestItem]) -> str:
    kinds = {item.kind for item in items}
    if None in kinds:
        bad = next(item for item in items if item.kind is None)
        raise FeatureError(bad.where, f"kind: cannot tell image from audio for {bad.path!r}; add \"kind\"")
    if len(kinds) > 1:
        raise ConfigError(f"a training manifest must hold one kind of input, found {', '.join(sorted(kinds))}")
    return kinds.pop()


def lr_factor(step: int, total: int, warmup: int, final_ratio: float) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine from 1 down to ``final_ratio``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def evaluate(model: LoadedModel, items: Sequence[ManifestItem], *, batch_size: int, device: torch.device,
             skip_bad: bool) -> dict[str, Any]:
    """Greedy CER / WER over items with transcripts (fast: validation runs every epoch)."""
    from .evaluation import evaluate_items
    from .recognize import DecodeOptions

    was_training = model.network.training
    model.network.eval()
    try:
        report = evaluate_items(model, items, batch_size=batch_size, device=device, options=DecodeOptions(beam=1),
                                keep_going=skip_bad)
    finally:
        model.network.train(was_training)
    summary = report.summary
    return {"cer": summary.cer, "wer": summary.wer, "lines": summary.lines, "skipped": len(report.failures)}


def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend=backend)
    rank = torch.distributed.get_rank() if world > 1 else 0
    return rank, world


def train(
    train_items: Sequence[ManifestItem],
    *,
    output: str,
    run_dir: str,
    extractor: FeatureExtractor,
    val_items: Sequence[ManifestItem] = (),
    config: TrainConfig = TrainConfig(),
    model_overrides: dict[str, Any] | None = None,
    codec: Codec | None = None,
    device: str | torch.device = "cpu",
    resume: bool = False,
    monitor: TrainingMonitor | None = None,
    metadata: dict[str, Any] | None = None,
) -> TrainResult:
    """Train a recognizer on ``train_items``; keep the best model (by validation CER) at ``output``.

    ``codec`` fixes the alphabet (transcript characters outside it are an error unless
    ``config.lenient``); by default it is built from the training transcripts.
    """
    monitor = monitor or SilentMonitor()
    started = time.perf_counter()
    rank, world = _distributed()
    device = torch.device(device)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    set_seed(config.seed)
    resume_path = os.path.join(run_dir, RESUME_FILE)
    state: dict[str, Any] | None = None
    if resume:
        if not os.path.exists(resume_path):
            raise CheckpointError(f"{resume_path}: nothing to resume (no resume state in the run folder)")
        try:
            state = torch.load(resume_path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001
            raise CheckpointError(f"{resume_path}: resume state is corrupt ({exc})") from None
        codec = Codec.from_dict(state["codec"])

    modality = modality_of(train_items)
    if extractor.modality != modality:
        raise ConfigError(f"training items are {modality} but the feature extractor is for {extractor.modality}")
    if codec is None:
        codec = Codec.from_texts(item.text or "" for item in train_items)
    overrides = dict(model_overrides or {})
    if state is not None:
        overrides = {k: v for k, v in state["model_config"].items() if k not in ("feature_dim", "num_classes")}
    model_config = ModelConfig(feature_dim=extractor.feature_dim, num_classes=codec.size, **overrides)

    prepared, report = prepare_training_items(train_items, codec, extractor, model_config.pool_time,
                                              lenient=config.lenient, skip_bad=config.skip_bad)
    if report.too_short:
        monitor.message(f"warning: skipped {len(report.too_short)} training items too short for their "
                        f"transcript under CTC (first: {report.too_short[0]})")
    if report.empty_text:
        monitor.message(f"warning: skipped {len(report.empty_text)} training items with no encodable text "
                        f"(first: {report.empty_text[0]})")
    if report.bad_files:
        monitor.message(f"warning: skipped {len(report.bad_files)} unreadable training items "
                        f"(first: {report.bad_files[0]})")
    if report.lenient_skipped_chars:
        from .codec import describe_unknown

        monitor.message(f"warning: --lenient dropped characters outside the alphabet: "
                        f"{describe_unknown(report.lenient_skipped_chars)}")
    if not prepared:
        raise ConfigError("no usable training items remain")

    network = CTCRecognizer(model_config).to(device)
    if state is not None:
        network.load_state_dict(state["model"])
    train_network: torch.nn.Module = network
    if world > 1:
        train_network = torch.nn.parallel.DistributedDataParallel(
            network, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.AdamW(network.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    lengths = [entry.frames for entry in prepared]
    batches_per_epoch = len(bucketed_batches(lengths, config.batch_size, seed=config.seed, epoch=0)) // world
    if batches_per_epoch == 0:
        raise ConfigError(f"too few training items ({len(prepared)}) for {world} processes")
    total_steps = config.max_steps if config.max_steps is not None else config.epochs * batches_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, config.warmup_steps, config.final_lr_ratio))

    step, epoch, batch_in_epoch = 0, 0, 0
    best_cer: float | None = None
    best_step: int | None = None
    stale_evals = 0
    history: list[dict[str, Any]] = []
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, epoch, batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        best_cer, best_step, stale_evals = state["best_cer"], state["best_step"], state["stale_evals"]
        history = list(state.get("history", []))
        torch.set_rng_state(state["torch_rng"])
        monitor.message(f"resuming at step {step} (epoch {epoch + 1}, batch {batch_in_epoch})")

    data_info = dict(metadata or {})
    data_info.setdefault("train_items", len(train_items))
    data_info["train_items_used"] = len(prepared)
    data_info["val_items"] = len(val_items)

    dataset = TrainingDataset(prepared, extractor, augment=config.augment, skip_bad=config.skip_bad)
    use_amp = config.amp and device.type == "cuda"
    evaluator = LoadedModel(network, codec, extractor, model_config, modality, {}, output)
    is_main = rank == 0

    def save_resume() -> None:
        if not is_main:
            return
        atomic_torch_save({
            "format": "ctctool-resume", "ctctool_version": __version__,
            "model": plain_state_dict(network), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "step": step, "epoch": epoch,
            "batch_in_epoch": batch_in_epoch, "best_cer": best_cer, "best_step": best_step,
            "stale_evals": stale_evals, "history": history, "torch_rng": torch.get_rng_state(),
            "recent_loss": recent_loss,
            "codec": codec.to_dict(), "model_config": model_config.to_dict(),
            "train_config": asdict(config),
        }, resume_path)

    def save_best(metrics: dict[str, Any]) -> None:
        if not is_main:
            return
        meta = {**data_info, "steps": step, "epochs": round(step / batches_per_epoch, 3), "seed": config.seed,
                "best_val_cer": metrics.get("cer"), "best_val_wer": metrics.get("wer"),
                "train_config": asdict(config), "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        save_model(output, network, codec, extractor, model_config, meta)

    def validate() -> bool:
        """Evaluate, keep the best model; True when patience has run out."""
        nonlocal best_cer, best_step, stale_evals
        if not is_main:
            return False
        if val_items:
            metrics = evaluate(evaluator, val_items, batch_size=config.batch_size, device=device,
                               skip_bad=config.skip_bad)
        else:
            metrics = {"cer": None, "wer": None, "lines": 0}
        metrics.update(step=step, epoch=round(step / batches_per_epoch, 3), loss=recent_loss)
        history.append(metrics)
        improved = metrics["cer"] is None or best_cer is None or metrics["cer"] < best_cer
        if improved:
            best_cer, best_step, stale_evals = metrics["cer"], step, 0
            save_best(metrics)
        else:
            stale_evals += 1
        metrics["best_cer"] = best_cer
        monitor.evaluated(step, metrics)
        with open(os.path.join(run_dir, "log.jsonl"), "a", encoding="utf-8") as log:
            log.write(json.dumps(metrics) + "\n")
        return config.patience > 0 and stale_evals >= config.patience

    if is_main:
        os.makedirs(run_dir, exist_ok=True)
        with open(os.path.join(run_dir, "config.json"), "w", encoding="utf-8") as handle:
            json.dump({"command": sys.argv, "train_config": asdict(config), "model_config": model_config.to_dict(),
                       "features": extractor.config_dict(), "codec": codec.to_dict(), "device": str(device),
                       "parameters": count_parameters(network), **data_info}, handle, indent=2)
    monitor.start(total_steps, step)
    recent_loss = float(state.get("recent_loss", float("nan"))) if state is not None else float("nan")
    stopped_early = False
    window_start, window_steps = time.perf_counter(), 0
    runtime_skipped = 0  # items that failed to load during training (counted per epoch they appear in)
    network.train()
    while step < total_steps and not stopped_early:
        batches = bucketed_batches(lengths, config.batch_size, seed=config.seed, epoch=epoch)
        batches = batches[rank::world][:batches_per_epoch]
        loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=batches[batch_in_epoch:], collate_fn=collate,
            num_workers=config.num_workers, pin_memory=device.type == "cuda")
        try:
            for batch in loader:
                if batch["errors"]:
                    if not config.skip_bad:
                        raise FeatureError(*batch["errors"][0].split(": ", 1))
                    if not runtime_skipped:
                        monitor.message(f"warning: skipping unreadable training item: {batch['errors'][0]}")
                    runtime_skipped += len(batch["errors"])
                if batch["size"]:
                    features = batch["features"].to(device, non_blocking=True)
                    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
                        log_probs, out_lengths = train_network(features, batch["lengths"].to(device))
                    loss = F.ctc_loss(log_probs.transpose(0, 1), batch["targets"].to(device),
                                      out_lengths, batch["target_lengths"].to(device),
                                      blank=0, reduction="mean", zero_infinity=True)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(network.parameters(), config.grad_clip)
                    optimizer.step()
                    value = float(loss.detach())
                    recent_loss = value if math.isnan(recent_loss) else 0.9 * recent_loss + 0.1 * value
                scheduler.step()
                step += 1
                batch_in_epoch += 1
                window_steps += 1
                elapsed = time.perf_counter() - window_start
                monitor.step(step, recent_loss, window_steps / elapsed if elapsed > 0 else 0.0)
                if elapsed > 10:
                    window_start, window_steps = time.perf_counter(), 0
                at_epoch_end = batch_in_epoch >= batches_per_epoch
                due = (config.eval_every and step % config.eval_every == 0) or (
                    not config.eval_every and at_epoch_end) or step >= total_steps
                if at_epoch_end:
                    epoch, batch_in_epoch = epoch + 1, 0
                if due:
                    stopped_early = validate()
                    save_resume()
                    if stopped_early:
                        monitor.message(f"stopping early: no better validation CER for {config.patience} evaluations")
                if step >= total_steps or stopped_early:
                    break
        except ItemError:
            save_resume()  # whatever was learned so far is kept; the message names the bad item
            raise
    monitor.close()
    if runtime_skipped:
        monitor.message(f"warning: {runtime_skipped} item loads failed during training and were skipped")
    if world > 1:
        torch.distributed.barrier()
    return TrainResult(step, round(step / batches_per_epoch, 3), best_cer, best_step, stopped_early, report,
                       time.perf_counter() - started, history)
