"""Training configs: one file per experiment, each with ``get_config(runlocal=False) -> dict``."""
