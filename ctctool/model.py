"""The CNN-BiLSTM-CTC network shared by both modalities.

Input ``[batch, 1, feature_dim, frames]`` (image rows x columns, or mel bands x STFT frames);
the convolution stack shrinks the feature axis and the time axis, the rest of the feature
axis is folded into channels, a bidirectional LSTM reads along time, and a linear layer
gives per-frame scores over the codec (blank = 0).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from .errors import ConfigError, OptionError


@dataclass(frozen=True)
class ModelConfig:
    feature_dim: int  # input rows: image height in px, or mel bands
    num_classes: int  # codec size, blank included
    conv_channels: tuple[int, ...] = (32, 64, 128, 128)  # one 3x3 conv + BN + ReLU block each
    pool_features: tuple[int, ...] = (2, 2, 2, 2)  # max-pool factor on the feature axis after each block
    pool_time: tuple[int, ...] = (2, 2, 1, 1)  # max-pool factor on the time axis: product = time stride
    lstm_hidden: int = 128  # per direction
    lstm_layers: int = 2
    dropout: float = 0.2

    def __post_init__(self) -> None:
        from .features import check_config_types

        for name in ("conv_channels", "pool_features", "pool_time"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        check_config_types(self)  # model files come from strangers: types first, then ranges
        n = len(self.conv_channels)
        if n == 0 or len(self.pool_features) != n or len(self.pool_time) != n:
            raise ConfigError("conv_channels, pool_features and pool_time need one entry per conv block")
        for name, value, low, high in (("feature_dim", self.feature_dim, 1, 1024),
                                       ("num_classes", self.num_classes, 2, 100_000),
                                       ("lstm_hidden", self.lstm_hidden, 1, 2048),
                                       ("lstm_layers", self.lstm_layers, 1, 8),
                                       ("conv blocks", n, 1, 8)):
            if not low <= value <= high:
                raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
        if any(not 1 <= c <= 1024 for c in self.conv_channels):
            raise ConfigError(f"conv_channels must each be 1..1024, got {list(self.conv_channels)}")
        if any(not 1 <= p <= 8 for p in (*self.pool_features, *self.pool_time)):
            raise ConfigError("pooling factors must each be 1..8")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.feature_dim < self.feature_reduction:
            raise ConfigError(f"feature_dim {self.feature_dim} is smaller than the conv stack's "
                              f"pooling ({self.feature_reduction}x)")
        if self.num_classes < 2:
            raise ConfigError("a codec needs at least one label besides the blank")

    @property
    def feature_reduction(self) -> int:
        return math.prod(self.pool_features)

    @property
    def time_stride(self) -> int:
        """Input frames per output frame (image columns, or audio hops, per CTC frame)."""
        return math.prod(self.pool_time)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("conv_channels", "pool_features", "pool_time"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        if not isinstance(data, dict):
            raise ConfigError(f"model config must be a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown model config keys: {', '.join(sorted(map(str, unknown)))}")
        missing = {"feature_dim", "num_classes"} - set(data)
        if missing:
            raise ConfigError(f"model config lacks {', '.join(sorted(missing))}")
        return cls(**data)

    @classmethod
    def for_modality(cls, modality: str, feature_dim: int, num_classes: int,
                     shape: NetworkShape | None = None) -> ModelConfig:
        """The network ``ctctool train`` builds: ``shape.stride`` input frames per CTC frame (default 4
        for images, 2 for audio: 20 ms frames, since at 40 ms fast speech runs out of frames for
        doubled letters, "three" needs six), pooled 2x in time by the first blocks and 2x in the
        feature axis by every block."""
        shape = shape or NetworkShape()
        stride = shape.stride or (4 if modality == "image" else 2)
        time_pools = {2: (2,), 4: (2, 2), 8: (2, 2, 2)}.get(stride)
        if time_pools is None:
            raise OptionError(f"--stride must be 2, 4 or 8, got {stride}")
        blocks = len(shape.channels)
        if blocks < len(time_pools):
            raise OptionError(f"--stride {stride} needs at least {len(time_pools)} conv blocks")
        return cls(feature_dim=feature_dim, num_classes=num_classes, conv_channels=tuple(shape.channels),
                   pool_features=(2,) * blocks, pool_time=(*time_pools, *([1] * (blocks - len(time_pools)))),
                   lstm_hidden=shape.hidden, lstm_layers=shape.layers, dropout=float(shape.dropout))


@dataclass(frozen=True)
class NetworkShape:
    """The part of the network a user chooses; ``ModelConfig.for_modality`` fills in the rest."""

    stride: int | None = None  # input frames per CTC frame: 2, 4 or 8; None = per modality
    channels: tuple[int, ...] = (32, 64, 128, 128)  # output channels of the conv blocks (3 or more)
    hidden: int = 128  # LSTM units per direction
    layers: int = 2  # stacked bidirectional LSTM layers
    dropout: float = 0.2  # on the LSTM input and between LSTM layers, training only

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(self.channels))
        if not (isinstance(self.dropout, (int, float)) and 0.0 <= self.dropout < 1.0):
            raise OptionError(f"--dropout must be a probability in [0, 1), got {self.dropout!r}")
        if not 1 <= self.layers <= 8:
            raise OptionError(f"--layers must be 1..8, got {self.layers}")
        if len(self.channels) < 3 or any(not 1 <= c <= 1024 for c in self.channels):
            raise OptionError(f"--channels needs at least 3 counts of 1..1024, got {list(self.channels)}")
        if not 1 <= self.hidden <= 2048:
            raise OptionError(f"--hidden must be 1..2048, got {self.hidden}")


# --preset: network sizes that scale channels, LSTM width and depth together. Parameter counts
# and CPU speed per size are in the README (make bench-recipe measures them).
SIZE_PRESETS = {
    "tiny": NetworkShape(channels=(16, 32, 48, 48), hidden=64, layers=1),
    "small": NetworkShape(channels=(24, 48, 96, 96), hidden=96, layers=2),
    "base": NetworkShape(channels=(32, 64, 128, 128), hidden=128, layers=2),
    "large": NetworkShape(channels=(48, 96, 192, 192), hidden=256, layers=3),
}


def network_shape(preset: str = "base", *, stride: int | None = None, channels: tuple[int, ...] | None = None,
                  hidden: int | None = None, layers: int | None = None, dropout: float | None = None) -> NetworkShape:
    """The ``preset``'s shape with any explicitly given part replacing the preset's."""
    if preset not in SIZE_PRESETS:
        raise OptionError(f"--preset must be one of {', '.join(SIZE_PRESETS)}, got {preset!r}")
    base = SIZE_PRESETS[preset]
    return NetworkShape(stride=stride, channels=channels or base.channels,
                        hidden=hidden if hidden is not None else base.hidden,
                        layers=layers if layers is not None else base.layers,
                        dropout=dropout if dropout is not None else base.dropout)


def expected_weight_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every weight's shape for ``config``, computed on the meta device: no memory is taken,
    so a model file claiming a huge network is refused before anything is allocated."""
    with torch.device("meta"):
        network = CTCRecognizer(config)
    return {key: tuple(value.shape) for key, value in network.state_dict().items()}


class CTCRecognizer(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        blocks: list[nn.Module] = []
        in_channels = 1
        rows = config.feature_dim
        for out_channels, pool_f, pool_t in zip(config.conv_channels, config.pool_features, config.pool_time):
            block = [
                nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
            ]
            if pool_f > 1 or pool_t > 1:
                block.append(nn.MaxPool2d(kernel_size=(pool_f, pool_t), stride=(pool_f, pool_t)))
            blocks.append(nn.Sequential(*block))
            in_channels = out_channels
            rows //= pool_f
        self.conv = nn.ModuleList(blocks)
        # Conv weights in channels-last layout make every block's activations channels-last too
        # (the one-channel input is both layouts). On CPU that takes batch norm, ReLU and max
        # pooling off their slow strided paths: a base image step 28% cheaper at 1 thread and 20%
        # at 2, batched reading 40-50% ("Channels-last convolutions" in the README). The values
        # are the same weights; only their strides differ, and a state dict loads into either.
        self.conv.to(memory_format=torch.channels_last)
        self.rows_out = rows
        self.dropout = nn.Dropout(config.dropout)
        self.lstm = LengthAwareLSTM(
            input_size=in_channels * rows,
            hidden_size=config.lstm_hidden,
            num_layers=config.lstm_layers,
            bidirectional=True,
            batch_first=True,
            dropout=config.dropout if config.lstm_layers > 1 else 0.0,
        )
        self.output = nn.Linear(2 * config.lstm_hidden, config.num_classes)

    def output_lengths(self, input_lengths: torch.Tensor) -> torch.Tensor:
        """CTC frames for inputs of ``input_lengths`` frames: floor division per time pool."""
        lengths = input_lengths.clone()
        for factor in self.config.pool_time:
            lengths = torch.div(lengths, factor, rounding_mode="floor")
        return lengths

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``features`` [B, 1, F, T], ``lengths`` [B] -> (log_probs [B, T', V] float32, out_lengths [B])."""
        x = features
        block_lengths = lengths.to(features.device)
        for block, factor in zip(self.conv, self.config.pool_time):
            x = block(x)
            # Zero the batch padding after each block (BatchNorm shifts it off zero), so an
            # input gives the same output whatever it is batched with.
            block_lengths = torch.div(block_lengths, factor, rounding_mode="floor")
            mask = torch.arange(x.shape[-1], device=x.device)[None, :] < block_lengths[:, None]
            x = x * mask[:, None, None, :].to(x.dtype)  # [B, C, F', T']
        batch, channels, rows, frames = x.shape
        x = x.permute(0, 3, 1, 2).reshape(batch, frames, channels * rows)
        x = self.dropout(x)
        out_lengths = self.output_lengths(lengths).clamp(min=1, max=frames)
        x = self.dropout(self.lstm(x, out_lengths))
        logits = self.output(x)
        # log_softmax in float32 even under autocast: CTC needs the precision.
        return F.log_softmax(logits.float(), dim=-1), out_lengths


class LengthAwareLSTM(nn.LSTM):
    """``nn.LSTM`` (bidirectional, batch first; the same weights and state dict) that reads a
    padded batch [B, T, D] with each input's frames [B] and gives [B, T, 2 * hidden], zero past
    each input's end: the packed LSTM's result, reached another way.

    Each layer runs its two directions as two one-way passes over the padded batch, the backward
    one over each input reversed within its own length (``reversed_within``). Padding then comes
    after an input's frames in both passes, and an LSTM's output at a frame never depends on
    later frames, so no valid output reads the padding: an input gives the same scores whatever
    it is batched with. On CPU this is about 3x cheaper to train than the packed LSTM (a batch
    of 16 x 71-100 frames, 2 layers of 128: 86 ms forward and backward against 262 ms, 1 thread,
    tests/bench/lstm_cost.py):
    the packed one narrows the batch at every time step, and the backward of each narrow fills
    and adds a full-size zero gradient, while a padded pass also projects the whole sequence's
    input in one matrix product. Dropout between layers is ``F.dropout``, drawn from torch's
    generator on every device (cuDNN's own dropout state cannot be saved in a checkpoint, so a
    resumed run would draw other masks). Under ONNX export the network takes the packed path,
    which the exporter maps onto ONNX's LSTM with ``sequence_lens``."""

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if not (self.bidirectional and self.batch_first):
            raise ValueError("LengthAwareLSTM reads batch-first input in both directions")
        if torch.onnx.is_in_onnx_export():
            return self._packed(x, lengths)
        batch, frames, _ = x.shape
        lengths = lengths.to(x.device)
        order = reversed_within(lengths, frames)  # [B, T]
        per_layer = 8 if self.bias else 4  # weights of one layer's two directions
        zeros = x.new_zeros(1, batch, self.hidden_size)
        for layer in range(self.num_layers):
            if layer:
                x = F.dropout(x, self.dropout, training=self.training)
            weights = self._flat_weights[layer * per_layer:(layer + 1) * per_layer]
            half = per_layer // 2
            left_to_right, _, _ = torch._VF.lstm(x, (zeros, zeros), weights[:half], self.bias, 1, 0.0,
                                                 self.training, False, True)
            flipped = x.gather(1, order[:, :, None].expand(-1, -1, x.shape[2]))
            right_to_left, _, _ = torch._VF.lstm(flipped, (zeros, zeros), weights[half:], self.bias, 1, 0.0,
                                                 self.training, False, True)
            right_to_left = right_to_left.gather(1, order[:, :, None].expand(-1, -1, right_to_left.shape[2]))
            x = torch.cat([left_to_right, right_to_left], dim=2)
        valid = torch.arange(frames, device=x.device)[None, :] < lengths[:, None]
        return x * valid[:, :, None].to(x.dtype)

    def _packed(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The same result through torch's packed LSTM (the form ONNX export understands)."""
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = super().forward(packed)
        return nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0]


def reversed_within(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """[B, frames] indices that reverse each row's first ``lengths[b]`` frames and leave its
    padding in place. The order is its own inverse, so gathering by it again restores a row
    (and each frame is read once: ``gather``'s backward adds one value per frame, exactly)."""
    steps = torch.arange(frames, device=lengths.device)[None, :]
    mirrored = lengths[:, None] - 1 - steps
    return torch.where(mirrored >= 0, mirrored, steps)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
