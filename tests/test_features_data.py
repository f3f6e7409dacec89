from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from ctctool.codec import Codec
from ctctool.ctc import min_frames
from ctctool.data import (
    BadSample,
    bucketed_batches,
    collate,
    prepare_training_items,
)
from ctctool.errors import CodecError, FeatureError
from ctctool.features import default_extractor
from ctctool.features.image import ImageFeatureConfig, ImageFeatures
from ctctool.manifest import ManifestItem
from ctctool.model import CTCRecognizer, ModelConfig


def page(tmp_path, name="p.png", size=(200, 64), dark_ink=True):
    image = Image.new("L", size, 240 if dark_ink else 20)
    ImageDraw.Draw(image).rectangle((50, 20, 90, 40), fill=10 if dark_ink else 250)
    image.save(tmp_path / name)
    return ManifestItem(path=name, root=str(tmp_path), kind="image", id=name)


def test_scaled_to_height_ink_bright_both_polarities(tmp_path):
    extractor = ImageFeatures(ImageFeatureConfig(height=32))
    for dark in (True, False):
        features = extractor.load(page(tmp_path, f"{dark}.png", dark_ink=dark))
        assert features.values.shape == (32, 100) and features.values.dtype == np.float32
        assert features.values[16, 35] > 0.9 and features.values[2, 2] < 0.1  # ink bright, paper dark
        assert features.axis.step == pytest.approx(2.0) and features.axis.unit == "px"


def test_bbox_crops_and_maps_back_to_page_columns(tmp_path):
    item = page(tmp_path)
    from dataclasses import replace

    cropped = replace(item, bbox=(40, 16, 120, 48))
    features = ImageFeatures().load(cropped)
    assert features.values.shape == (32, 80)
    assert features.axis.origin == 40 and features.axis.position(10) == pytest.approx(50)
    assert ImageFeatures().frames_hint(cropped) == 80
    with pytest.raises(FeatureError, match="bbox: .* lies outside the 200x64 image"):
        ImageFeatures().load(replace(item, bbox=(0, 0, 500, 10)))


def test_unreadable_images_are_feature_errors(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    truncated = tmp_path / "trunc.png"
    Image.new("L", (300, 60), 128).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:60])
    for name, message in (("bad.png", "not an image"), ("trunc.png", "cannot decode"), ("none.png", "no such file")):
        with pytest.raises(FeatureError, match=message) as info:
            ImageFeatures().load(ManifestItem(path=name, root=str(tmp_path), kind="image", source="m.jsonl:7"))
        assert str(info.value).startswith("m.jsonl:7: path:")


def test_augmentation_is_deterministic_per_seed(tmp_path):
    item = page(tmp_path)
    extractor = ImageFeatures()
    a = extractor.load(item, random.Random(5)).values
    b = extractor.load(item, random.Random(5)).values
    assert np.array_equal(a, b) and a.shape[0] == 32


@pytest.mark.parametrize("width", [4, 5, 7, 8, 33, 100, 257])
def test_output_lengths_match_network(width):
    config = ModelConfig(feature_dim=32, num_classes=5, conv_channels=(4, 4, 4, 4), lstm_hidden=8)
    network = CTCRecognizer(config).eval()
    log_probs, lengths = network(torch.zeros(1, 1, 32, width), torch.tensor([width]))
    assert log_probs.shape[1] == int(lengths[0]) == width // 4 == network.output_lengths(torch.tensor([width]))[0]
    assert config.time_stride == 4


def test_padding_does_not_change_an_items_output():
    torch.manual_seed(0)
    config = ModelConfig(feature_dim=32, num_classes=6, conv_channels=(4, 8, 8, 8), lstm_hidden=8, dropout=0.0)
    network = CTCRecognizer(config).eval()
    short = torch.rand(1, 1, 32, 40)
    alone, _ = network(short, torch.tensor([40]))
    padded = torch.zeros(2, 1, 32, 80)
    padded[0, :, :, :40] = short
    padded[1] = torch.rand(1, 32, 80)
    together, lengths = network(padded, torch.tensor([40, 80]))
    # Padding is masked after every conv block and the LSTM is packed: the batch changes nothing.
    assert torch.allclose(alone[0], together[0, : int(lengths[0])], atol=1e-5)


def test_prepare_skips_too_short_and_reports_unknown_characters(tmp_path):
    Image.new("L", (12, 32), 255).save(tmp_path / "narrow.png")
    Image.new("L", (200, 32), 255).save(tmp_path / "wide.png")
    items = [ManifestItem(path="narrow.png", root=str(tmp_path), text="ababcd", kind="image", source="m:1"),
             ManifestItem(path="wide.png", root=str(tmp_path), text="aab", kind="image", source="m:2")]
    codec = Codec.from_texts(["ab"])
    with pytest.raises(CodecError, match=r"'c' .* x1, 'd' .* x1 \(use --lenient"):
        prepare_training_items(items, codec, default_extractor("image"), (2, 2, 1, 1))
    prepared, report = prepare_training_items(items, codec, default_extractor("image"), (2, 2, 1, 1), lenient=True)
    assert [p.item.source for p in prepared] == ["m:2"] and prepared[0].labels == (1, 1, 2)
    assert report.too_short == ["m:1"] and report.lenient_skipped_chars == {"c": 1, "d": 1}  # 4 labels > 3 frames
    assert min_frames((1, 1, 2)) == 4


def test_bucketed_batches_cover_everything_once_and_repeat_per_seed():
    lengths = [random.Random(i).randint(10, 500) for i in range(103)]
    batches = bucketed_batches(lengths, 8, seed=3, epoch=1, pool_batches=4)
    indices = [i for batch in batches for i, _ in batch]
    assert sorted(indices) == list(range(103))
    assert batches == bucketed_batches(lengths, 8, seed=3, epoch=1, pool_batches=4)
    assert batches != bucketed_batches(lengths, 8, seed=3, epoch=2, pool_batches=4)
    spread = np.mean([max(lengths[i] for i, _ in b) - min(lengths[i] for i, _ in b) for b in batches])
    assert spread < 150  # sorted within pools: far less than the 490 range of random batches


def test_collate_pads_and_keeps_lengths():
    batch = collate([(np.ones((4, 3), np.float32), (1, 2), "m:1"), BadSample("m:3", "path: gone"),
                     (np.ones((4, 5), np.float32), (3,), "m:4")])
    assert batch.features.shape == (2, 1, 4, 5) and batch.lengths.tolist() == [3, 5]
    assert batch.features[0, 0, :, 3:].abs().sum() == 0
    assert batch.targets.tolist() == [1, 2, 3] and batch.target_lengths.tolist() == [2, 1]
    assert batch.size == 2 and batch.wheres == ("m:1", "m:4")
    assert [str(bad.error()) for bad in batch.bad] == ["m:3: path: gone"]
    empty = collate([BadSample("m:5", "path: gone")])
    assert empty.size == 0 and empty.features is None and len(empty.bad) == 1


@settings(max_examples=25, deadline=None)
@given(lengths=st.lists(st.integers(1, 9), min_size=1, max_size=5), layers=st.integers(1, 3))
def test_length_aware_lstm_gives_the_packed_lstms_outputs_and_gradients(lengths, layers):
    """LengthAwareLSTM's padded passes (backward direction reversed within each length) compute
    what nn.LSTM computes on the packed batch: outputs, zeros past each end, input and weight
    gradients, for any lengths; the padding's values do not matter."""
    from ctctool.model import LengthAwareLSTM

    torch.manual_seed(len(lengths) * 10 + layers)
    lstm = LengthAwareLSTM(input_size=6, hidden_size=5, num_layers=layers, bidirectional=True, batch_first=True,
                           dropout=0.5 if layers > 1 else 0.0).double().eval()
    frames = torch.tensor(lengths)
    x = torch.randn(len(lengths), max(lengths) + 2, 6, dtype=torch.float64)
    padding = torch.arange(x.shape[1])[None, :] >= frames[:, None]
    x = torch.where(padding[:, :, None], torch.full_like(x, 1e3), x).requires_grad_(True)
    ours = lstm(x, frames)
    ours_grads = torch.autograd.grad((ours * torch.linspace(-1, 1, ours.numel(), dtype=torch.float64)
                                      .view_as(ours)).sum(), [x, *lstm.parameters()])
    theirs = lstm._packed(x, frames)
    theirs_grads = torch.autograd.grad((theirs * torch.linspace(-1, 1, theirs.numel(), dtype=torch.float64)
                                        .view_as(theirs)).sum(), [x, *lstm.parameters()])
    assert ours.shape == (len(lengths), x.shape[1], 10)
    assert torch.allclose(ours, theirs, atol=1e-12)
    assert torch.all(ours[padding] == 0)
    for mine, packed in zip(ours_grads, theirs_grads):
        assert torch.allclose(mine, packed, atol=1e-10)


@given(lengths=st.lists(st.integers(1, 12), min_size=1, max_size=6), extra=st.integers(0, 4))
def test_reversed_within_reverses_each_row_and_is_its_own_inverse(lengths, extra):
    from ctctool.model import reversed_within

    frames = max(lengths) + extra
    order = reversed_within(torch.tensor(lengths), frames)
    for row, length in zip(order.tolist(), lengths):
        assert row == [*range(length - 1, -1, -1), *range(length, frames)]
    assert torch.equal(order.gather(1, order), torch.arange(frames).expand(len(lengths), -1))


def test_length_aware_lstm_draws_dropout_between_layers_from_torchs_rng():
    """Dropout between layers comes from torch's generator, which resume state saves (cuDNN's
    own dropout state cannot be saved): the same generator state gives the same masks."""
    from ctctool.model import LengthAwareLSTM

    torch.manual_seed(0)
    lstm = LengthAwareLSTM(input_size=8, hidden_size=16, num_layers=2, bidirectional=True, batch_first=True,
                           dropout=0.5)
    x, frames = torch.randn(3, 7, 8), torch.tensor([7, 5, 2])
    lstm.eval()
    assert torch.equal(lstm(x, frames), lstm(x, frames))
    lstm.train()
    state = torch.get_rng_state()
    first = lstm(x, frames)
    torch.set_rng_state(state)
    assert torch.equal(first, lstm(x, frames))
    assert not torch.equal(first, lstm(x, frames))  # the RNG moved on: other masks


def channels_last_blocks(network: CTCRecognizer, features: torch.Tensor, lengths: torch.Tensor) -> list[bool]:
    """Per conv block, whether its output came out channels-last on ``features``."""
    seen: list[bool] = []
    hooks = [block.register_forward_hook(
        lambda module, inputs, output: seen.append(output.is_contiguous(memory_format=torch.channels_last)
                                                   and not output.is_contiguous()))
             for block in network.conv]
    try:
        network(features, lengths)
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def test_the_conv_blocks_run_channels_last_and_contiguous_weights_give_the_same_outputs():
    """The network is built with channels-last conv weights, so every block's activations are
    channels-last (the layout that makes CPU steps cheaper: README, "Channels-last
    convolutions"). Weights saved in the contiguous layout, as model files before it were, load
    into it, keep its layout, and read inputs as a contiguous network does."""
    torch.manual_seed(0)
    config = ModelConfig.for_modality("image", 32, 12)
    network = CTCRecognizer(config).eval()
    features, lengths = torch.rand(3, 1, 32, 90), torch.tensor([90, 61, 40])
    assert channels_last_blocks(network, features, lengths) == [True] * len(network.conv)

    contiguous = CTCRecognizer(config).eval()
    contiguous.conv.to(memory_format=torch.contiguous_format)
    contiguous.load_state_dict({name: value.contiguous() for name, value in network.state_dict().items()})
    assert channels_last_blocks(contiguous, features, lengths) == [False] * len(network.conv)
    with torch.no_grad():
        ours, ours_lengths = network(features, lengths)
        theirs, theirs_lengths = contiguous(features, lengths)
    assert torch.equal(ours_lengths, theirs_lengths)
    assert torch.allclose(ours, theirs, atol=1e-5)

    reloaded = CTCRecognizer(config).eval()
    reloaded.load_state_dict(contiguous.state_dict())
    assert channels_last_blocks(reloaded, features, lengths) == [True] * len(network.conv)
    with torch.no_grad():
        assert torch.equal(reloaded(features, lengths)[0], ours)


def test_a_trained_and_reloaded_model_still_runs_channels_last(tiny_model):
    """Training's optimizer, weight average and model file keep the layout: the model a run
    saves reads with channels-last blocks."""
    from ctctool.checkpoint import load_model

    network = load_model(str(tiny_model)).network.eval()
    assert all(block[0].weight.is_contiguous(memory_format=torch.channels_last) for block in network.conv)
    assert channels_last_blocks(network, torch.rand(2, 1, 32, 70), torch.tensor([70, 50])) == \
        [True] * len(network.conv)
