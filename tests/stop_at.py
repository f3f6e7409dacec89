"""A training monitor that interrupts a run at a given step, as a kill between checkpoints
would (shared by the resume tests, in-process and under torchrun)."""

from __future__ import annotations


class Interrupt(Exception):
    pass


class StopAt:
    def __init__(self, step: int):
        self.stop_step = step

    def start(self, total_steps, done_steps): ...
    def evaluated(self, step, metrics): ...
    def message(self, text): ...
    def close(self): ...

    def step(self, step, loss, rate):
        if step >= self.stop_step:
            raise Interrupt
