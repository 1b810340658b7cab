"""What the console shows of the libraries convae drives, set up before they are imported
(convae-train and convae-eval import torch and Lightning only for an accepted config)."""

from __future__ import annotations

import logging


def lightning_logs_apart() -> None:
    """Lightning's loggers print to stderr on their own, not through Hydra's handlers (the
    console format, train.log): what Lightning sets up when it is imported before logging
    is configured, as it was before the commands deferred importing it."""
    for name in ("pytorch_lightning", "lightning_fabric"):
        logger = logging.getLogger(name)
        if not logger.handlers:
            logger.setLevel(logging.INFO)
            logger.addHandler(logging.StreamHandler())
            logger.propagate = False
