"""What the console shows of the libraries convae drives, set up before they are imported
(convae-train and convae-eval import torch and Lightning only for an accepted config).

- Warnings and tips that convae's own use of Hydra, Lightning and torch causes, and that a
  user cannot act on, are silenced by message (``quiet_libraries``); every other warning,
  a user's own included, shows as before.
- A sweep job keeps its console to warnings and errors (``quiet_sweep_job``): the full
  config, Lightning's lines (model summary, devices, seed) and convae's INFO lines go to
  the job's train.log only; the sweep prints one line per job and a closing table
  (convae/sweeps/console.py).

``CONVAE_VERBOSE=1`` in the environment turns all of this off: the full output as before.
"""

from __future__ import annotations

import logging
import os
import warnings

from convae.hydra_compat import BASIC_LAUNCHER_LOGGER

VERBOSE_ENV = "CONVAE_VERBOSE"
LIGHTNING_LOGGERS = ("pytorch_lightning", "lightning_fabric")
# Lightning's rank_zero_info goes through one of these (the package imported last sets it).
_RANK_ZERO_LOGGERS = tuple(f"{name}.utilities.rank_zero" for name in LIGHTNING_LOGGERS)

# (message regex at the start of the warning, category, why convae cannot fix it)
SILENCED: tuple[tuple[str, type[Warning], str], ...] = (
    (
        r"\s*'hydra/launcher/(joblib|submitit_local|submitit_slurm)' is validated against "
        r"ConfigStore schema with the same name",
        UserWarning,
        "convae's launcher presets keep the plugins' names (hydra/launcher=joblib), which "
        "Hydra 1.1+ calls deprecated however the file is written",
    ),
    (
        r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        FutureWarning,
        "Lightning's own use of torch's pytree API, at every fit",
    ),
    (
        r"The `srun` command is available on your system but is not used",
        Warning,
        "a hint for Lightning's own SLURM launch; convae's sweeps reach SLURM through "
        "hydra/launcher=submitit_slurm, and a job it starts runs under srun",
    ),
)
TIP_PREFIX = "💡 Tip:"  # Lightning's advertisements for its cloud products


def verbose() -> bool:
    """Whether the user asked for the libraries' full output (CONVAE_VERBOSE=1)."""
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


class _NoTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(TIP_PREFIX)


def quiet_libraries() -> None:
    """Silences the SILENCED warnings and Lightning's tips, unless CONVAE_VERBOSE=1; called
    again it adds nothing."""
    if verbose():
        return
    for message, category, _ in SILENCED:
        warnings.filterwarnings("ignore", message=message, category=category)
    for name in _RANK_ZERO_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoTips) for f in logger.filters):
            logger.addFilter(_NoTips())


class _NoLaunchLines(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("\t#")


def hide_launch_lines() -> None:
    """Hydra's basic launcher logs each job's overrides as it starts it ("#3 : seed=1 ..."):
    in a quiet sweep each job has its line when it ends instead (convae/sweeps/console.py).
    Its other lines ("Launching 4 jobs locally") stay."""
    if verbose():
        return
    logger = logging.getLogger(BASIC_LAUNCHER_LOGGER)
    if not any(isinstance(f, _NoLaunchLines) for f in logger.filters):
        logger.addFilter(_NoLaunchLines())


def quiet_sweep() -> bool:
    """Whether this process runs a job of a sweep (``-m``) with the quiet console."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if verbose() or not HydraConfig.initialized():
        return False
    return HydraConfig.get().mode == RunMode.MULTIRUN


def quiet_sweep_job() -> None:
    """The console of a sweep job shows warnings and errors only; train.log (Hydra's file
    handler) still gets everything. Called once Hydra has set up the job's logging."""
    for handler in logging.getLogger().handlers:
        if _to_console(handler):
            handler.setLevel(logging.WARNING)


def _to_console(handler: logging.Handler) -> bool:
    return isinstance(handler, logging.StreamHandler) and not isinstance(
        handler, logging.FileHandler
    )


def lightning_logs_apart() -> None:
    """Lightning's loggers print to stderr on their own, not through Hydra's handlers (the
    console format, train.log): what Lightning sets up when it is imported before logging
    is configured, as it was before the commands deferred importing it. In a quiet sweep
    job they go through Hydra's handlers instead: to train.log, not the console."""
    if quiet_sweep():
        lightning_logs_to_run_log()
        return
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        if not logger.handlers:
            logger.setLevel(logging.INFO)
            logger.addHandler(logging.StreamHandler())
            logger.propagate = False


def lightning_logs_to_run_log() -> None:
    """Lightning's INFO lines (devices, seed, model summary) reach the root logger's
    handlers: the job's train.log, and the console from WARNING up."""
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        for handler in [h for h in logger.handlers if _to_console(h)]:
            logger.removeHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = True
