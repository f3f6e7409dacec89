"""Training-time augmentation: what varies between the lines and clips a model trains on and the
ones its users have (other fonts, other writers, other voices, other rooms and microphones).

A policy is a preset (``none``, ``light``, ``default``, ``strong``) plus the operations it leaves
out (``default,-elastic,-reverb``: what the ablation in ``make bench-recipe`` removes one by one).
Every operation has a probability and a strength; the preset scales both. Augmentation is a
pure function of the policy and a ``random.Random`` seeded per (seed, epoch, item), so a resumed
run sees the same inputs as the run it continues.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import OptionError

IMAGE_OPS = ("resolution", "affine", "elastic", "wave", "margins", "stroke", "blur", "contrast", "noise")
AUDIO_OPS = ("speed", "gain", "reverb", "telephone", "noise", "vtlp", "specaugment")
OPERATIONS = tuple(dict.fromkeys(IMAGE_OPS + AUDIO_OPS))

# preset -> (probability multiplier, strength multiplier); "default" is the tuned point
PRESETS = {"none": (0.0, 0.0), "light": (0.6, 0.5), "default": (1.0, 1.0), "strong": (1.25, 1.5)}


@dataclass(frozen=True)
class AugmentPolicy:
    preset: str = "default"
    disabled: frozenset[str] = frozenset()  # operations left out (ablation)

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise OptionError(f"--augment: unknown preset {self.preset!r} (choose from {', '.join(PRESETS)})")
        unknown = sorted(set(self.disabled) - set(OPERATIONS))
        if unknown:
            raise OptionError(f"--augment: unknown operation {unknown[0]!r} (operations: {', '.join(OPERATIONS)})")
        object.__setattr__(self, "disabled", frozenset(self.disabled))

    @classmethod
    def parse(cls, spec: str | bool | None) -> AugmentPolicy:
        """``"default"``, ``"strong,-elastic,-reverb"``; True/False/None for older callers."""
        if spec is True or spec is None:
            return cls()
        if spec is False:
            return cls("none")
        parts = [part.strip() for part in str(spec).split(",") if part.strip()]
        if not parts:
            raise OptionError("--augment: expected a preset such as default, or default,-elastic")
        preset, removed = parts[0], parts[1:]
        bad = next((part for part in removed if not part.startswith("-")), None)
        if bad is not None:
            raise OptionError(f"--augment: {bad!r}: after the preset, name operations to leave out as -NAME")
        return cls(preset, frozenset(part[1:] for part in removed))

    def __str__(self) -> str:
        return ",".join([self.preset, *(f"-{op}" for op in sorted(self.disabled))])

    @property
    def active(self) -> bool:
        return self.preset != "none"

    def chance(self, op: str, probability: float) -> float:
        """The probability of ``op`` under this policy (0 when left out)."""
        if op in self.disabled:
            return 0.0
        return min(1.0, probability * PRESETS[self.preset][0])

    def strength(self) -> float:
        return PRESETS[self.preset][1]
