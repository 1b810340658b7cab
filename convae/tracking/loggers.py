"""conf/logger/ -> the run's Lightning loggers: TensorBoard, a CSV file, MLflow."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from pytorch_lightning.loggers import Logger, MLFlowLogger, TensorBoardLogger
from pytorch_lightning.loggers.logger import rank_zero_experiment
from pytorch_lightning.utilities import rank_zero_only

from convae.compat import (
    AppendingCSVLogger,
    tb_event_file,
    tb_file_writer,
    wrap_tb_file_writers,
)
from convae.runs.results import writing
from convae.tracking.hparams import write_hparams
from convae.tracking.layout import layout_summary

# The run folder remembers its MLflow run: a resumed run logs on into the same one.
MLFLOW_RUN_ID = "mlflow_run_id"


def build_loggers(cfg: DictConfig, run_dir: Path) -> list[Logger]:
    """``cfg``: the logger section. TensorBoard and CSV write straight into the run folder,
    so `tensorboard --logdir <sweep>` names each run after its job folder (its overrides),
    and metrics.csv sits beside results.json. MLflow writes into its own store."""
    loggers: list[Logger] = []
    if cfg.tensorboard:
        loggers.append(
            RunTensorBoardLogger(save_dir=run_dir, name="", version="", default_hp_metric=False)
        )
    if cfg.csv:
        loggers.append(RunCSVLogger(save_dir=run_dir, name="", version=""))
    if cfg.get("mlflow"):
        loggers.append(mlflow_logger(cfg, run_dir))
    return loggers


class RunCSVLogger(AppendingCSVLogger):
    """metrics.csv and hparams.yaml; a failed write (disk full, read-only) is a RunFileError
    naming the file, not a bare OSError from deep inside a training step."""

    def save(self) -> None:
        with writing(Path(self.log_dir) / "metrics.csv"):
            super().save()

    def log_hyperparams(self, *args: Any, **kwargs: Any) -> None:
        with writing(Path(self.log_dir) / "hparams.yaml"):
            super().log_hyperparams(*args, **kwargs)


class RunTensorBoardLogger(TensorBoardLogger):
    """TensorBoard's event files, whose failed writes are a RunFileError naming the file.
    The writes happen on TensorBoard's own thread; its error (which names no file) comes
    back at the next add_*, flush or close on the training thread, where it is named."""

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        fresh = self._experiment is None
        with writing(Path(self.log_dir) / "events.out.tfevents.*"):  # opens the event file
            writer = super().experiment
        if fresh:
            _name_write_errors(writer)
        return writer


def _name_write_errors(writer: Any) -> None:
    """Every FileWriter of the SummaryWriter ``writer`` (it opens a new one after a close,
    e.g. for the test stage after fit) gets writing methods whose OSError names its event
    file (compat.wrap_tb_file_writers: SummaryWriter hands them out privately)."""
    new_file = Path(writer.log_dir) / "events.out.tfevents.*"

    def named(open_file_writer: Any) -> Any:
        with writing(new_file):  # a new FileWriter creates its file and writes to it
            file_writer = open_file_writer()
        if getattr(file_writer, "_convae_named", False):
            return file_writer
        path = tb_event_file(file_writer)
        for name in ("add_event", "flush", "close"):
            method = getattr(file_writer, name)

            @functools.wraps(method)
            def named_method(*args: Any, _method: Any = method, **kwargs: Any) -> Any:
                with writing(path):
                    return _method(*args, **kwargs)

            setattr(file_writer, name, named_method)
        file_writer._convae_named = True
        return file_writer

    wrap_tb_file_writers(writer, named)
    tb_file_writer(writer)  # the open one, named now
    _quiet_event_thread_errors()


def _quiet_event_thread_errors() -> None:
    """TensorBoard's writer thread re-raises its OSError as it dies, and Python prints that
    thread's traceback; the same error comes back on the training thread, named there (one
    line). Only that thread's OSError is silenced; every other thread's error is printed."""
    previous = threading.excepthook
    if getattr(previous, "_convae", False):
        return

    def hook(args: Any) -> None:
        if isinstance(args.exc_value, OSError) and type(args.thread).__name__ == (
            "_AsyncWriterThread"  # tensorboard.summary.writer.event_file_writer's
        ):
            return
        previous(args)

    hook._convae = True  # type: ignore[attr-defined]
    threading.excepthook = hook


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
                with writing(id_file):
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
    and as MLflow parameters; TensorBoard also gets the custom-scalars layout
    (convae/tracking/layout.py), once, as the run starts."""
    for lg in loggers:
        if isinstance(lg, TensorBoardLogger):
            write_hparams(lg.experiment, params)
            tb_file_writer(lg.experiment).add_summary(layout_summary())
            lg.experiment.flush()
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
