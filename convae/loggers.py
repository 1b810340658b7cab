"""conf/logger/ -> the run's Lightning loggers: TensorBoard, a CSV file, MLflow."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from pytorch_lightning.loggers import Logger, MLFlowLogger, TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_only

from convae.compat import AppendingCSVLogger
from convae.tb_hparams import write_hparams

# The run folder remembers its MLflow run: a resumed run logs on into the same one.
MLFLOW_RUN_ID = "mlflow_run_id"


def build_loggers(cfg: DictConfig, run_dir: Path) -> list[Logger]:
    """``cfg``: the logger section. TensorBoard and CSV write straight into the run folder,
    so `tensorboard --logdir <sweep>` names each run after its job folder (its overrides),
    and metrics.csv sits beside results.json. MLflow writes into its own store."""
    loggers: list[Logger] = []
    if cfg.tensorboard:
        loggers.append(
            TensorBoardLogger(save_dir=run_dir, name="", version="", default_hp_metric=False)
        )
    if cfg.csv:
        loggers.append(AppendingCSVLogger(save_dir=run_dir, name="", version=""))
    if cfg.get("mlflow"):
        loggers.append(mlflow_logger(cfg, run_dir))
    return loggers


def mlflow_store(uri: str) -> tuple[str, str | None]:
    """The tracking URI and the artifact folder's URI. A file name becomes an absolute
    SQLite URI, with the artifacts in ``mlartifacts/`` beside it: every job of a sweep,
    whatever its working folder, writes into the same store. (MLflow 3 refuses a plain
    folder, its file store, unless MLFLOW_ALLOW_FILE_STORE=true.) A URI (sqlite:///...,
    file:...) is kept, MLflow places its artifacts."""
    if ":" in uri:
        return uri, None
    db = Path(uri).resolve()
    db.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{db}", (db.parent / "mlartifacts").as_uri()


def mlflow_logger(cfg: DictConfig, run_dir: Path) -> MLFlowLogger:
    """One MLflow run per run folder, named after it (a sweep job's overrides) and tagged
    with its path: the pictures and checkpoints stay there, not in the store."""
    id_file = run_dir / MLFLOW_RUN_ID
    run_id = id_file.read_text().strip() if id_file.is_file() else None
    tracking_uri, artifacts = mlflow_store(cfg.mlflow_uri)
    # The first use creates the database (alembic migrations) and the experiment: two jobs
    # of a parallel sweep doing that at once fail, so one at a time.
    with _store_lock(tracking_uri):
        logger = MLFlowLogger(
            experiment_name=cfg.mlflow_experiment,
            run_name=run_dir.name,
            tracking_uri=tracking_uri,
            artifact_location=artifacts,  # used when the experiment is created
            tags={"convae.run_dir": str(run_dir.resolve())},
            run_id=run_id,
        )
        if rank_zero_only.rank == 0:
            if run_id is None:
                run_dir.mkdir(parents=True, exist_ok=True)
                id_file.write_text(logger.run_id + "\n")  # .run_id creates the MLflow run
            else:
                logger.experiment.update_run(run_id, status="RUNNING")  # was KILLED/FAILED
    return logger


@contextlib.contextmanager
def _store_lock(tracking_uri: str) -> Iterator[None]:
    """An exclusive flock on ``<database>.lock`` beside a SQLite store; no lock for others."""
    if not tracking_uri.startswith("sqlite:///"):
        yield
        return
    with open(tracking_uri.removeprefix("sqlite:///") + ".lock", "a") as file:
        fcntl.flock(file, fcntl.LOCK_EX)  # released when the file closes
        yield


def log_run_params(loggers: Sequence[Logger], params: Mapping[str, Any]) -> None:
    """The run's flattened config (tb_hparams.run_hparams) as TensorBoard's HPARAMS entry
    and as MLflow parameters."""
    for lg in loggers:
        if isinstance(lg, TensorBoardLogger):
            write_hparams(lg.experiment, params)
        elif isinstance(lg, MLFlowLogger):
            lg.log_hyperparams(dict(params))


def log_run_file(loggers: Sequence[Logger], path: Path) -> None:
    """A file of the run (results.json) as an artifact of its MLflow run."""
    for lg in loggers:
        if isinstance(lg, MLFlowLogger):
            lg.experiment.log_artifact(lg.run_id, str(path))


def tensorboard_writer(loggers: Sequence[Logger]) -> Any | None:
    """The SummaryWriter of the run's TensorBoard logger; None for a CSV-only run (no
    pictures, no HPARAMS entry)."""
    return next((lg.experiment for lg in loggers if isinstance(lg, TensorBoardLogger)), None)
