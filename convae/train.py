"""convae-train: compose a config with Hydra, check it, train with Lightning, write
results.json.

Everything up to the config's verdict (``--help``, ``--cfg``, a bad override, a refused
folder) needs neither torch nor Lightning: they are imported with convae/training/run.py,
once the config has passed the gate."""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from convae.config.convert import plain, to_container
from convae.config.errors import ConfigError, condensing_errors, one_line, run_cli
from convae.config.path_args import quote_path_values
from convae.config.precision import Precision
from convae.config.schema import register_configs
from convae.config.validate import check_known_keys, objective_tags, validate
from convae.hardware import process_rank
from convae.runs.folder import claim_run_folder, prepare_run_folder
from convae.runs.hydra_record import Composition
from convae.runs.lock import LOCK_NAME, FolderRefused
from convae.runs.results import RESULTS, git_commit, read_results, write_json_atomic
from convae.runs.resume import (
    config_for_resume,
    requeued_checkpoint,
    resume_checkpoint,
    trained_precision,
)
from convae.runs.stopping import Interrupted, JobInterrupted
from convae.sweeps.console import closing_lines
from convae.tracking.console import lightning_logs_apart, quiet_libraries

log = logging.getLogger("convae")
git_commit()  # now, while the checkout holds the code this process imported


def checked_config(cfg: DictConfig, run_dir: Path) -> tuple[DictConfig, Path | None, Precision]:
    """The config to train (a resume's stored one, with this command line's allowed
    changes), the checkpoint to resume from, and the precision: through the one gate,
    before any data is loaded or model built."""
    check_known_keys(cfg)  # this command line's +keys: a resume goes on with the saved config
    ckpt = resume_checkpoint(cfg) or requeued_checkpoint(run_dir)
    if ckpt is not None:
        cfg = config_for_resume(cfg, ckpt, HydraConfig.get().overrides.task)
    return cfg, ckpt, validate(cfg, trained_precision=trained_precision(ckpt))


def train(cfg: DictConfig, run_dir: Path, composition: Composition | None = None) -> dict[str, Any]:
    cfg, ckpt, precision = checked_config(cfg, run_dir)
    if composition is not None and process_rank() == 0:
        composition.save(run_dir)  # accepted: Hydra's record of this command (.hydra/)
    lightning_logs_apart()
    from convae.training.run import train as run_training  # torch and Lightning, from here

    return run_training(cfg, run_dir, ckpt, precision)


def objective(cfg: DictConfig, metrics: dict[str, float]) -> float | list[float] | None:
    """What a sweeper gets back: the optimized_metric's final value(s)."""
    values = [metrics.get(t) for t in objective_tags(cfg)]
    return values[0] if isinstance(plain(cfg.optimized_metric), str) else values


def record_failure(cfg: DictConfig, run_dir: Path, err: BaseException) -> None:
    """results.json says failed, unless it holds a finished or interrupted run (a resume
    that failed): that record stays, and the failure goes beside it."""
    if process_rank() != 0:
        return
    keep = read_results(run_dir).get("status") in ("completed", "interrupted")
    record = run_dir / ("failed_resume.json" if keep else RESULTS)
    try:
        write_json_atomic(
            record,
            {
                "status": "failed",
                "error": one_line(err),
                "config": _container_or_raw(cfg),
                "overrides": list(HydraConfig.get().overrides.task),
            },
        )
    except OSError as unwritable:  # e.g. a read-only run folder: the caller still reports err
        log.error("Could not record the failure in %s: %s", record, unwritable)


def _container_or_raw(cfg: DictConfig) -> dict[str, Any]:
    try:
        return to_container(cfg)
    except Exception:  # the failure may be an interpolation that does not resolve
        return OmegaConf.to_container(cfg, resolve=False)


def close_run_log(run_dir: Path) -> None:
    """Closes the log files Hydra opened inside ``run_dir`` (train.log), so that no later
    record of this process reaches a folder it was refused."""
    root, inside = logging.getLogger(), run_dir.absolute()
    for handler in list(root.handlers):
        name = getattr(handler, "baseFilename", None)
        if name and inside in Path(name).parents:
            root.removeHandler(handler)
            handler.close()


def _remove_if_empty(run_dir: Path) -> None:
    """A single run rejected for its config leaves no folder behind (Hydra made it), nor
    the empty date folders above it, up to (not including) outputs/ (conf/train.yaml's
    hydra.run.dir is outputs/runs/<date>/<time>, relative to the launch folder)."""
    if not run_dir.is_dir() or not {p.name for p in run_dir.iterdir()} <= {
        ".hydra", "train.log", LOCK_NAME}:  # fmt: skip
        return
    shutil.rmtree(run_dir, ignore_errors=True)
    outputs = Path.cwd().resolve() / "outputs"
    parent = run_dir.resolve().parent
    while outputs in parent.parents:
        try:
            parent.rmdir()  # only when empty: another run may have started beside it
        except OSError:
            break
        parent = parent.parent


register_configs()
quiet_libraries()  # before Hydra composes, here and in a sweep's worker processes


@hydra.main(version_base="1.3", config_path="pkg://convae.conf", config_name="train")
def hydra_main(cfg: DictConfig) -> float | list[float] | None:
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    composition = Composition.capture(cfg)  # as composed, before a resume or threads change it
    lock = None  # one writer per run folder (convae/runs/folder.py), held to the end
    try:
        lock = claim_run_folder(run_dir)  # None on DDP ranks > 0: rank 0 holds it
        in_sweep = hc.mode == RunMode.MULTIRUN
        done = prepare_run_folder(cfg, run_dir, in_sweep, lock) if lock else None
        if done is not None:  # a sweep job that completed earlier: nothing run or written
            return objective(cfg, done["metrics"])
        results = train(cfg, run_dir, composition)
    except Interrupted as stop:
        if hc.mode != RunMode.MULTIRUN:
            raise
        raise JobInterrupted(stop.why) from None
    except Exception as err:
        if isinstance(err, FolderRefused):
            close_run_log(run_dir)  # another process's folder, or not ours: left untouched
        elif isinstance(err, ConfigError) and hc.mode != RunMode.MULTIRUN:
            _remove_if_empty(run_dir)
        else:
            record_failure(cfg, run_dir, err)
        if hc.mode == RunMode.MULTIRUN or not condensing_errors():
            raise  # a sweep records the failure and goes on with the other jobs
        # Raised past Hydra, which would print its own "Error executing job" line first.
        print(f"convae-train: error: {one_line(err)}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        if lock is not None:
            lock.release()
    return objective(cfg, results["metrics"])  # what a sweeper such as Optuna optimises


def main() -> None:
    sys.argv[1:] = quote_path_values(sys.argv[1:])  # a pasted job folder
    run_cli(hydra_main, "convae-train", more=closing_lines)


if __name__ == "__main__":
    main()
