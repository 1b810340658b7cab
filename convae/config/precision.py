"""``trainer.precision: auto``: bf16 mixed precision where the hardware multiplies bf16
natively, fp32 elsewhere. Emulated bf16 (a CPU without AMX or AVX512-BF16) is slower than
fp32, so the choice follows the hardware the run starts on, read at run time, never a guess.

Resolved once, by ``convae.config.validate.validate``: a precision the hardware cannot run
is refused with the other config errors, before any data loads. torch is imported only to
ask about a GPU, so a refused value is answered without it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from convae.config.errors import ConfigError
from convae.hardware import cpu_bf16_flags

AUTO = "auto"
# Lightning's names; "bf16"/"16"/"32" are its short aliases of the same settings.
ALIASES = {"32": "32-true", "bf16": "bf16-mixed", "16": "16-mixed"}
CHOICES = (AUTO, "32-true", "bf16-mixed", "16-mixed")


@dataclass(frozen=True)
class Precision:
    value: str  # what Lightning gets: 32-true, bf16-mixed or 16-mixed
    reason: str  # one line for the log
    # Transposed convolutions whose kernel is not a multiple of their stride kept in
    # float32 inside bf16 autocast (see float32_transposed).
    float32_transposed: bool = False


def float32_transposed(model: Mapping[str, Any] | None, cpu_flags: Sequence[str]) -> bool:
    """Whether auto keeps the model's transposed convolutions in float32 under bf16.

    On CPUs with AVX512-BF16 but no AMX, oneDNN's bf16 kernels for a stride-2 transposed
    convolution whose kernel is not a multiple of the stride (k = 3, 5: uneven overlap) take
    2-4x the float32 time, forward and backward, at every layer size convae builds; with an
    even kernel they run at about float32's speed. A decoder of k = 3 stages then trained
    slower at bf16-mixed than at 32-true, so auto keeps those layers in float32 and the
    rest of the model in bf16 (measured in docs/speed.md)."""
    if model is None or "amx_bf16" in cpu_flags or model.get("upsample") != "transposed":
        return False
    return int(model.get("transposed_kernel_size", 3)) % 2 == 1


def uses_gpu(accelerator: str) -> bool:
    """Where Lightning will train: "auto" means the GPU when CUDA has one."""
    if accelerator in ("gpu", "cuda"):
        return True
    if accelerator != AUTO:
        return False
    import torch  # only here: the CPU answers need no torch

    return torch.cuda.is_available()


def resolve_precision(
    requested: str, accelerator: str, *, model: Mapping[str, Any] | None = None,
    cpu_flags: list[str] | None = None, gpu_bf16: bool | None = None,
) -> Precision:  # fmt: skip
    """The precision to train with, and why; a value this hardware cannot run is a one-line
    ConfigError. ``model``: the config's model section, for auto's per-layer choice on the
    CPU. ``cpu_flags`` and ``gpu_bf16`` default to what this process runs on."""
    value = ALIASES.get(str(requested), str(requested))
    if value not in CHOICES:
        raise ConfigError(
            f"trainer.precision={requested!r} is invalid: expected one of {', '.join(CHOICES)}"
        )
    gpu = uses_gpu(accelerator)
    if gpu:
        if gpu_bf16 is None:
            import torch

            gpu_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        if value == AUTO:
            if gpu_bf16:
                return Precision("bf16-mixed", "auto: this GPU computes in bf16 natively")
            return Precision("32-true", "auto: this GPU has no native bf16")
        if value == "bf16-mixed" and not gpu_bf16:
            raise ConfigError(
                "trainer.precision='bf16-mixed' is invalid: this GPU has no bf16 support; "
                "use auto, 32-true or 16-mixed"
            )
        return Precision(value, "as configured")
    if value == "16-mixed":
        raise ConfigError(
            "trainer.precision='16-mixed' is invalid: fp16 mixed precision needs a GPU; "
            "on the CPU use auto, 32-true or bf16-mixed"
        )
    flags = cpu_bf16_flags() if cpu_flags is None else cpu_flags
    if value == AUTO:
        if flags and float32_transposed(model, flags):
            why = (f"auto: this CPU has native bf16 ({', '.join(flags)}); the transposed "
                   "convolutions (odd kernel) stay float32, their bf16 kernels are slower "
                   "here without AMX")  # fmt: skip
            return Precision("bf16-mixed", why, float32_transposed=True)
        if flags:
            return Precision("bf16-mixed", f"auto: this CPU has native bf16 ({', '.join(flags)})")
        return Precision("32-true", "auto: this CPU has no native bf16 (no AMX or AVX512-BF16)")
    if value == "bf16-mixed" and not flags:
        return Precision(value, "as configured; this CPU emulates bf16, expect it slower than fp32")
    return Precision(value, "as configured")
