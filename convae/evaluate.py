"""convae-eval: a trained model on the test split, clean and at several input noise levels.

Writes ``<run folder>/eval/eval.json`` (loss, PSNR, SSIM and checkerboard scores per level)
and ``eval.png`` (per level, noisy inputs over reconstructions). The checkpoint holds the
run's resolved config, so ``ckpt=`` is the only argument.

Everything up to the checkpoint's verdict (``--help``, a bad override, a missing run)
needs no torch: the scoring (convae/training/evaluation.py) is imported after.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from convae.config.errors import check, condensing_errors, one_line, run_cli
from convae.config.path_args import quote_path_values
from convae.config.schema import register_configs
from convae.config.validate import validate_eval
from convae.runs.finished_run import FinishedRun
from convae.runs.lock import refuse_links
from convae.runs.results import EVAL_DIR
from convae.tracking.console import lightning_logs_apart

log = logging.getLogger("convae")


def find_checkpoint(arg: str) -> tuple[Path, Path]:
    """(checkpoint, run folder) for a .ckpt file or a run folder (the checkpoint its test
    metrics came from)."""
    path = Path(arg).expanduser().absolute()
    if path.is_dir():
        found = FinishedRun.read(path).checkpoint()
        check(found is not None, "ckpt", arg, f"no best or last checkpoint in {path}/checkpoints")
        return found, path
    check(path.is_file(), "ckpt", arg, "no such checkpoint file or run folder")
    return path, path.parent.parent if path.parent.name == "checkpoints" else path.parent


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    started = time.time()
    validate_eval(cfg)
    ckpt, run_dir = find_checkpoint(str(cfg.ckpt))
    refuse_links(run_dir, EVAL_DIR)  # eval/ and its files: written in the run, never via a link
    lightning_logs_apart()
    from convae.training.evaluation import evaluate_run  # torch and the model, from here

    return evaluate_run(cfg, ckpt, run_dir, started)


register_configs()


@hydra.main(version_base="1.3", config_path="pkg://convae.conf", config_name="eval")
def hydra_main(cfg: DictConfig) -> None:
    try:
        evaluate(cfg)
    except Exception as err:
        if not condensing_errors():
            raise
        # Raised past Hydra, which would print its own "Error executing job" line first.
        print(f"convae-eval: error: {one_line(err)}", file=sys.stderr)
        raise SystemExit(1) from None


def main() -> None:
    sys.argv[1:] = quote_path_values(sys.argv[1:])  # a pasted job folder
    run_cli(hydra_main, "convae-eval")


if __name__ == "__main__":
    main()
