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

IMAGE_OPS = ("resolution", "affine", "letters", "elastic", "wave", "margins", "stroke", "blur", "contrast", "noise")
AUDIO_OPS = ("speed", "gain", "reverb", "telephone", "noise", "bandwidth", "vtlp", "specaugment")
OPERATIONS = tuple(dict.fromkeys(IMAGE_OPS + AUDIO_OPS))

# preset -> (probability multiplier, strength multiplier) on the operations' full settings.
# "default" is the measured point: with every operation at full setting ("strong") a 1,200-step
# run trained on distorted lines so much that it had not converged (9.5% validation CER against
# 1.3% before), while half strength at 0.6x the chance gave 1.0% (make bench-recipe).
PRESETS = {"none": (0.0, 0.0), "light": (0.3, 0.3), "default": (0.6, 0.5), "strong": (1.0, 1.0)}


@dataclass(frozen=True)
class AugmentPolicy:
    preset: str = "default"
    disabled: frozenset[str] = frozenset()  # operations left out (ablation)
    scale: float = 1.0  # 0..1: the augmentation warm-up's factor on every chance and strength

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise OptionError(f"--augment: unknown preset {self.preset!r} (choose from {', '.join(PRESETS)})")
        unknown = sorted(set(self.disabled) - set(OPERATIONS))
        if unknown:
            raise OptionError(f"--augment: unknown operation {unknown[0]!r} (operations: {', '.join(OPERATIONS)})")
        object.__setattr__(self, "disabled", frozenset(self.disabled))
        if not 0.0 <= self.scale <= 1.0:
            raise OptionError(f"augmentation scale must be in [0, 1], got {self.scale}")

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
        return self.preset != "none" and self.scale > 0

    def scaled(self, scale: float) -> AugmentPolicy:
        return AugmentPolicy(self.preset, self.disabled, scale)

    def chance(self, op: str, probability: float) -> float:
        """The probability of ``op`` under this policy (0 when left out)."""
        if op in self.disabled:
            return 0.0
        return min(1.0, probability * PRESETS[self.preset][0] * self.scale)

    def rolls(self, op: str, probability: float, rng) -> bool:
        """Whether ``op`` applies to this input, drawn from ``rng``; left out, it takes no draw.
        Operations added to the presets after runs were made use this, so that those runs,
        resumed or re-run with ``-op``, see exactly the inputs they saw before it existed."""
        return op not in self.disabled and rng.random() < self.chance(op, probability)

    def strength(self) -> float:
        return PRESETS[self.preset][1] * self.scale


def warmup_scale(step: int, total_steps: int, warmup: float) -> float:
    """The augmentation warm-up: 0 at the first step, growing linearly to 1 at ``warmup`` of the
    run. CTC first has to leave its all-blank plateau; distorted inputs from the first step
    delay that escape by hundreds of steps (measured: make bench-recipe)."""
    if warmup <= 0:
        return 1.0
    return min(1.0, step / (warmup * total_steps))
