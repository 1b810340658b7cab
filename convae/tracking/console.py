"""What the console shows of the libraries convae drives, set up before they are imported
(convae-train and convae-eval import torch and Lightning only for an accepted config).

- Warnings and tips that convae's own use of Hydra, Lightning and torch causes, and that a
  user cannot act on, are silenced by message (``quiet_libraries``); every other warning,
  a user's own included, shows as before.

``CONVAE_VERBOSE=1`` in the environment turns this off: the full output as before.
"""

from __future__ import annotations

import logging
import os
import warnings

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


def lightning_logs_apart() -> None:
    """Lightning's loggers print to stderr on their own, not through Hydra's handlers (the
    console format, train.log): what Lightning sets up when it is imported before logging
    is configured, as it was before the commands deferred importing it."""
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        if not logger.handlers:
            logger.setLevel(logging.INFO)
            logger.addHandler(logging.StreamHandler())
            logger.propagate = False
