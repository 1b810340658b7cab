"""Where a run's scalars go: TensorBoard, CSV and MLflow loggers (loggers) and the
HPARAMS table of TensorBoard (hparams)."""
