"""model.init: the tutorial's Glorot-uniform kernels and zero biases, or PyTorch's defaults."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from convae.config.errors import ConfigError
from convae.models import UPSAMPLERS, ConvAutoencoder


def convs(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


def glorot_bound(weight: torch.Tensor) -> float:
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(weight)
    return math.sqrt(6.0 / (fan_in + fan_out))


@pytest.mark.parametrize("upsample", sorted(UPSAMPLERS))
def test_tutorial_init_gives_glorot_uniform_kernels_and_zero_biases(upsample):
    torch.manual_seed(0)
    net = ConvAutoencoder(depths=[32, 32, 16], upsample=upsample, init="tutorial")
    for conv in convs(net):
        bound = glorot_bound(conv.weight)
        w = conv.weight.detach()
        assert w.abs().max() <= bound
        if w.numel() >= 2000:  # a uniform on [-b, b] has std b / sqrt(3)
            assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.1)
        assert torch.count_nonzero(conv.bias) == 0


def test_the_two_inits_give_different_step_0_outputs():
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    outputs = {}
    for init in ("torch", "tutorial"):
        torch.manual_seed(0)
        outputs[init] = ConvAutoencoder(init=init)(x)
    assert not torch.allclose(outputs["torch"], outputs["tutorial"])


def test_torch_init_keeps_pytorchs_own_draws():
    torch.manual_seed(0)
    first = ConvAutoencoder(init="torch").encoder[0]
    torch.manual_seed(0)
    reference = nn.Conv2d(1, 16, 3, padding=1)
    assert torch.equal(first.weight, reference.weight)
    assert torch.equal(first.bias, reference.bias)


@pytest.mark.parametrize("init", ["torch", "tutorial"])
def test_icnr_ties_the_sub_kernels_after_either_init(init):
    torch.manual_seed(0)
    net = ConvAutoencoder(upsample="pixel_shuffle", icnr=True, init=init)
    for stage in net.decoder[:-1]:
        w, b = stage.conv.weight, stage.conv.bias
        for phase in range(1, 4):
            assert torch.equal(w[phase::4], w[0::4]) and torch.equal(b[phase::4], b[0::4])
        if init == "tutorial":
            base = torch.empty(w.shape[0] // 4, *w.shape[1:])
            assert w.abs().max() <= glorot_bound(base)
            assert torch.count_nonzero(b) == 0


def test_the_tutorial_presets_use_the_tutorial_init(compose):
    for experiment in ("seed_autoencoder", "seed_denoiser"):
        assert compose(f"experiment={experiment}").model.init == "tutorial"


def test_an_unknown_init_is_refused_naming_the_choices(compose):
    with pytest.raises(ConfigError, match=r"^model\.init='glorot' is invalid: .*torch, tutorial"):
        compose("model.init=glorot")
