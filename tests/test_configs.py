from importlib.resources import files

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from convae.config import ConfigError, register_configs, validate
from convae.models import UPSAMPLERS

CONF = files("convae.conf")
GROUPS = sorted(p.name for p in CONF.iterdir() if p.is_dir() and not p.name.startswith("_"))


def options(group: str) -> list[str]:
    return sorted(p.name.removesuffix(".yaml") for p in CONF.joinpath(group).iterdir()
                  if p.name.endswith(".yaml"))  # fmt: skip


def compose_train(*overrides: str):
    register_configs()
    with initialize_config_module(config_module="convae.conf", version_base="1.3"):
        return compose("train", overrides=list(overrides))


def test_the_default_config_is_the_seed_autoencoder():
    cfg = compose_train()
    assert list(cfg.model.depths) == [16, 8, 8]
    assert cfg.model.upsample == "nearest"
    assert (cfg.data.noise_std, cfg.data.batch_size, cfg.loss) == (0.0, 200, "bce")
    assert cfg.optim.lr == 1e-3
    validate(cfg)


@pytest.mark.parametrize(
    "group,option", [(g, o) for g in GROUPS for o in options(g)], ids=lambda v: str(v)
)
def test_every_config_group_option_composes_and_validates(group, option):
    cfg = compose_train(f"{group}={option}")
    validate(cfg)
    assert OmegaConf.is_struct(cfg)


def test_every_registered_decoder_has_a_yaml_file_and_every_yaml_a_decoder():
    for name in UPSAMPLERS:
        assert compose_train(f"upsample={name}").model.upsample == name
    for option in options("upsample"):
        assert compose_train(f"upsample={option}").model.upsample in UPSAMPLERS


def test_the_two_seed_experiments_compose():
    ae = compose_train("experiment=seed_autoencoder")
    assert (list(ae.model.depths), ae.model.upsample, ae.data.noise_std) == ([16, 8, 8],
            "nearest", 0.0)  # fmt: skip
    assert (ae.trainer.max_epochs, ae.data.batch_size, ae.optim.lr, ae.loss) == (20, 200,
            1e-3, "bce")  # fmt: skip
    dn = compose_train("experiment=seed_denoiser")
    assert (list(dn.model.depths), dn.model.upsample, dn.data.noise_std) == ([32, 32, 16],
            "nearest", 0.5)  # fmt: skip
    assert dn.trainer.max_epochs == 100


def test_upsample_is_one_key_that_overrides_the_group():
    cfg = compose_train("model.upsample=transposed", "model.transposed_kernel_size=4")
    assert (cfg.model.upsample, cfg.model.transposed_kernel_size) == ("transposed", 4)


def test_the_optimizer_is_built_by_hydra_instantiate():
    import torch
    from hydra.utils import instantiate

    cfg = compose_train("optim=adamw", "optim.lr=0.01")
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
def test_invalid_values_are_named_in_one_line(override, key):
    cfg = compose_train(override)
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
def test_invalid_callback_and_seed_values_are_refused(override, key):
    with pytest.raises(ConfigError, match=rf"^{key}="):
        validate(compose_train(override))


def test_resume_and_ckpt_path_together_are_refused():
    with pytest.raises(ConfigError, match=r"^ckpt_path="):
        validate(compose_train("resume=a", "ckpt_path=b/checkpoints/last.ckpt"))
