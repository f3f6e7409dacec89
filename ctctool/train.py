"""The training loop: plain PyTorch, readable top to bottom, resumable, DDP-aware.

One process by default (CPU or one GPU with mixed precision). Under ``torchrun`` the same
code runs DistributedDataParallel: each rank takes every world_size-th batch, rank 0
evaluates and writes files, and every decision that changes the control flow (skip a
batch, stop early) is taken by all ranks together, so none waits forever for the others.

The resume file *is* ``TrainState.to_dict()`` plus the weights, optimizer, scheduler and
RNG states. Batch order and augmentation are pure functions of (seed, epoch, item), and the
DataLoader draws from its own generator, so a run killed anywhere and resumed from its last
checkpoint trains bit for bit as the uninterrupted run did.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import math
import os
import random
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol

import numpy as np
import torch
from torch.nn import functional as F

from .augmentation import OPERATIONS, AugmentPolicy, warmup_scale
from .averaging import WeightAverage
from .checkpoint import (
    LoadedModel,
    atomic_torch_save,
    plain_state_dict,
    safe_torch_load,
    save_model,
)
from .codec import Codec
from .data import (
    Batch,
    KeptExtractor,
    PreparationReport,
    PreparedCache,
    TrainingDataset,
    bucketed_batches,
    collate,
    prepare_training_items,
)
from .errors import CheckpointError, ConfigError, FeatureError, OptionError, TrainingError
from .features import FeatureExtractor
from .fileio import atomic_write, check_writable, remove_stale_temp_files
from .finetune import FineTuneStart
from .manifest import ManifestItem
from .model import CTCRecognizer, ModelConfig, NetworkShape, count_parameters
from .prefetch import prefetch_depth, read_ahead
from .threads import check_workers, cores_per_process, default_workers
from .version import __version__

RESUME_FILE = "resume.pt"
RESUME_FORMAT = "ctctool-resume"
RESUME_VERSION = 3
READABLE_RESUME_VERSIONS = (2, 3)  # 2 had no weight average


MAX_CACHE_MB = 1 << 20  # 1 TiB: a typo's bound, not a machine's


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
    augment: str = "default"  # augmentation policy: a preset (none/light/default/strong) and ",-OP" removals
    augment_warmup: float = 0.3  # fraction of the steps over which augmentation grows from none to full
    ema: float | None = 0.999  # decay per step of the weight average validated and saved; None = off
    lenient: bool = False  # skip (and count) transcript characters outside the alphabet
    skip_bad: bool = False  # skip (and count) unreadable inputs and non-finite batches instead of stopping
    num_workers: int | None = None  # DataLoader worker processes; None = threads.default_workers for the device
    # Memory for prepared training inputs kept between epochs (data.PreparedCache), MiB; 0 = none
    # kept. Used without DataLoader workers only: workers are started afresh each epoch.
    cache_mb: int = 1024
    amp: bool = True  # mixed precision (bf16 autocast) on CUDA; ignored on CPU
    select_by: str | None = None  # the validation set whose CER picks the best model; None = the first
    max_time: float | None = None  # seconds of wall clock for this invocation's training loop; None = no limit
    accumulate: int = 1  # batches whose gradients are summed per optimizer step (effective batch = batch x this)
    # The pair measured best in make bench-recipe (1,200-step OCR runs: unseen fonts CER 6.53% -> 3.61%).
    schedule: str = "onecycle"  # learning-rate shape: "onecycle" or "cosine" (warm-up + cosine)
    label_smoothing: float = 0.1  # weight of the per-frame cross-entropy to the uniform distribution

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError("--batch-size must be at least 1")
        if self.num_workers is not None:
            check_workers(self.num_workers)
        if self.epochs < 1 and self.max_steps is None:
            raise ConfigError("--epochs must be at least 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError("--max-steps must be at least 1")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError("--lr must be a positive finite number")
        if isinstance(self.weight_decay, bool) or not (isinstance(self.weight_decay, (int, float))
                                                        and math.isfinite(self.weight_decay)
                                                        and self.weight_decay >= 0):
            raise OptionError(f"--weight-decay must be a finite number >= 0, got {self.weight_decay!r}")
        if isinstance(self.augment, bool):  # older callers: True / False
            object.__setattr__(self, "augment", "default" if self.augment else "none")
        object.__setattr__(self, "augment", str(AugmentPolicy.parse(self.augment)))
        if not (isinstance(self.augment_warmup, (int, float)) and 0.0 <= self.augment_warmup <= 1.0):
            raise OptionError(f"--augment-warmup must be a fraction of the run in [0, 1], got {self.augment_warmup!r}")
        if self.ema is not None and not (isinstance(self.ema, float) and 0.0 < self.ema < 1.0):
            raise OptionError(f"--ema must be a decay between 0 and 1 (such as 0.999), got {self.ema!r}")
        if self.max_time is not None and not (math.isfinite(self.max_time) and self.max_time > 0):
            raise OptionError(f"--max-time must be a positive duration, got {self.max_time!r} seconds")
        if isinstance(self.accumulate, bool) or not isinstance(self.accumulate, int) or self.accumulate < 1:
            raise OptionError(f"--accumulate must be a whole number of batches >= 1, got {self.accumulate!r}")
        if isinstance(self.cache_mb, bool) or not isinstance(self.cache_mb, int) or not 0 <= self.cache_mb <= MAX_CACHE_MB:
            raise OptionError(f"--cache-mb must be a whole number of MiB in [0, {MAX_CACHE_MB}], got {self.cache_mb!r}")
        if self.schedule not in SCHEDULES:
            raise OptionError(f"--schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if not (isinstance(self.label_smoothing, (int, float)) and 0.0 <= self.label_smoothing < 1.0):
            raise OptionError(f"--label-smoothing must be a weight in [0, 1), got {self.label_smoothing!r}")


@dataclass
class TrainState:
    """Where a run stands. Saved in the resume file after every validation."""

    step: int = 0  # optimizer steps taken (skipped batches count: the schedule does not stretch)
    epoch: int = 0  # epochs begun (0-based)
    batch_in_epoch: int = 0  # this rank's batches done in the current epoch
    best_cer: float | None = None  # best validation CER so far
    best_step: int | None = None  # the step that reached it (the model at -o)
    stale_evals: int = 0  # validations since the last improvement
    recent_loss: float = math.nan  # exponential moving average of the training loss
    history: list[dict[str, Any]] = field(default_factory=list)  # one row per validation (= log.jsonl)
    skipped_items: int = 0  # items that failed to load during training, under --skip-bad
    skipped_batches: int = 0  # batches with non-finite features, loss or gradients, under --skip-bad

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, source: str) -> TrainState:
        if not isinstance(data, dict):
            raise CheckpointError(f"{source}: state: expected a mapping")
        values = {}
        for f in fields(cls):
            if f.name not in data:
                raise CheckpointError(f"{source}: state.{f.name}: missing")
            values[f.name] = data[f.name]
        for name in ("step", "epoch", "batch_in_epoch", "stale_evals", "skipped_items", "skipped_batches"):
            if isinstance(values[name], bool) or not isinstance(values[name], int) or values[name] < 0:
                raise CheckpointError(f"{source}: state.{name}: expected a count, got {values[name]!r}")
        if not isinstance(values["history"], list):
            raise CheckpointError(f"{source}: state.history: expected a list")
        return cls(**values)


@dataclass
class TrainResult:
    steps: int
    epochs_done: float
    best_val_cer: float | None
    best_step: int | None
    stopped_early: bool  # by --patience or by --max-time
    report: PreparationReport
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)
    out_of_time: bool = False  # --max-time ended the run before its step budget


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


def modality_of(items: Sequence[ManifestItem]) -> str:
    if not items:
        raise ConfigError("the training manifest holds no items")
    kinds = {item.kind for item in items}
    if None in kinds:
        bad = next(item for item in items if item.kind is None)
        raise FeatureError(bad.where, f"kind: cannot tell image from audio for {bad.path!r}; add \"kind\"")
    if len(kinds) > 1:
        raise ConfigError(f"a training manifest must hold one kind of input, found {', '.join(sorted(kinds))}")
    return kinds.pop()


SCHEDULES = ("cosine", "onecycle")
# One-cycle (Smith & Topin 2017, torch's OneCycleLR defaults): a cosine rise from lr/25 over the
# first 30% of the steps, then a cosine fall to lr/25/1e4.
ONECYCLE_RISE, ONECYCLE_START, ONECYCLE_END = 0.3, 1 / 25, 1 / 25 / 1e4


def lr_factor(step: int, total: int, warmup: int, final_ratio: float, schedule: str = "cosine") -> float:
    """The learning rate at ``step`` (0-based) as a fraction of the peak. ``cosine``: linear
    warm-up over ``warmup`` steps, then cosine from 1 down to ``final_ratio``. ``onecycle``: see
    ONECYCLE_*; ``warmup`` and ``final_ratio`` are not used."""
    if schedule == "onecycle":
        rise = max(1, round(ONECYCLE_RISE * total))
        if step < rise:
            return ONECYCLE_START + (1 - ONECYCLE_START) * 0.5 * (1 - math.cos(math.pi * step / rise))
        progress = min(1.0, (step - rise) / max(1, total - rise))
        return ONECYCLE_END + (1 - ONECYCLE_END) * 0.5 * (1 + math.cos(math.pi * progress))
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def ctc_objective(log_probs: torch.Tensor, out_lengths: torch.Tensor, targets: torch.Tensor,
                  target_lengths: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """The training loss: CTC (natural log, per target label, averaged over the batch), mixed
    with weight ``label_smoothing`` with each frame's cross-entropy to the uniform distribution
    over the classes, normalized the same way (summed over an item's valid frames, divided by
    its target length), which keeps the posteriors from collapsing to one-hot peaks.

    ``log_probs``: [batch, frames, classes]; ``out_lengths``: valid frames per item."""
    ctc = F.ctc_loss(log_probs.transpose(0, 1), targets, out_lengths, target_lengths, blank=0, reduction="mean",
                     zero_infinity=True)
    if label_smoothing == 0.0:
        return ctc
    frames = torch.arange(log_probs.shape[1], device=log_probs.device)
    valid = (frames[None, :] < out_lengths[:, None]).to(log_probs.dtype)  # [batch, frames]
    uniform_ce = -(log_probs.float().mean(dim=2) * valid).sum(dim=1) / target_lengths.clamp(min=1).to(valid.dtype)
    return (1.0 - label_smoothing) * ctc + label_smoothing * uniform_ce.mean()


def evaluate(model: LoadedModel, items: Sequence[ManifestItem], *, batch_size: int, device: torch.device,
             skip_bad: bool) -> dict[str, Any]:
    """Greedy CER / WER over items with transcripts (fast: validation runs every epoch).
    ``cer`` is None when no item could be scored."""
    from .evaluation import evaluate_items
    from .recognition import DecodeOptions

    was_training = model.network.training
    model.network.eval()
    try:
        report = evaluate_items(model, items, batch_size=batch_size, device=device, options=DecodeOptions(beam=1),
                                keep_going=skip_bad)
    finally:
        model.network.train(was_training)
    summary = report.summary
    return {"cer": summary.cer, "wer": summary.wer, "lines": summary.lines, "skipped": len(report.failures)}


# ---------------------------------------------------------------- distributed helpers


def _distributed(device: torch.device) -> tuple[int, int, torch.device]:
    """(rank, world size, this rank's device) under torchrun, the process group started: NCCL
    when the run trains on GPUs, gloo on the CPU. The backend follows the device asked for, not
    what the machine has: --device cpu on a GPU machine handed CPU tensors to NCCL, and every
    rank failed."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, device
    device = _rank_device(device, world)  # before the process group: NCCL binds to it
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend=distributed_backend(device))
    return torch.distributed.get_rank(), world, device


def distributed_backend(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def _rank_device(device: torch.device, world: int) -> torch.device:
    """Under torchrun each process trains on the GPU of its local rank (one GPU per process)."""
    if world <= 1 or device.type != "cuda":
        return device
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    visible = torch.cuda.device_count()
    if local_rank >= visible:
        raise ConfigError(f"torchrun started process {local_rank} on a node where only {visible} GPU(s) "
                          f"are visible: use --nproc_per_node {visible} or fewer (one process per GPU), "
                          "or --device cpu")
    return torch.device("cuda", local_rank)


def _any_rank(flag: bool, world: int, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on any: one decision for all."""
    if world == 1:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
    return bool(value.item() > 0)


# ---------------------------------------------------------------- one run's fixed parts


@dataclass
class _Run:
    """What stays fixed through a run (the loop's mutable state is in TrainState)."""

    config: TrainConfig
    network: CTCRecognizer  # unwrapped; saved and evaluated
    train_network: torch.nn.Module  # the DDP wrapper under torchrun, else the network
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    codec: Codec
    extractor: FeatureExtractor
    model_config: ModelConfig
    modality: str
    device: torch.device
    rank: int
    world: int
    output: str
    run_dir: str
    val_sets: dict[str, Sequence[ManifestItem]]  # name -> items; every one is scored at each validation
    batches_per_epoch: int  # optimizer steps per epoch on each rank (each takes config.accumulate batches)
    total_steps: int
    data_info: dict[str, Any]
    monitor: TrainingMonitor
    average: WeightAverage | None = None  # --ema: validated and saved instead of the live weights
    bucket_lengths: str = "prepared"  # what the batches are grouped by: BUCKET_LENGTHS
    prefetch: int = 0  # batches a thread reads ahead of the step (0: read between steps); see prefetch
    cache_noted: bool = False  # the note that --cache-mb is full was given
    val_extractor: FeatureExtractor | None = None  # validation's, keeping its prepared inputs; else extractor
    # Seconds since the last validation: waiting for the next batch (data loading not hidden
    # by workers or the read-ahead thread), forward + loss + backward + clipping, optimizer step + weight average.
    timing: dict[str, float] = field(default_factory=lambda: dict.fromkeys(TIMING_PARTS, 0.0) | {"steps": 0})

    @property
    def eval_network(self) -> CTCRecognizer:
        return self.average.network if self.average is not None else self.network

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def select_by(self) -> str | None:
        return self.config.select_by or next(iter(self.val_sets), None)

    @property
    def resume_path(self) -> str:
        return os.path.join(self.run_dir, RESUME_FILE)


def _rng_states(device: torch.device) -> dict[str, Any]:
    states: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def _restore_rng(states: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(states["torch"])
    if device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"], device)


def save_resume(run: _Run, state: TrainState, rng: dict[str, Any] | None = None, *, every_rank: bool = True) -> None:
    """Write the resume file (rank 0). ``every_rank``: all ranks are here together, so each
    rank's RNG state is gathered and saved: dropout draws as many numbers as its batch has
    elements, so the ranks' generators drift apart, and a resume that gave every rank rank 0's
    state would train differently from the uninterrupted run."""
    rng = rng or _rng_states(run.device)
    rank_rng = None
    if run.world > 1 and every_rank:
        rank_rng = [None] * run.world
        torch.distributed.all_gather_object(rank_rng, {k: v.cpu() for k, v in rng.items()})
    if not run.is_main:
        return
    atomic_torch_save({
        "format": RESUME_FORMAT, "version": RESUME_VERSION, "ctctool_version": __version__,
        "state": state.to_dict(), "rng": rng, "rank_rng": rank_rng,
        "model": plain_state_dict(run.network), "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(), "codec": run.codec.to_dict(),
        "model_config": run.model_config.to_dict(), "train_config": asdict(run.config),
        "ema": run.average.state_dict() if run.average is not None else None,
        "augment_ops": list(OPERATIONS), "bucket_lengths": run.bucket_lengths,
    }, run.resume_path)


def load_resume(path: str) -> dict[str, Any]:
    """The resume file, with every key the loop needs checked (a missing one is named)."""
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: nothing to resume (no resume state in the run folder)")
    data = safe_torch_load(path, "resume file")
    if not isinstance(data, dict) or data.get("format") != RESUME_FORMAT:
        raise CheckpointError(f"{path}: not a ctctool resume file")
    if data.get("version") not in READABLE_RESUME_VERSIONS:
        raise CheckpointError(f"{path}: resume file version {data.get('version')!r} is not one this ctctool "
                              f"reads ({', '.join(map(str, READABLE_RESUME_VERSIONS))}); start a new run")
    for key in ("state", "rng", "model", "optimizer", "scheduler", "codec", "model_config"):
        if key not in data:
            raise CheckpointError(f"{path}: {key}: missing from the resume file")
    if not isinstance(data["rng"], dict) or not isinstance(data["rng"].get("torch"), torch.Tensor):
        raise CheckpointError(f"{path}: rng.torch: missing from the resume file")
    rank_rng = data.get("rank_rng")
    if rank_rng is not None and (not isinstance(rank_rng, list) or not all(
            isinstance(r, dict) and isinstance(r.get("torch"), torch.Tensor) for r in rank_rng)):
        raise CheckpointError(f"{path}: rank_rng: expected one RNG state per rank")
    ops = data.get("augment_ops")
    if ops is not None and not (isinstance(ops, list) and all(isinstance(op, str) for op in ops)):
        raise CheckpointError(f"{path}: augment_ops: expected a list of operation names")
    data["bucket_lengths"] = data.get("bucket_lengths", "header")  # files from before it was recorded
    if data["bucket_lengths"] not in BUCKET_LENGTHS:
        raise CheckpointError(f"{path}: bucket_lengths: expected one of {', '.join(BUCKET_LENGTHS)}")
    data["state"] = TrainState.from_dict(data["state"], path)
    try:
        data["codec"] = Codec.from_dict(data["codec"])
        data["model_config"] = ModelConfig.from_dict(data["model_config"])
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"{path}: codec or model_config is unusable ({exc})") from None
    return data


# What the batches of an epoch are grouped by (``bucketed_batches``): "prepared", each item's size
# as its preparation gives it (runs begun since 2026-12-06), or "header", the size read from file
# headers (earlier runs). A centre-normalized line is 0.5-2x its plainly scaled width, so grouping
# by headers padded the bundled OCR batches to 1.20x their lines' columns (1.03x grouped by
# prepared widths) and the handwriting bench's to 1.29x (1.04x). A resume keeps its run's choice:
# the batches must be the ones the interrupted run would have drawn.
BUCKET_LENGTHS = ("prepared", "header")


def bucket_lengths_of_run(resumed: dict[str, Any] | None) -> str:
    """What a run groups its batches by: "prepared" when new, else the resumed run's own choice
    (``load_resume`` reads a file that predates the choice as "header")."""
    return "prepared" if resumed is None else resumed["bucket_lengths"]


# The augmentation operations a resume file written before it recorded them knew: all of
# today's but the per-letter jitter (added 2026-12-05) and the lower recording bandwidth (2026-12-07).
OPS_BEFORE_RECORDED = tuple(op for op in OPERATIONS if op not in ("letters", "bandwidth"))


def augmentation_of_run(config: TrainConfig, resumed: dict[str, Any], monitor: TrainingMonitor) -> TrainConfig:
    """``config`` with the augmentation operations added since the interrupted run began left out,
    so that a resume sees the inputs the run would have seen (resume stays exact across an
    upgrade that adds an operation to the presets)."""
    known = set(resumed.get("augment_ops") or OPS_BEFORE_RECORDED)
    policy = AugmentPolicy.parse(config.augment)
    newer = {op for op in OPERATIONS if op not in known} - policy.disabled
    if not newer or policy.preset == "none":
        return config
    kept = AugmentPolicy(policy.preset, policy.disabled | newer)
    monitor.message(f"resume: augmentation {kept} (the run began before {', '.join(sorted(newer))} existed)")
    return dataclasses.replace(config, augment=str(kept))


def save_best(run: _Run, state: TrainState, metrics: dict[str, Any]) -> None:
    if not run.is_main:
        return
    meta = {**run.data_info, "steps": state.step, "epochs": round(state.step / run.batches_per_epoch, 3),
            "seed": run.config.seed, "best_val_cer": metrics.get("cer"), "best_val_wer": metrics.get("wer"),
            "val_scores": metrics.get("sets", {}), "select_by": run.select_by,
            "train_config": asdict(run.config), "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    save_model(run.output, run.eval_network, run.codec, run.extractor, run.model_config, meta)


def write_log(run: _Run, history: list[dict[str, Any]]) -> None:
    """log.jsonl is the validation history: rewritten whole, so a resumed run never repeats rows."""
    if not run.is_main:
        return
    with atomic_write(os.path.join(run.run_dir, "log.jsonl"), "w", encoding="utf-8") as handle:
        for row in history:
            handle.write(json.dumps(row) + "\n")


def validate(run: _Run, state: TrainState) -> bool:
    """Evaluate on rank 0 and keep the best model; True (on every rank) when patience ran out."""
    stop = False
    if run.is_main:
        evaluator = LoadedModel(run.eval_network, run.codec, run.val_extractor or run.extractor, run.model_config,
                                run.modality, {}, run.output)
        scores = {name: evaluate(evaluator, items, batch_size=run.config.batch_size, device=run.device,
                                 skip_bad=run.config.skip_bad) for name, items in run.val_sets.items()}
        selected = scores.get(run.select_by, {"cer": None, "wer": None, "lines": 0})
        metrics = {"cer": selected["cer"], "wer": selected["wer"], "lines": selected["lines"],
                   "step": state.step, "epoch": round(state.step / run.batches_per_epoch, 3),
                   "loss": state.recent_loss}
        if len(scores) > 1:
            metrics["select_by"] = run.select_by
            metrics["sets"] = scores
        steps = max(1, int(run.timing["steps"]))
        metrics["ms_per_step"] = {part: round(1000 * run.timing[part] / steps, 1) for part in TIMING_PARTS}
        if not run.val_sets:
            improved = True  # no validation data: the latest model is the one to keep
        elif metrics["cer"] is None:
            improved = False
            run.monitor.message("warning: no validation item could be scored; the model at -o is not replaced")
        else:
            improved = state.best_cer is None or metrics["cer"] < state.best_cer
        if improved:
            save_best(run, state, metrics)
            state.best_cer, state.best_step, state.stale_evals = metrics["cer"], state.step, 0
        else:
            state.stale_evals += 1
        metrics["best_cer"] = state.best_cer
        state.history.append(metrics)
        write_log(run, state.history)
        run.monitor.evaluated(state.step, metrics)
        stop = run.config.patience > 0 and state.stale_evals >= run.config.patience
    run.timing.update(dict.fromkeys(TIMING_PARTS, 0.0), steps=0)
    return _any_rank(stop, run.world, run.device)


TIMING_PARTS = ("load", "forward_backward", "optimizer")


def train_step(run: _Run, batches: Sequence[Batch], state: TrainState) -> None:
    """One optimizer step on ``batches`` (one, or the ``--accumulate`` batches whose gradients
    are summed, each weighted by its share of the step's items, so the step is the one a single
    batch of all of them would take). Non-finite features, loss or gradients are never applied:
    the step is skipped (``skip_bad``) or training stops with an error naming its items."""
    started = time.perf_counter()
    total_items = sum(batch.size for batch in batches)
    # A forward pass in training mode updates the BatchNorm running statistics: keep a copy, so
    # a batch whose activations overflow cannot leave infinite variances behind in the model.
    buffers = [buffer.detach().clone() for buffer in run.network.buffers()]
    run.optimizer.zero_grad(set_to_none=True)
    summed, bad, loss, where = None, False, None, None  # summed: the step's loss, on the device
    for number, batch in enumerate(batches):
        where = batch
        # Under DDP, gradients are all-reduced once, on the group's last backward pass.
        last = number == len(batches) - 1
        with contextlib.nullcontext() if last or run.world == 1 else run.train_network.no_sync():
            features = batch.features.to(run.device, non_blocking=True)
            bad = not bool(torch.isfinite(features).all())
            loss = None
            if not bad:
                with torch.autocast(device_type=run.device.type, dtype=torch.bfloat16,
                                    enabled=run.config.amp and run.device.type == "cuda"):
                    log_probs, out_lengths = run.train_network(features, batch.lengths.to(run.device))
                loss = ctc_objective(log_probs, out_lengths, batch.targets.to(run.device),
                                     batch.target_lengths.to(run.device), run.config.label_smoothing)
                checks = [torch.isfinite(loss)] + [torch.isfinite(buffer).all() for buffer in run.network.buffers()
                                                   if buffer.is_floating_point()]
                bad = not bool(torch.stack(checks).all())  # one device sync for all of them
            if _any_rank(bad, run.world, run.device):  # once per batch on every rank
                bad = True
                break
            share = batch.size / total_items  # 1 without --accumulate
            (loss * share if share != 1.0 else loss).backward()
            part = loss.detach() * share
            summed = part if summed is None else summed + part
    if not bad:
        grad_norm = torch.nn.utils.clip_grad_norm_(run.network.parameters(), run.config.grad_clip)
        if not _any_rank(not bool(torch.isfinite(grad_norm)), run.world, run.device):
            backward_done = time.perf_counter()  # bool() above waited for the device
            run.optimizer.step()
            if run.average is not None:
                run.average.update(run.network)
            value = float(summed)  # waits for the device: the optimizer's time is all in
            run.timing["forward_backward"] += backward_done - started
            run.timing["optimizer"] += time.perf_counter() - backward_done
            state.recent_loss = value if math.isnan(state.recent_loss) else 0.9 * state.recent_loss + 0.1 * value
            return
    run.optimizer.zero_grad(set_to_none=True)
    with torch.no_grad():  # the step is not applied: undo what its forward passes did to the buffers
        for buffer, saved in zip(run.network.buffers(), buffers):
            buffer.copy_(saved)
    wheres = list(where.wheres) if where is not None else []
    items = ", ".join(wheres[:4]) + (f" and {len(wheres) - 4} more" if len(wheres) > 4 else "")
    what = "features" if loss is None else "activations, loss or gradients"
    if not run.config.skip_bad:
        raise TrainingError(f"non-finite {what} in the batch of {items} at step {state.step + 1}; fix or "
                            "remove those items, or train with --skip-bad to skip such batches")
    state.skipped_batches += 1
    run.monitor.message(f"warning: skipped a batch with non-finite {what} at step {state.step + 1}: {items}")


def _report_preparation(report: PreparationReport, monitor: TrainingMonitor) -> None:
    for skipped, what in ((report.too_short, "training items too short for their transcript under CTC"),
                          (report.empty_text, "training items with no encodable text"),
                          (report.bad_files, "unreadable training items")):
        if skipped:
            monitor.message(f"warning: skipped {len(skipped)} {what} (first: {skipped[0]})")
    if report.lenient_skipped_chars:
        from .codec import describe_unknown

        monitor.message(f"warning: --lenient dropped characters outside the alphabet: "
                        f"{describe_unknown(report.lenient_skipped_chars)}")


def _epoch_loader(run: _Run, dataset: TrainingDataset, state: TrainState, lengths: list[int]):
    batches = bucketed_batches(lengths, run.config.batch_size, seed=run.config.seed, epoch=state.epoch)
    accumulate = run.config.accumulate
    batches = batches[run.rank::run.world][:run.batches_per_epoch * accumulate]
    # Each entry gets the augmentation warm-up's scale for the step that batch is trained at:
    # a pure function of (epoch, position), so a resumed run draws the same inputs.
    first_step = state.epoch * run.batches_per_epoch
    batches = [[(index, seed, warmup_scale(first_step + position // accumulate, run.total_steps,
                                           run.config.augment_warmup))
                for index, seed in batch] for position, batch in enumerate(batches)]
    # The loader draws its worker seed from its own generator, not the global RNG, so where a
    # loader starts (an epoch's first batch, or mid-epoch after a resume) does not change the
    # dropout masks that follow.
    generator = torch.Generator().manual_seed(run.config.seed * 1_000_003 + state.epoch)
    return torch.utils.data.DataLoader(dataset, batch_sampler=batches[state.batch_in_epoch:], collate_fn=collate,
                                       num_workers=run.config.num_workers, pin_memory=run.device.type == "cuda",
                                       generator=generator)


def train(
    train_items: Sequence[ManifestItem],
    *,
    output: str,
    run_dir: str,
    extractor: FeatureExtractor,
    val_items: Sequence[ManifestItem] | Mapping[str, Sequence[ManifestItem]] = (),
    config: TrainConfig = TrainConfig(),
    shape: NetworkShape | None = None,
    codec: Codec | None = None,
    device: str | torch.device = "cpu",
    resume: bool = False,
    monitor: TrainingMonitor | None = None,
    metadata: dict[str, Any] | None = None,
    init: FineTuneStart | None = None,
) -> TrainResult:
    """Train a recognizer on ``train_items``; keep the best model (by validation CER) at ``output``.

    ``val_items`` is one validation set, or several by name (``{"val": ..., "heldout": ...}``):
    each is scored at every validation, and ``config.select_by`` (default: the first) picks
    the best model. ``codec`` fixes the alphabet (transcript characters outside it are an error unless
    ``config.lenient``); by default it is built from the training transcripts. ``shape`` picks
    the network (``ModelConfig.for_modality``); a resumed run keeps the one it was started with.
    ``init`` (``finetune.fine_tune_start``) starts from a parent model's weights, codec and network
    instead; ``codec`` and ``shape`` are then not used.
    """
    monitor = monitor or SilentMonitor()
    started = time.perf_counter()
    rank, world, device = _distributed(torch.device(device))
    if config.num_workers is None:  # resolved here: the recorded config says what ran
        config = dataclasses.replace(config, num_workers=default_workers(gpu=device.type == "cuda"))
    check_writable(output, "model")
    check_writable(os.path.join(run_dir, RESUME_FILE), "resume state")
    if rank == 0:
        remove_stale_temp_files(run_dir, os.path.dirname(os.path.abspath(output)))
    set_seed(config.seed)
    resumed = load_resume(os.path.join(run_dir, RESUME_FILE)) if resume else None
    if resumed is not None:
        config = augmentation_of_run(config, resumed, monitor)

    val_sets = dict(val_items) if isinstance(val_items, Mapping) else ({"val": val_items} if val_items else {})
    if config.select_by is not None and config.select_by not in val_sets:
        raise OptionError(f"--select-by {config.select_by!r}: no validation set of that name "
                          f"(have: {', '.join(val_sets) or 'none'})")
    modality = modality_of(train_items)
    if extractor.modality != modality:
        raise ConfigError(f"training items are {modality} but the feature extractor is for {extractor.modality}")
    if resumed is not None:
        codec, model_config = resumed["codec"], resumed["model_config"]
    elif init is not None:
        codec, model_config = init.codec, init.model_config
    else:
        codec = codec or Codec.from_texts(item.text or "" for item in train_items)
        model_config = ModelConfig.for_modality(modality, extractor.feature_dim, codec.size, shape)

    bucket_by = bucket_lengths_of_run(resumed)
    # Kept prepared inputs (the lines read in full to measure them first, where they are).
    cache = PreparedCache.for_training(config.cache_mb, config.num_workers)
    # Lines are measured before any step, in as many processes as the run has torch threads:
    # the cores it was given (a busy machine's default leaves the busy cores alone).
    prepared, report = prepare_training_items(train_items, codec, extractor, model_config.pool_time,
                                              lenient=config.lenient, skip_bad=config.skip_bad,
                                              exact_frames=bucket_by == "prepared", cache=cache,
                                              processes=torch.get_num_threads())
    _report_preparation(report, monitor)
    if not prepared:
        raise ConfigError("no usable training items remain")

    network = CTCRecognizer(model_config)
    if init is not None and resumed is None:
        network.load_state_dict(init.state_dict)
    network = network.to(device)
    train_network: torch.nn.Module = network
    if world > 1:
        train_network = torch.nn.parallel.DistributedDataParallel(
            network, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.AdamW(network.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    lengths = [entry.frames for entry in prepared]
    batches_per_epoch = len(bucketed_batches(lengths, config.batch_size, seed=config.seed, epoch=0)) // world \
        // config.accumulate  # optimizer steps; an epoch's last batches that do not fill a step are left out
    if batches_per_epoch == 0:
        raise ConfigError(f"too few training items ({len(prepared)}) for {world} processes"
                          + (f" with --accumulate {config.accumulate}" if config.accumulate > 1 else ""))
    total_steps = config.max_steps if config.max_steps is not None else config.epochs * batches_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, config.warmup_steps, config.final_lr_ratio,
                                          config.schedule))

    data_info = dict(metadata or {})
    data_info.setdefault("train_items", len(train_items))
    if init is not None:
        data_info["parent"] = init.parent
    data_info.update(train_items_used=len(prepared), val_items={name: len(items) for name, items in val_sets.items()})
    run = _Run(config, network, train_network, optimizer, scheduler, codec, extractor, model_config, modality,
               device, rank, world, output, run_dir, val_sets, batches_per_epoch, total_steps, data_info, monitor,
               bucket_lengths=bucket_by,
               prefetch=prefetch_depth(config.num_workers, torch.get_num_threads(), cores_per_process()),
               val_extractor=KeptExtractor(extractor, PreparedCache.for_validation(cache, config.cache_mb)))
    del train_network  # the run holds the DDP wrapper alone, so _leave_group can let it go

    state = _restored_state(run, resumed) if resumed is not None else TrainState()
    if resumed is None and config.ema is not None:
        run.average = WeightAverage(network, config.ema)
    if resumed is None and rank == 0:
        _write_run_config(run, count_parameters(network))

    try:
        stopped_by = _loop(run, TrainingDataset(prepared, extractor, augment=config.augment, cache=cache), state,
                           lengths)
    except BaseException:
        if world > 1:  # an error or an interrupt: no barrier (a peer may never reach it), but the
            _leave_group(run)  # group is shut down here, not in the interpreter's teardown
        raise

    monitor.close()
    if state.skipped_items:
        monitor.message(f"warning: {state.skipped_items} item loads failed during training and were skipped")
    if state.skipped_batches:
        monitor.message(f"warning: {state.skipped_batches} batches with non-finite values were skipped")
    if world > 1:
        # Every rank leaves together and shuts its group down before the interpreter does: a
        # gloo rank whose peer had already exited aborted (SIGABRT) in the group's destructor.
        # The DDP wrapper keeps a reference to the group inside torch, so its gloo connections
        # stayed open until the process exited (seen with torch 2.13: the sockets outlived
        # destroy_process_group) and a rank still aborted now and then (1 run in about 40 on
        # 2026-12-07). So the wrapper goes first, and the group is destroyed while every rank
        # is still here (the barrier).
        torch.distributed.barrier()
        _leave_group(run)
    if rank == 0 and not os.path.exists(output):
        raise TrainingError(f"{output}: no model was written: no validation since the run "
                            f"{'resumed' if resumed else 'started'} scored any item better than before")
    return TrainResult(state.step, round(state.step / batches_per_epoch, 3), state.best_cer, state.best_step,
                       stopped_by is not None, report, time.perf_counter() - started, state.history,
                       out_of_time=stopped_by == "time")


def _leave_group(run: _Run) -> None:
    """Drop the DDP wrapper, which holds the process group, then destroy the group, so its gloo
    connections close now rather than at interpreter exit."""
    run.train_network = run.network
    gc.collect()
    torch.distributed.destroy_process_group()


def _restored_state(run: _Run, resumed: dict[str, Any]) -> TrainState:
    """Put an interrupted run's weights, optimizer, schedule, RNG and weight average back, and
    return its loop state (a best model that has since gone is forgotten, with a warning)."""
    try:
        run.network.load_state_dict(resumed["model"])
        run.optimizer.load_state_dict(resumed["optimizer"])
        run.scheduler.load_state_dict(resumed["scheduler"])
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"{run.resume_path}: weights or optimizer state do not fit the network ({exc})") \
            from None
    state: TrainState = resumed["state"]
    rank_rng = resumed.get("rank_rng")
    if run.world > 1 and (rank_rng is None or len(rank_rng) != run.world):
        run.monitor.message(f"warning: the resume state holds no RNG state for each of {run.world} processes (it was "
                            f"written by {len(rank_rng) if rank_rng else 'another number of'} processes): dropout "
                            "draws will differ from the uninterrupted run's")
    _restore_rng(rank_rng[run.rank] if rank_rng and len(rank_rng) == run.world else resumed["rng"], run.device)
    if run.config.ema is not None:
        run.average = WeightAverage(run.network, run.config.ema)
        if resumed.get("ema") is not None:
            run.average.load_state_dict(resumed["ema"], run.resume_path)
        else:
            run.monitor.message("warning: the interrupted run kept no weight average; --ema starts one now")
    if state.best_step is not None and not os.path.exists(run.output):
        run.monitor.message(f"warning: the best model of this run ({run.output}, step {state.best_step}) is gone; "
                            "the next validation writes a new one")
        state.best_cer, state.best_step, state.stale_evals = None, None, 0
    write_log(run, state.history)  # drops rows of steps after the checkpoint
    run.monitor.message(f"resuming at step {state.step} (epoch {state.epoch + 1}, batch {state.batch_in_epoch})")
    return state


def _write_run_config(run: _Run, parameters: int) -> None:
    """config.json in the run folder: what was asked for and what ran (threads, device, sizes)."""
    with atomic_write(os.path.join(run.run_dir, "config.json"), "w", encoding="utf-8") as handle:
        json.dump({"command": sys.argv, "train_config": asdict(run.config), "model_config": run.model_config.to_dict(),
                   "features": run.extractor.config_dict(), "codec": run.codec.to_dict(), "device": str(run.device),
                   "torch_threads": torch.get_num_threads(), "parameters": parameters, **run.data_info}, handle,
                  indent=2)


def _note_full_cache(run: _Run, cache: PreparedCache) -> None:
    """Say once, at an epoch's end, that --cache-mb could not keep every input (training or validation)."""
    if cache.full and not run.cache_noted and run.is_main:
        run.cache_noted = True
        run.monitor.message(f"note: --cache-mb {run.config.cache_mb} keeps {len(cache)} prepared inputs "
                            f"({cache.used_bytes / 2**20:.0f} MiB) and has no room for more; the rest are prepared "
                            "again on every load (a larger --cache-mb keeps more)")


def _loop(run: _Run, dataset: TrainingDataset, state: TrainState, lengths: list[int]) -> str | None:
    """Train until the step budget is spent; "patience" or "time" when stopped before it."""
    config = run.config
    deadline = time.perf_counter() + config.max_time if config.max_time is not None else None
    group: list[Batch] = []  # the batches of the optimizer step being gathered (--accumulate)
    # A skipped batch steps the schedule without an optimizer step; torch warns about that order.
    warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before")
    run.monitor.start(run.total_steps, state.step)
    window_start, window_steps = time.perf_counter(), 0
    run.network.train()
    while state.step < run.total_steps:
        with read_ahead(_epoch_loader(run, dataset, state, lengths), run.prefetch) as batches:
            while True:
                waited = time.perf_counter()
                batch = next(batches, None)
                run.timing["load"] += time.perf_counter() - waited
                if batch is None:
                    break
                if state.batch_in_epoch % config.accumulate == 0:  # a step begins: what a save here must record
                    group_rng, group_start = _rng_states(run.device), state.batch_in_epoch
                if batch.bad:
                    if not config.skip_bad:  # this rank alone may be here: no gathering from the others
                        state.batch_in_epoch = group_start  # the step is not done: a resume redoes it all
                        save_resume(run, state, group_rng, every_rank=False)  # keeps what was learned
                        raise batch.bad[0].error()
                    if not state.skipped_items:
                        run.monitor.message(f"warning: skipping unreadable training item: {batch.bad[0].error()}")
                    state.skipped_items += len(batch.bad)
                state.batch_in_epoch += 1
                if batch.size:
                    group.append(batch)
                if state.batch_in_epoch % config.accumulate:
                    continue  # more batches before this optimizer step
                if not _any_rank(not group, run.world, run.device):  # all ranks step, or none
                    try:
                        train_step(run, group, state)
                    except TrainingError:
                        state.batch_in_epoch = group_start  # the step is not done: a resume redoes it
                        save_resume(run, state, group_rng)
                        raise
                group = []
                run.scheduler.step()
                run.timing["steps"] += 1
                state.step += 1
                window_steps += 1
                elapsed = time.perf_counter() - window_start
                run.monitor.step(state.step, state.recent_loss, window_steps / elapsed if elapsed > 0 else 0.0)
                if elapsed > 10:
                    window_start, window_steps = time.perf_counter(), 0
                at_epoch_end = state.batch_in_epoch >= run.batches_per_epoch * config.accumulate
                if at_epoch_end:
                    state.epoch, state.batch_in_epoch = state.epoch + 1, 0
                    _note_full_cache(run, dataset.cache)
                done = state.step >= run.total_steps
                # Every rank reads its own clock; one decision for all, so none is left waiting.
                out_of_time = deadline is not None and not done and \
                    _any_rank(time.perf_counter() >= deadline, run.world, run.device)
                if (config.eval_every and state.step % config.eval_every == 0) or \
                        (not config.eval_every and at_epoch_end) or done or out_of_time:
                    stop = validate(run, state)
                    save_resume(run, state)
                    if stop:
                        run.monitor.message(f"stopping early: no better validation CER for {config.patience} "
                                            "evaluations")
                        return "patience"
                if out_of_time:
                    run.monitor.message(f"stopping at the --max-time budget ({config.max_time:g} s) after step "
                                        f"{state.step} of {run.total_steps}; --resume continues the run")
                    return "time"
                if done:
                    return None
                if at_epoch_end:
                    break  # a new loader for the next epoch
    return None
