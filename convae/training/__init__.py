"""Training: a validated config turned into the DataModule, the LightningModule and the
Trainer (build), the LightningModule itself (module), the optimizer and schedule (optimizers)
and the precision trained at (precision)."""
