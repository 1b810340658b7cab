"""A run folder and what is in it: its lock (lock), what a job does with a folder that
already holds something (folder), results.json and atomic run-file writes (results),
checkpoints read safely and saved atomically (checkpoint, checkpoint_io), a finished run
read back (finished_run), a resume's checkpoint and config (resume) and Hydra's record of
the command (hydra_record)."""
