"""The config: schemas behind conf/ (schema), the value checks every run passes first
(validate), the error lines (errors), conf/ composed without a command line (compose),
the Hydra resolvers of run folders (resolvers), optim and scheduler sections checked as
data (optim) and config-to-dict helpers (convert). Import from those modules."""
