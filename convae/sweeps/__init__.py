"""Sweeps (-m): every job checked before the first starts (preflight), the sweep folder
claimed and ``sweep_existing`` applied (folder), job folder names (job_names), a failed
sweep's last line (summary) and SIGTERM or Ctrl-C to a parallel sweep (signals).
preflight, folder, job_names and signals are Hydra callbacks (conf/train.yaml)."""
