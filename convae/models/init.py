"""How the network's weights start: ``model.init``.

``torch``: PyTorch's layer defaults (Kaiming-uniform kernels with a=sqrt(5), uniform biases).
``tutorial``: what the tutorial's TensorFlow layers start from, Glorot-uniform (Xavier)
kernels and zero biases, on every conv and transposed conv. The ICNR option keeps its
promise under both: its sub-kernels are tied after the initialisation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

# Names only up here: config.validate checks model.init before torch is imported.
INITS = ("torch", "tutorial")


def glorot_zero_(conv: nn.Conv2d | nn.ConvTranspose2d) -> None:
    """TensorFlow's conv defaults: Glorot-uniform kernel, zero bias. The bound
    sqrt(6 / (fan_in + fan_out)) is symmetric in the fans, so the transposed conv's swapped
    weight layout gives the same bound as TensorFlow's."""
    from torch import nn

    nn.init.xavier_uniform_(conv.weight)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def initialise_(net: nn.Module, init: str) -> None:
    """Re-initialises ``net`` in place for ``init``; ``torch`` keeps the weights the layers
    were built with, so its random draws are exactly those of a net built without this."""
    if init == "torch":
        return
    from torch import nn

    from convae.models.upsample import PixelShuffleStage, icnr_

    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            glorot_zero_(module)
    for module in net.modules():  # after every conv: tying first would be overwritten
        if isinstance(module, PixelShuffleStage) and module.icnr:
            icnr_(module.conv, reinit=glorot_zero_)
