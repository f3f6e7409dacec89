from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from ..threads import MAX_WORKERS
from .common import Limits, Runtime, shared_options

# Feature config keys that say how a line is prepared, not what shape the network reads: these
# may differ from an --init parent's.
LINE_PREPARATION = ("deslant", "center_normalize")

QuietOption = Annotated[bool, typer.Option("--quiet", "-q", envvar="CTCTOOL_QUIET",
                                           help="No progress bars or info messages on stderr.")]


@shared_options("limits", "runtime")
def train_command(
    train_manifest: Annotated[str, typer.Argument(help="Training manifest (.jsonl or .jsonl.gz).")],
    output: Annotated[str, typer.Option("--output", "-o", help="Where to write the best model file.")],
    val: Annotated[list[str] | None, typer.Option(
        "--val", help="Validation manifest, or NAME=MANIFEST; repeatable. Every set is scored at each "
        "validation; the one named by --select-by (default: the first) picks the best model.")] = None,
    select_by: Annotated[str | None, typer.Option("--select-by", help="Name of the validation set whose CER "
                                                  "picks the best model [default: the first --val].")] = None,
    run_dir: Annotated[str | None, typer.Option("--run-dir", help="Folder for resume state and logs "
                                                "[default: runs/<model name>].")] = None,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Passes over the training data.")] = 30,
    max_steps: Annotated[int | None, typer.Option("--max-steps", min=1, help="Stop after this many steps "
                                                  "(overrides --epochs).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1)] = 16,
    lr: Annotated[float | None, typer.Option("--lr", min=0.0, help="Peak learning rate (AdamW; shape: --schedule) "
                                             "[default: 2e-3; 5e-4 with --init].")] = None,
    schedule: Annotated[str | None, typer.Option("--schedule", help="Learning-rate shape: onecycle (cosine rise "
                                                 "over 30% of the steps, then cosine decay) or cosine (100 "
                                                 "warm-up steps, then cosine decay) [default: onecycle; cosine "
                                                 "with --init].")] = None,
    label_smoothing: Annotated[float | None, typer.Option("--label-smoothing", help="Weight in [0, 1) of each "
                                                          "frame's cross-entropy to the uniform distribution, "
                                                          "mixed into the CTC loss (0 = off) [default: 0.1; 0 "
                                                          "with --init].")] = None,
    eval_every: Annotated[int | None, typer.Option("--eval-every", min=1, help="Validate every N steps "
                                                   "[default: every epoch].")] = None,
    patience: Annotated[int, typer.Option("--patience", min=0, help="Stop after N validations without a "
                                          "better CER (0 = never).")] = 0,
    max_time: Annotated[str | None, typer.Option(
        "--max-time", help="Wall-clock budget for this run's training, such as 90s, 15m or 1h30m: when it is "
        "spent, training validates, writes the best model and the resume state, and stops (--resume goes "
        "on).")] = None,
    accumulate: Annotated[int, typer.Option("--accumulate", min=1, max=4096, help="Sum the gradients of N "
                                            "batches per optimizer step: the effective batch of a bigger "
                                            "machine (--batch-size x N).")] = 1,
    seed: Annotated[int, typer.Option("--seed", "-s", envvar="CTCTOOL_SEED")] = 0,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the interrupted run in --run-dir.")] = False,
    init: Annotated[str | None, typer.Option("--init", help="Start from this model's weights (a file or a bundled name: fine-tuning); "
                                             "its network shape and features are kept, but --deslant and --center-normalize may "
                                             "change how lines are prepared.")] = None,
    alphabet: Annotated[str | None, typer.Option("--alphabet", help="Text file whose characters are the "
                                                 "alphabet [default: from the training transcripts]. With "
                                                 "--init: keep (the model's labels), union (add the data's new "
                                                 "characters) or replace (a new output layer) [default: "
                                                 "keep].")] = None,
    lenient: Annotated[bool, typer.Option("--lenient", help="Skip (and count) transcript characters "
                                          "outside --alphabet instead of failing.")] = False,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip (and count) unreadable inputs and batches "
                                           "with non-finite values instead of stopping.")] = False,
    augment: Annotated[str, typer.Option("--augment", help="Training-time augmentation: none, light, default "
                                         "or strong, optionally leaving operations out: default,-elastic,-reverb "
                                         "(operations: see the README).")] = "default",
    augment_warmup: Annotated[float, typer.Option("--augment-warmup", help="Fraction of the run over which "
                                                  "augmentation grows from none to full (0 = full from the "
                                                  "start).")] = 0.3,
    no_augment: Annotated[bool, typer.Option("--no-augment", help="Same as --augment none.")] = False,
    ema: Annotated[float | None, typer.Option("--ema", help="Validate and save an exponential moving average of "
                                              "the weights with this decay per step, e.g. 0.999; 0 turns it "
                                              "off.")] = None,
    height: Annotated[int | None, typer.Option("--height", min=8, help="Image line height in pixels "
                                               "[default: 32].")] = None,
    deslant: Annotated[bool | None, typer.Option("--deslant/--no-deslant", help="Image lines: shear each line "
                                                 "upright (its slant estimated from the ink) before the network, "
                                                 "in training and whenever the model reads a line [default: on "
                                                 "when a tenth of the training lines lean 14 degrees or more; "
                                                 "with --init, the parent's].")] = None,
    center_normalize: Annotated[bool | None, typer.Option("--center-normalize/--no-center-normalize", help="Image "
                                                          "lines: straighten each line along its ink's centre and "
                                                          "scale it by the ink's height, not the crop's, in "
                                                          "training and whenever the model reads a line "
                                                          "[default: on].")] = None,
    sample_rate: Annotated[int | None, typer.Option("--sample-rate", help="Audio: clips are resampled to this "
                                                    "rate (Hz) [default: 16000].")] = None,
    n_mels: Annotated[int | None, typer.Option("--n-mels", min=8, help="Audio: mel bands [default: 64].")] = None,
    stride: Annotated[int | None, typer.Option("--stride", help="Input frames (image columns or 10 ms audio "
                                               "hops) per CTC frame: 2, 4 or 8 [default: 4 for images, 2 for "
                                               "audio].")] = None,
    preset: Annotated[str | None, typer.Option("--preset", help="Network size: tiny, small, base or large "
                                               "(channels, LSTM width and depth together; see the README) "
                                               "[default: base].")] = None,
    hidden: Annotated[int | None, typer.Option("--hidden", min=8, help="LSTM units per direction "
                                               "[default: from --preset].")] = None,
    layers: Annotated[int | None, typer.Option("--layers", min=1, max=8, help="Bidirectional LSTM layers "
                                               "[default: from --preset].")] = None,
    channels: Annotated[str | None, typer.Option("--channels", help="Output channels of the conv blocks, "
                                                 "comma-separated, one block each [default: from "
                                                 "--preset].")] = None,
    dropout: Annotated[float | None, typer.Option("--dropout", help="Dropout probability on the LSTM input "
                                                  "and between LSTM layers, in [0, 1) [default: 0.2].")] = None,
    weight_decay: Annotated[float | None, typer.Option("--weight-decay", help="AdamW weight decay, 0 or more "
                                                       "[default: 0.01].")] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=0, max=MAX_WORKERS, help="Data loading processes "
                                                "[default: on a GPU up to 4; on the CPU none with 2 cores or "
                                                "fewer, else a quarter of the cores, at most 4].")] = None,
    cache_mb: Annotated[int, typer.Option("--cache-mb", min=0, help="Memory in MiB for "
                                          "training and validation inputs kept prepared (decoded, normalized) "
                                          "between epochs; 0 keeps none. Training's without --workers only.")] = 1024,
    quiet: QuietOption = False,
    *,
    limits: Limits,
    runtime: Runtime,
) -> None:
    """Train a CNN-BiLSTM-CTC recognizer; the best model (by validation CER) is written to -o."""
    from ..codec import Codec
    from ..errors import ConfigError, ManifestError, OptionError
    from ..features import default_extractor
    from ..fileio import check_writable, file_sha256, read_text
    from ..manifest import read_manifest
    from ..model import network_shape
    from ..train import TrainConfig, modality_of, train
    from .common import setup_torch
    from .progress import make_monitor

    check_writable(output, "model")  # before any work: -o a folder or unwritable is found now
    try:
        counts = tuple(int(c) for c in channels.split(",")) if channels is not None else None
    except ValueError:
        raise OptionError(f"--channels: expected numbers like 32,64,128,128, got {channels!r}") from None
    # The feature flags given (flag, feature config key, value): --init takes the features from
    # the parent and --resume from the run, so both check these.
    feature_flags = [(flag, key, value) for flag, key, value in (
        ("--height", "height", height), ("--deslant" if deslant else "--no-deslant", "deslant", deslant),
        ("--center-normalize" if center_normalize else "--no-center-normalize", "center_normalize", center_normalize), ("--sample-rate", "sample_rate", sample_rate),
        ("--n-mels", "n_mels", n_mels)) if value is not None]
    _check_init_flags(init, alphabet, feature_flags, {"--stride": stride, "--preset": preset, "--hidden": hidden,
                                                      "--layers": layers, "--channels": channels,
                                                      "--dropout": dropout})
    shape = network_shape(preset or "base", stride=stride, channels=counts, hidden=hidden, layers=layers,
                          dropout=dropout)
    if ema is not None and not 0.0 <= ema < 1.0:
        raise OptionError(f"--ema must be a decay in [0, 1) such as 0.999 (0 = off), got {ema}")
    run_dir = run_dir or os.path.join("runs", Path(output).name.split(".")[0] or "model")
    ran = _run_config(run_dir) if resume else {}  # read once: threads, features and recipe come from it
    if resume and runtime.threads is None:
        runtime = replace(runtime, threads=_threads_of_run(ran))
    torch_device = setup_torch(runtime)
    train_items = read_manifest(train_manifest)
    if not train_items:
        raise ConfigError(f"{train_manifest}: the training manifest holds no items")
    val_paths = named_manifests(val or [])
    val_sets = {name: read_manifest(path) for name, path in val_paths.items()}
    missing = next((item for item in [*train_items, *(i for items in val_sets.values() for i in items)]
                    if item.text is None), None)
    if missing is not None:
        raise ManifestError(missing.source, None, "text", "missing (training and validation need transcripts)")
    modality = modality_of(train_items)
    prep = {key: value for _, key, value in feature_flags if key in LINE_PREPARATION}
    if prep and modality != "image":
        raise OptionError(f"{', '.join(flag for flag, key, _ in feature_flags if key in prep)}: only image lines "
                          "have a slant or a centre line; leave it out for audio")
    if init is not None:
        features, start = _start_from_parent(init, modality, prep, train_items, alphabet, lenient=lenient, seed=seed)
        codec = None
    else:
        features, start = _fresh_features(modality, height, deslant, center_normalize, sample_rate, n_mels), None
        codec = Codec.from_alphabet_text(read_text(alphabet, "alphabet")) if alphabet else None
    if resume:
        features = _features_for_resume(run_dir, ran, modality, feature_flags, features)
    survey = None
    if features.get("deslant", False) is None:  # a new image model given neither flag
        survey = _survey_slant(train_items, features, limits.max_width)
        features["deslant"] = survey.deslant
    extractor = default_extractor(modality, **features)
    extractor = extractor.with_limits(max_width=limits.max_width, max_seconds=limits.max_seconds)
    if resume:
        lr, schedule, label_smoothing, weight_decay, ema = _recipe_for_resume(
            ran, lr, schedule, label_smoothing, weight_decay, ema)
    lr, schedule, label_smoothing = _rate_defaults(init is not None, lr, schedule, label_smoothing)
    config = TrainConfig(epochs=epochs, max_steps=max_steps, batch_size=batch_size, lr=lr,
                         eval_every=eval_every, patience=patience, seed=seed,
                         augment="none" if no_augment else augment, augment_warmup=augment_warmup,
                         **({} if ema is None else {"ema": ema or None}),
                         lenient=lenient, skip_bad=skip_bad, num_workers=workers, cache_mb=cache_mb,
                         select_by=select_by,
                         max_time=parse_duration(max_time, "--max-time") if max_time is not None else None,
                         accumulate=accumulate, schedule=schedule, label_smoothing=label_smoothing,
                         **({} if weight_decay is None else {"weight_decay": weight_decay}))
    metadata = {"train_manifest": os.path.abspath(train_manifest), "train_sha256": file_sha256(train_manifest)}
    if val_paths:
        metadata["val_manifests"] = {name: {"path": os.path.abspath(path), "sha256": file_sha256(path)}
                                     for name, path in val_paths.items()}
    if survey is not None:  # why this model corrects slant or not
        metadata["slant_survey"] = {"sampled": survey.sampled, "leaning": survey.leaning, "deslant": survey.deslant}
    result = train(train_items, output=output, run_dir=run_dir, extractor=extractor, val_items=val_sets,
                   config=config, shape=shape, codec=codec, device=torch_device, resume=resume,
                   monitor=make_monitor(quiet, (survey.announce(),) if survey else ()), metadata=metadata,
                   init=start)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, rank 0 reports
        typer.echo(_summary(output, result, config))


def _check_init_flags(init: str | None, alphabet: str | None, feature_flags: list[tuple[str, str, Any]],
                      shape_flags: dict[str, Any]) -> None:
    """With --init, the features and network shape are the parent's: refuse flags that would set
    them. Without it, --alphabet keep|union|replace means nothing: refuse it rather than read a file."""
    from ..errors import OptionError
    from ..finetune import ALPHABET_MODES

    if init is not None:
        # How a line is prepared (deslant, centre normalization) may change when fine-tuning: the
        # network's input keeps its shape and training adapts the weights. Height, audio features
        # and the network's shape are the parent's.
        given = [flag for flag, key, _ in feature_flags if key not in LINE_PREPARATION] + [
            flag for flag, value in shape_flags.items() if value is not None]
        if given:
            raise OptionError(f"{', '.join(given)}: the features and network shape come from the --init model; "
                              "leave these out")
    elif alphabet in ALPHABET_MODES:
        raise OptionError(f"--alphabet {alphabet} needs --init MODEL (without it, --alphabet is a file of "
                          f"characters; write ./{alphabet} for a file of that name)")


def _start_from_parent(init: str, modality: str, prep: dict[str, Any], train_items: list, alphabet: str | None, *,
                       lenient: bool, seed: int) -> tuple[dict[str, Any], Any]:
    """The parent's features (with the line preparation the flags change) and the fine-tune's
    starting point (weights, codec, parent record)."""
    from ..checkpoint import load_model
    from ..errors import ConfigError
    from ..features.image import DEFAULT_CENTER_INK
    from ..fileio import file_sha256
    from ..finetune import fine_tune_start

    parent = load_model(init)
    if parent.modality != modality:
        raise ConfigError(f"{init}: an {parent.modality} model cannot start training on {modality} items")
    features = {key: value for key, value in parent.extractor.config_dict().items() if key != "type"}
    if prep.get("center_normalize") and not features.get("center_normalize"):
        # Newly turned on: today's way of measuring. A parent that had it keeps its own.
        features["center_ink"] = DEFAULT_CENTER_INK
    features.update(prep)
    texts = [item.text or "" for item in train_items]
    start = fine_tune_start(parent, texts, alphabet or "keep", lenient=lenient, seed=seed,
                            parent_name=init, parent_sha256=file_sha256(parent.path))
    return features, start


def _fresh_features(modality: str, height: int | None, deslant: bool | None, center_normalize: bool | None,
                    sample_rate: int | None, n_mels: int | None) -> dict[str, Any]:
    """A new model's feature config: the flags given, today's defaults for the rest (``deslant``
    None: chosen from the training lines once a resume has had its say)."""
    from ..features.image import DEFAULT_CENTER_INK, DEFAULT_CENTER_NORMALIZE

    if modality == "image":
        return {"height": height or 32, "deslant": deslant,
                "center_normalize": DEFAULT_CENTER_NORMALIZE if center_normalize is None else center_normalize,
                "center_ink": DEFAULT_CENTER_INK}
    from ..features.audio import DEFAULT_BAND_STD_FLOOR

    return {"sample_rate": sample_rate or 16000, "n_mels": n_mels or 64, "band_std_floor": DEFAULT_BAND_STD_FLOOR}


def _survey_slant(train_items: list, features: dict[str, Any], max_width: int | None):
    """For a new image model given neither --deslant nor --no-deslant: how many training lines
    lean, which turns slant correction on when enough do (features/slant.py: how many, and why).
    Lines are read within the same --max-width as training reads them."""
    from ..features.image import ImageFeatureConfig, survey_training_slant

    config = ImageFeatureConfig(**{**features, "deslant": False})
    return survey_training_slant(train_items, config if max_width is None else replace(config, max_width=max_width))


def _features_for_resume(run_dir: str, run_config: dict[str, Any], modality: str,
                         feature_flags: list[tuple[str, str, Any]], features: dict[str, Any]) -> dict[str, Any]:
    """A resume reads lines as the interrupted run did (the defaults may have changed since); a
    flag that asks for something else is refused, not silently dropped."""
    from ..errors import OptionError

    ran = _features_of_run(run_config)
    if ran is None or ran.get("type") != modality:
        return features
    differ = [flag for flag, key, value in feature_flags if ran.get(key) != value]
    if differ:
        raise OptionError(f"{', '.join(differ)}: the run in {run_dir} was started with other features "
                          f"({json.dumps(ran)}); --resume continues it as it was: leave these out")
    return {key: value for key, value in ran.items() if key != "type"}


def _rate_defaults(fine_tuning: bool, lr: float | None, schedule: str | None,
                   label_smoothing: float | None) -> tuple[float, str, float]:
    """The rate, schedule and label smoothing not given: a fine-tune's own (a short adaptation
    that must keep what the parent knew; at the from-scratch rate it undid what the parent knew
    of unseen voices), else the from-scratch recipe's."""
    from ..finetune import FINE_TUNE_LABEL_SMOOTHING, FINE_TUNE_LR, FINE_TUNE_SCHEDULE
    from ..train import TrainConfig

    if lr is None:
        lr = FINE_TUNE_LR if fine_tuning else TrainConfig.lr
    if schedule is None:
        schedule = FINE_TUNE_SCHEDULE if fine_tuning else TrainConfig.schedule
    if label_smoothing is None:
        label_smoothing = FINE_TUNE_LABEL_SMOOTHING if fine_tuning else TrainConfig.label_smoothing
    return lr, schedule, label_smoothing


def _summary(output: str, result, config) -> str:
    """The line train prints when it ends: the best validation CER, the other sets' figures at
    that step, the time, and where --max-time cut the run."""
    if result.best_val_cer is None:
        return f"{output}: trained {result.steps} steps without validation; {result.seconds:.0f} s"
    best = next(h for h in result.history if h["step"] == result.best_step)
    others = "".join(f"; {name} CER {100 * scores['cer']:.2f}% WER {100 * scores['wer']:.2f}%"
                     for name, scores in best.get("sets", {}).items()
                     if name != best.get("select_by") and scores["cer"] is not None)
    budget = f" (--max-time reached at step {result.steps} of {config.max_steps or 'the epochs'})" \
        if result.out_of_time else ""
    return (f"{output}: best validation CER {100 * result.best_val_cer:.2f}% (WER {100 * best['wer']:.2f}%) "
            f"at step {result.best_step} of {result.steps}{others}; {result.seconds:.0f} s{budget}")


_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(text: str, flag: str) -> float:
    """Seconds in ``90``, ``90s``, ``2.5m``, ``1h30m`` or ``1h 30m 10s``; a usage error otherwise."""
    import re

    from ..errors import OptionError

    compact = text.replace(" ", "").lower()
    if re.fullmatch(r"\d+(\.\d+)?", compact):
        seconds = float(compact)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", compact)
        units = [unit for _, unit in parts]
        if not parts or "".join(n + u for n, u in parts) != compact or len(set(units)) != len(units) \
                or units != sorted(units, key="hms".index):
            raise OptionError(f"{flag} {text!r}: expected a duration such as 90, 90s, 15m or 1h30m")
        seconds = sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)
    if not 0 < seconds <= 366 * 86400:
        raise OptionError(f"{flag} {text!r}: the duration must be more than 0 and at most a year")
    return seconds


def named_manifests(specs: list[str]) -> dict[str, str]:
    """``--val`` values (``PATH`` or ``NAME=PATH``) -> {name: path}; a bare path is named after its
    file (``val.jsonl`` -> ``val``)."""
    from ..errors import OptionError

    named: dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or os.path.exists(spec):
            name, path = Path(spec).name.split(".")[0] or "val", spec
        if not name or not path:
            raise OptionError(f"--val {spec!r}: expected MANIFEST or NAME=MANIFEST")
        if name in named:
            raise OptionError(f"--val {spec!r}: a validation set named {name!r} is already given; "
                              "name them with NAME=MANIFEST")
        named[name] = path
    return named


def _run_config(run_dir: str) -> dict[str, Any]:
    """The interrupted run's config.json ({} when missing or unreadable)."""
    try:
        with open(os.path.join(run_dir, "config.json"), encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def _features_of_run(run_config: dict[str, Any]) -> dict[str, Any] | None:
    """The feature config the interrupted run trained with, so that a resume reads its lines the
    same way whatever today's defaults or flags are; None if unknown."""
    features = run_config.get("features")
    return features if isinstance(features, dict) else None


def _recipe_for_resume(run_config: dict[str, Any], lr: float | None, schedule: str | None, label_smoothing: float | None,
                       weight_decay: float | None, ema: float | None) -> tuple[Any, ...]:
    """The learning rate, schedule, label smoothing, weight decay and weight average (0: off) of
    the interrupted run where no flag was given, so that a resume after an upgrade that changed a
    default continues the run as it began (a flag given still wins, and is checked as ever).
    Recorded values of the wrong type are left out: today's default then."""
    recorded = run_config.get("train_config")
    recorded = recorded if isinstance(recorded, dict) else {}
    number = lambda value: isinstance(value, (int, float)) and not isinstance(value, bool)  # noqa: E731

    def ran(key: str, given: Any, ok) -> Any:
        return recorded[key] if given is None and key in recorded and ok(recorded[key]) else given

    if ema is None and "ema" in recorded and (recorded["ema"] is None or number(recorded["ema"])):
        ema = recorded["ema"] or 0.0  # recorded None: the average was off
    return (ran("lr", lr, number), ran("schedule", schedule, lambda value: isinstance(value, str)),
            ran("label_smoothing", label_smoothing, number), ran("weight_decay", weight_decay, number), ema)


def _threads_of_run(run_config: dict[str, Any]) -> int | None:
    """The torch thread count the interrupted run chose, so that a resume which gives no
    --threads continues bit for bit whatever the machine's load is now; None if unknown."""
    threads = run_config.get("torch_threads")
    return threads if isinstance(threads, int) and not isinstance(threads, bool) and 1 <= threads <= 1024 else None
