"""docs/extending.md's worked example, run for real: a data source and a decoder, each one
Python file and one YAML file (experiments/extending/), registered, composed by Hydra,
built and trained, in this process and through convae-train's command line."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys

import pytest
import torch
from helpers import BIN, ROOT
from torch import nn

from convae.config.errors import ConfigError
from convae.config.validate import data_shape
from convae.data.registry import register_source, unregister_source
from convae.models import ConvAutoencoder
from convae.models.decoders import (
    DECODER_OPTIONS,
    UPSAMPLERS,
    decoder_setting_problems,
    register,
    unregister,
)
from convae.models.upsample import same_conv
from convae.plugins import PLUGINS_VARIABLE, load_plugins
from convae.training.build import build_datamodule, build_module

EXAMPLE = ROOT / "experiments" / "extending"
FILES = [EXAMPLE / "stripes.py", EXAMPLE / "blur_decoder.py"]
YAMLS = [
    EXAMPLE / "conf" / "source" / "stripes.yaml",
    EXAMPLE / "conf" / "upsample" / "nearest_blur.yaml",
]
OVERRIDES = [
    f"hydra.searchpath=[file://{EXAMPLE / 'conf'}]",
    "+source=stripes",
    "upsample=nearest_blur",
]


@pytest.fixture
def example():
    """The example's source and decoder registered, and removed again afterwards: the other
    tests run over the whole registry, whose every decoder has a YAML file in conf/."""
    load_plugins([str(f) for f in FILES])
    yield
    unregister_source("stripes")
    unregister("nearest_blur")
    for name in [m for m in sys.modules if m.startswith("convae_plugin_")]:
        del sys.modules[name]


def test_the_example_composes_builds_and_trains(example, compose):
    cfg = compose(*OVERRIDES, "trainer.max_steps=2")
    assert (cfg.data.source, cfg.model.upsample, data_shape(cfg.data)) == (
        "stripes",
        "nearest_blur",
        (1, 16),
    )
    dm = build_datamodule(cfg)
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (600, 100, 100)
    batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (50, 1, 16, 16) and batch.dtype == torch.uint8
    module = build_module(cfg)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
    for _ in range(2):  # two training steps, as the trainer takes them
        inputs, targets = module._training_pair(batch)
        loss = module.loss_fn(module(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        assert torch.isfinite(loss)
    assert module.reconstruct(inputs).shape == batch.shape


@pytest.mark.slow  # the documented convae-train command, end to end
def test_the_documented_command_trains(tmp_path):
    env = {**os.environ, PLUGINS_VARIABLE: ",".join(map(str, FILES))}
    proc = subprocess.run(
        [str(BIN / "convae-train"), *OVERRIDES, "trainer.max_steps=2", "threads=1",
         f"hydra.run.dir={tmp_path / 'run'}", "callbacks.latent_space=false"],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["status"] == "completed"
    assert (results["config"]["data"]["source"], results["config"]["model"]["upsample"]) == (
        "stripes", "nearest_blur",
    )  # fmt: skip


def test_without_the_plugin_the_source_is_refused(compose):
    with pytest.raises(
        ConfigError, match=r"data.source='stripes' is invalid: expected one of auto, "
    ):
        compose("data.source=stripes")


def test_registering_a_source_imports_no_torch():
    code = (
        "import sys, convae.data.shape as s; "
        "assert 'stripes' in s.SOURCES; print('torch' in sys.modules)"
    )
    env = {**os.environ, PLUGINS_VARIABLE: str(FILES[0])}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert proc.stdout.strip() == "False"


def test_a_name_is_registered_once(example):
    with pytest.raises(ValueError, match="registered twice"):
        register_source("stripes", native_size=16)(lambda request: None)
    with pytest.raises(ValueError, match="registered twice"):
        register("nearest_blur")(lambda **kwargs: None)


@dataclasses.dataclass(frozen=True)
class WidthOptions:
    test_stage_width: int = 2


def test_a_decoder_gets_its_own_settings_and_no_one_elses():
    seen = []

    @register("test_wide", options=WidthOptions)
    def wide(*, in_ch, out_ch, target, kernel_size, options):
        seen.append(options)
        return nn.Sequential(nn.Upsample(size=target), same_conv(in_ch, out_ch, kernel_size))

    try:
        ConvAutoencoder(depths=[2], upsample="test_wide", test_stage_width=5, icnr=True)
        ConvAutoencoder(depths=[2], upsample="test_wide")
        assert seen == [WidthOptions(5), WidthOptions(2)]
        # Another decoder ignores it, as the transposed decoder ignores icnr.
        ConvAutoencoder(depths=[2], upsample="nearest", test_stage_width=5)
    finally:
        unregister("test_wide")
    assert "test_wide" not in UPSAMPLERS and "test_wide" not in DECODER_OPTIONS
    with pytest.raises(TypeError, match="test_stage_width"):
        ConvAutoencoder(depths=[2], upsample="nearest", test_stage_width=5)


PLUGIN_WITH_A_SETTING = """
import dataclasses
from torch import nn
from convae.models.decoders import register
from convae.models.upsample import same_conv

@dataclasses.dataclass(frozen=True)
class WideOptions:
    stage_width: int = 2

@register("wide", options=WideOptions)
def wide(*, in_ch, out_ch, target, kernel_size, options):
    print("stage_width", options.stage_width)
    return nn.Sequential(nn.Upsample(size=target), same_conv(in_ch, out_ch, kernel_size))
"""


def test_a_plugin_decoders_settings_join_the_model_schema(tmp_path):
    plugin = tmp_path / "wide.py"
    plugin.write_text(PLUGIN_WITH_A_SETTING)
    code = ("from convae.config.compose import compose_train\n"
            "from convae.models import ConvAutoencoder\n"
            "cfg = compose_train(['model.upsample=wide', 'model.stage_width=5'])\n"
            "ConvAutoencoder(**cfg.model)\n"
            "compose_train(['model.stage_width=five'])\n")  # fmt: skip
    env = {**os.environ, PLUGINS_VARIABLE: str(plugin)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, cwd=tmp_path, timeout=120)  # fmt: skip
    assert "stage_width 5" in proc.stdout  # the key composed, typed, and reached the decoder
    assert proc.returncode != 0 and "model.stage_width" in proc.stderr  # an int, by its schema


def test_decoder_settings_are_checked_by_their_decoder_whichever_is_chosen():
    assert decoder_setting_problems({"upsample": "nearest", "transposed_kernel_size": 4}) == []
    assert decoder_setting_problems({"upsample": "nearest", "transposed_kernel_size": 1}) == [
        ("model.transposed_kernel_size", 1, "expected an int >= 2 (stride 2 leaves holes below)")
    ]


def test_the_page_shows_the_example_as_it_is():
    page = (ROOT / "docs" / "extending.md").read_text()
    for path in FILES + YAMLS:
        assert path.read_text().strip() in page, f"docs/extending.md does not show {path} as it is"
    for command in re.findall(r"^convae-train .*$", page, flags=re.M):
        assert "+source=stripes" in command and "upsample=nearest_blur" in command
