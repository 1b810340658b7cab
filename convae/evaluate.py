"""convae-eval: a trained model on the test split, clean and at several input noise levels.

Writes ``<run folder>/eval/eval.json`` (loss, PSNR, SSIM and checkerboard scores per level)
and ``eval.png`` (per level, noisy inputs over reconstructions). The checkpoint holds the
run's resolved config, so ``ckpt=`` is the only argument.

``ckpt=<sweep folder>`` scores every completed job of the sweep in turn (each job's
eval/), which convae-report then tabulates.

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
from convae.errors import ConvaeError
from convae.runs.finished_run import FinishedRun
from convae.runs.lock import refuse_links
from convae.runs.results import EVAL_DIR, RESULTS
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


class SweepEvalFailed(ConvaeError, RuntimeError):
    """Some jobs of a sweep could not be scored; each was named in the log as it failed."""


def sweep_jobs(arg: str) -> list[Path] | None:
    """The job folders of a sweep folder (sorted), or None when ``arg`` is no sweep: a folder
    without a checkpoints/ of its own whose subfolders hold results.json."""
    path = Path(arg).expanduser().absolute()
    if not path.is_dir() or (path / "checkpoints").is_dir() or (path / RESULTS).is_file():
        return None
    jobs = sorted(p for p in path.iterdir() if p.is_dir() and (p / RESULTS).is_file())
    return jobs or None


def evaluate_one(cfg: DictConfig, arg: str, started: float) -> dict[str, Any]:
    ckpt, run_dir = find_checkpoint(arg)
    refuse_links(run_dir, EVAL_DIR)  # eval/ and its files: written in the run, never via a link
    lightning_logs_apart()
    from convae.training.evaluation import evaluate_run  # torch and the model, from here

    return evaluate_run(cfg, ckpt, run_dir, started)


def evaluate_sweep(cfg: DictConfig, jobs: list[Path]) -> None:
    """Every completed job in turn, each as ``ckpt=<job>`` alone would; a job that fails is
    named and the others go on (the command then exits 1 naming them)."""
    failed, skipped = [], []
    for n, job in enumerate(jobs, start=1):
        status = FinishedRun.read(job).status
        if status != "completed":
            skipped.append(f"{job.name} ({status})")
            continue
        log.info("[%d/%d] %s", n, len(jobs), job.name)
        try:
            evaluate_one(cfg, str(job), time.time())
        except Exception as err:
            log.error("%s: %s", job.name, one_line(err))
            failed.append(job.name)
    done = len(jobs) - len(failed) - len(skipped)
    log.info("Evaluated %d of %d jobs%s", done, len(jobs),
             f"; not completed, left out: {', '.join(skipped)}" if skipped else "")  # fmt: skip
    if failed:
        raise SweepEvalFailed(f"{len(failed)} of {len(jobs)} jobs failed: {', '.join(failed)}")


def evaluate(cfg: DictConfig) -> dict[str, Any] | None:
    started = time.time()
    validate_eval(cfg)
    jobs = sweep_jobs(str(cfg.ckpt))
    if jobs is None:
        return evaluate_one(cfg, str(cfg.ckpt), started)
    evaluate_sweep(cfg, jobs)
    return None


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
