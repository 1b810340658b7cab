"""convae-train's config composed without its command line: for convae-bench and the tests.

The same files (pkg://convae.conf), schema (convae/config/schema.py's TrainConfig) and resolvers
convae-train uses, then the same ``validate``; so a config composed here is one convae-train
would run, and a config it refuses is refused here with the same error.
"""

from __future__ import annotations

from collections.abc import Sequence

from hydra import compose, initialize_config_module
from omegaconf import DictConfig

from convae.config.schema import register_configs
from convae.config.validate import validate as validate_config

CONFIG_MODULE = "convae.conf"
CONFIG_NAME = "train"


def compose_train(
    overrides: Sequence[str] = (), *, validate: bool = True, with_hydra: bool = False
) -> DictConfig:
    """conf/train.yaml with ``overrides`` (as on convae-train's command line), checked by
    ``convae.config.validate.validate`` unless ``validate=False``; ``with_hydra`` keeps the
    ``hydra`` node (Hydra drops it from a composed config unless asked).

    Raises what convae-train would report: Hydra's ConfigCompositionException (unknown key,
    wrong type, missing group option) or convae.config.errors.ConfigError (an invalid value)."""
    register_configs()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        cfg = compose(CONFIG_NAME, overrides=list(overrides), return_hydra_config=with_hydra)
    if validate:
        validate_config(cfg)
    return cfg
