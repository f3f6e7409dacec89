"""Training progress on stderr: a rich bar on a terminal, plain log lines otherwise."""

from __future__ import annotations

import sys
from typing import Any

from .common import echo_err


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def _other_sets(metrics: dict[str, Any]) -> str:
    """" | heldout CER 3.10% WER 9.00%" for every validation set besides the one that selects."""
    return "".join(f" | {name} CER {_pct(scores['cer'])} WER {_pct(scores['wer'])}"
                   for name, scores in metrics.get("sets", {}).items() if name != metrics.get("select_by"))


class LineMonitor:
    """For logs and CI: one line per validation, nothing per step."""

    def __init__(self, quiet: bool, opening: tuple[str, ...] = ()):
        self.quiet = quiet
        # Printed when training starts, not before: a run that fails on its input first says
        # only what is wrong.
        self.opening = opening

    def _open(self) -> None:
        for text in self.opening:
            self.message(text)
        self.opening = ()

    def start(self, total_steps: int, done_steps: int) -> None:
        self._open()
        if not self.quiet:
            echo_err(f"training for {total_steps} steps" + (f" (from step {done_steps})" if done_steps else ""))

    def step(self, step: int, loss: float, steps_per_second: float) -> None: ...

    def evaluated(self, step: int, metrics: dict[str, Any]) -> None:
        if not self.quiet:
            echo_err(f"step {step} epoch {metrics['epoch']:.2f} loss {metrics['loss']:.4f} "
                     f"{metrics.get('select_by') or 'val'} CER {_pct(metrics['cer'])} WER {_pct(metrics['wer'])} "
                     f"best {_pct(metrics['best_cer'])}{_other_sets(metrics)}")

    def message(self, text: str) -> None:
        if not self.quiet or text.startswith("warning"):
            echo_err(text)

    def close(self) -> None: ...


class RichMonitor(LineMonitor):
    def __init__(self, opening: tuple[str, ...] = ()) -> None:
        super().__init__(quiet=False, opening=opening)
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[rate]} steps/s"),
            TextColumn("val CER {task.fields[cer]}"), TimeRemainingColumn(),
            console=Console(stderr=True), transient=False)
        self.task = None
        self.cer = "n/a"

    def start(self, total_steps: int, done_steps: int) -> None:
        self._open()
        self.progress.start()
        self.task = self.progress.add_task("train", total=total_steps, completed=done_steps,
                                           loss="-", rate="-", cer=self.cer)

    def step(self, step: int, loss: float, steps_per_second: float) -> None:
        self.progress.update(self.task, completed=step, loss=f"{loss:.3f}", rate=f"{steps_per_second:.1f}")

    def evaluated(self, step: int, metrics: dict[str, Any]) -> None:
        self.cer = _pct(metrics["cer"])
        self.progress.update(self.task, cer=self.cer)
        self.progress.console.print(f"step {step}: {metrics.get('select_by') or 'val'} CER {_pct(metrics['cer'])} "
                                    f"WER {_pct(metrics['wer'])} (best {_pct(metrics['best_cer'])})"
                                    f"{_other_sets(metrics)}", markup=False, highlight=False)

    def message(self, text: str) -> None:
        self.progress.console.print(text, markup=False, highlight=False)

    def close(self) -> None:
        self.progress.stop()


def make_monitor(quiet: bool, opening: tuple[str, ...] = ()):
    """The monitor for stderr; ``opening`` lines are printed (unless quiet) as training starts."""
    if not quiet and sys.stderr.isatty():
        return RichMonitor(opening)
    return LineMonitor(quiet, opening)
