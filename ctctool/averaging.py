"""An exponential moving average of the network's weights (Polyak averaging).

The average of the last few hundred steps' weights generalizes better than the last step's:
it sits nearer the middle of the valley the optimizer is bouncing around in. Training keeps it
beside the live network, validates it, and saves it as the model.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from .errors import CheckpointError


class WeightAverage:
    def __init__(self, network: torch.nn.Module, decay: float):
        self.decay = decay  # per optimizer step; 0.999 averages over about 1,000 steps
        self.updates = 0
        self.network = copy.deepcopy(network).eval()
        for parameter in self.network.parameters():
            parameter.requires_grad_(False)
        self._averaged, self._copied = self._split(self.network)

    @staticmethod
    def _split(network: torch.nn.Module) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Floating-point entries (weights, BatchNorm statistics) are averaged; counters copied."""
        state = network.state_dict(keep_vars=True)
        averaged = [t.data if t.is_floating_point() else t for t in state.values() if t.is_floating_point()]
        copied = [t.data for t in state.values() if not t.is_floating_point()]
        return averaged, copied

    def current_decay(self) -> float:
        """Warm-up: early on the average follows the weights closely (decay (1+n)/(10+n)), so a
        short run is not dominated by its random initialization."""
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, network: torch.nn.Module) -> None:
        live_averaged, live_copied = self._split(network)
        weight = 1.0 - self.current_decay()
        torch._foreach_lerp_(self._averaged, live_averaged, weight)
        for mine, theirs in zip(self._copied, live_copied):
            mine.copy_(theirs)
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "updates": self.updates,
                "weights": {k: v.detach().cpu().clone() for k, v in self.network.state_dict().items()}}

    def load_state_dict(self, state: Any, source: str) -> None:
        if not isinstance(state, dict) or not isinstance(state.get("updates"), int) or \
                not isinstance(state.get("weights"), dict):
            raise CheckpointError(f"{source}: ema: expected the weight average's updates and weights")
        try:
            self.network.load_state_dict(state["weights"])
        except Exception as exc:  # noqa: BLE001
            raise CheckpointError(f"{source}: ema: the averaged weights do not fit the network ({exc})") from None
        self.updates = state["updates"]
        self._averaged, self._copied = self._split(self.network)
