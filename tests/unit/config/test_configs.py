import dataclasses
import importlib.util
from importlib.resources import files

import pytest
from omegaconf import OmegaConf
from omegaconf.errors import ValidationError

from convae.config.errors import ConfigError
from convae.config.schema import TrainConfig
from convae.config.validate import validate
from convae.models import UPSAMPLERS

CONF = files("convae.conf")
GROUPS = sorted(p.name for p in CONF.iterdir() if p.is_dir() and not p.name.startswith("_"))


def options(group: str) -> list[str]:
    return sorted(p.name.removesuffix(".yaml") for p in CONF.joinpath(group).iterdir()
                  if p.name.endswith(".yaml"))  # fmt: skip


# The schema's sections (model, data, ...) and the dataclass that types each.
SECTIONS = {f.name: f.default_factory for f in dataclasses.fields(TrainConfig)
            if dataclasses.is_dataclass(f.default_factory)}  # fmt: skip


def test_the_default_config_is_the_seed_autoencoder(compose):
    cfg = compose(validate=False)
    assert list(cfg.model.depths) == [16, 8, 8]
    assert cfg.model.upsample == "nearest"
    assert (cfg.data.noise_std, cfg.data.batch_size, cfg.loss) == (0.0, 200, "bce")
    assert cfg.optim.lr == 1e-3
    validate(cfg)


@pytest.mark.parametrize(
    "group,option", [(g, o) for g in GROUPS for o in options(g)], ids=lambda v: str(v)
)
def test_every_config_group_option_composes_validates_and_keeps_the_schemas_types(
    compose, group, option
):
    cfg = compose(f"{group}={option}")  # validated
    assert OmegaConf.get_type(cfg) is TrainConfig
    assert {name: OmegaConf.get_type(cfg, name) for name in SECTIONS} == SECTIONS
    with pytest.raises(ValidationError, match="batch_size"):  # typed, not a plain dict
        cfg.data.batch_size = "many"


def test_composing_a_key_the_schema_lacks_is_refused_naming_the_keys_it_has(compose):
    from hydra.errors import ConfigCompositionException

    from convae.config.errors import one_line
    from convae.config.schema import ModelConfig

    with pytest.raises(ConfigCompositionException) as err:
        compose("model.depth=3", validate=False)
    line = one_line(err.value)
    assert line.startswith("model.depth: unknown key; ModelConfig has "), line
    assert all(f.name in line for f in dataclasses.fields(ModelConfig))


def test_every_registered_decoder_has_a_yaml_file_and_every_yaml_a_decoder(compose):
    for name in UPSAMPLERS:
        assert compose(f"upsample={name}", validate=False).model.upsample == name
    for option in options("upsample"):
        assert compose(f"upsample={option}", validate=False).model.upsample in UPSAMPLERS


def test_the_two_seed_experiments_compose(compose):
    ae = compose("experiment=seed_autoencoder")
    assert (list(ae.model.depths), ae.model.upsample, ae.data.noise_std) == ([16, 8, 8],
            "nearest", 0.0)  # fmt: skip
    assert (ae.trainer.max_epochs, ae.data.batch_size, ae.optim.lr, ae.loss) == (20, 200,
            1e-3, "bce")  # fmt: skip
    dn = compose("experiment=seed_denoiser")
    assert (list(dn.model.depths), dn.model.upsample, dn.data.noise_std) == ([32, 32, 16],
            "nearest", 0.5)  # fmt: skip
    assert dn.trainer.max_epochs == 100


def test_upsample_is_one_key_that_overrides_the_group(compose):
    cfg = compose("model.upsample=transposed", "model.transposed_kernel_size=4")
    assert (cfg.model.upsample, cfg.model.transposed_kernel_size) == ("transposed", 4)


def test_the_optimizer_is_built_by_hydra_instantiate(compose):
    import torch
    from hydra.utils import instantiate

    cfg = compose("optim=adamw", "optim.lr=0.01")
    opt = instantiate(cfg.optim)(params=[torch.nn.Parameter(torch.zeros(1))])
    assert isinstance(opt, torch.optim.AdamW)
    assert opt.defaults["lr"] == 0.01


@pytest.mark.parametrize(
    "override,key",
    [
        ("model.depths=[]", "model.depths"),
        ("model.depths=[16,-8]", "model.depths"),
        ("model.kernel_size=4", "model.kernel_size"),
        ("model.upsample=cubic", "model.upsample"),
        ("data.noise_std=-0.1", "data.noise_std"),
        ("data.noise_std=nan", "data.noise_std"),
        ("data.batch_size=0", "data.batch_size"),
        ("data.source=cifar", "data.source"),
        ("optim.lr=0", "optim.lr"),
        ("loss=l1", "loss"),
    ],
)
def test_invalid_values_are_named_in_one_line(compose, override, key):
    cfg = compose(override, validate=False)
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    message = str(err.value)
    assert message.startswith(f"{key}=") and "\n" not in message


@pytest.mark.parametrize(
    "override,key",
    [
        ("callbacks.checkpoint_mode=best", "callbacks.checkpoint_mode"),
        ("callbacks.artifact_images_every=-1", "callbacks.artifact_images_every"),
        ("callbacks.artifact_digits=0", "callbacks.artifact_digits"),
        ("seed=-3", "seed"),
    ],
)
def test_invalid_callback_and_seed_values_are_refused(compose, override, key):
    cfg = compose(override, validate=False)
    with pytest.raises(ConfigError, match=rf"^{key}="):
        validate(cfg)


def test_resume_and_ckpt_path_together_are_refused(compose):
    cfg = compose("resume=a", "ckpt_path=b/checkpoints/last.ckpt", validate=False)
    with pytest.raises(ConfigError, match=r"^ckpt_path="):
        validate(cfg)


def test_logger_mlflow_without_mlflow_installed_is_refused_naming_the_extra(compose, monkeypatch):
    cfg = compose("logger=mlflow", validate=False)
    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mlflow" else found(name, *a))  # fmt: skip
    with pytest.raises(ConfigError, match=r"^logger\.mlflow=.*pip install 'convae\[mlflow\]'"):
        validate(cfg)
