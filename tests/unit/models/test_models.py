from dataclasses import asdict

import pytest
import torch
from torch import nn

from convae.config.schema import ModelConfig
from convae.models import UPSAMPLERS, ConvAutoencoder, count_parameters
from convae.models.losses import reconstruction_loss

DEPTH_PRESETS = {"16-8-8": [16, 8, 8], "32-32-16": [32, 32, 16]}


def layer_sequence(model: nn.Module) -> list[str]:
    """Conv / pool / resize layers in order, as 'conv a->b', 'pool', 'resize n'."""
    out = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            out.append(f"conv {m.in_channels}->{m.out_channels}")
        elif isinstance(m, nn.MaxPool2d):
            out.append("pool")
        elif type(m).__name__ == "Resize":
            out.append(f"resize {m.size}")
    return out


def test_seed_model_matches_the_tutorial_layer_for_layer():
    model = ConvAutoencoder(depths=[16, 8, 8], upsample="nearest")
    assert layer_sequence(model) == [
        "conv 1->16", "pool", "conv 16->8", "pool", "conv 8->8", "pool",
        "resize 7", "conv 8->8", "resize 14", "conv 8->8", "resize 28", "conv 8->16",
        "conv 16->1",
    ]  # fmt: skip
    assert count_parameters(model) == 4385
    assert model.encoder(torch.zeros(1, 1, 28, 28)).shape == (1, 8, 4, 4)


def test_denoiser_decoder_mirrors_32_32_16():
    model = ConvAutoencoder(depths=[32, 32, 16], upsample="nearest")
    decoder_convs = [s for s in layer_sequence(model.decoder) if s.startswith("conv")]
    assert decoder_convs == ["conv 16->16", "conv 16->32", "conv 32->32", "conv 32->1"]


@pytest.mark.parametrize("depths", DEPTH_PRESETS.values(), ids=DEPTH_PRESETS.keys())
@pytest.mark.parametrize("options", [{"transposed_kernel_size": 3}, {"transposed_kernel_size": 4,
                                     "icnr": True}], ids=["k3", "k4-icnr"])  # fmt: skip
@pytest.mark.parametrize("shape", [(1, 28), (3, 32)], ids=["grey28", "rgb32"])
@pytest.mark.parametrize("upsample", sorted(UPSAMPLERS))
def test_every_decoder_maps_its_input_shape_back_and_trains(upsample, shape, depths, options):
    """Digits (1 x 28 x 28) and colour photo patches (3 x 32 x 32) alike."""
    torch.manual_seed(0)
    channels, size = shape
    model = ConvAutoencoder(
        depths=depths, upsample=upsample, in_channels=channels, image_size=size, **options
    )
    x = torch.rand(4, channels, size, size)
    logits = model(x)
    assert logits.shape == (4, channels, size, size)
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    reconstruction_loss("bce", logits, x).backward()
    opt.step()
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_pixel_shuffle_with_icnr_starts_as_conv_then_nearest_resize():
    torch.manual_seed(0)
    stage = ConvAutoencoder(depths=[8], upsample="pixel_shuffle", icnr=True).decoder[0]
    x = torch.rand(2, 8, 14, 14)
    expected = torch.relu(
        nn.functional.interpolate(nn.functional.conv2d(x, stage.conv.weight[::4],
                                  stage.conv.bias[::4], padding=1), scale_factor=2)
    )  # fmt: skip
    torch.testing.assert_close(stage(x), expected)


def test_transposed_kernel_size_sets_the_overlap():
    for k in (3, 4):
        model = ConvAutoencoder(depths=[16, 8, 8], upsample="transposed", transposed_kernel_size=k)
        kernels = {m.kernel_size for m in model.modules() if isinstance(m, nn.ConvTranspose2d)}
        assert kernels == {(k, k)}


def test_the_model_config_maps_onto_the_constructor():
    """ConvAutoencoder is the builder: every ModelConfig key is one of its keywords. Bad
    values are refused by config.validate, not here (tests/unit/config/test_configs.py)."""
    assert count_parameters(ConvAutoencoder(**asdict(ModelConfig()))) == 4385
