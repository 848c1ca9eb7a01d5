"""Optional metric sinks beside the run directory: TensorBoard and Weights & Biases.

Both are optional extras (``pip install jaxrl[logging]``); asking for one that
is not installed is a configuration error reported before anything compiles.
"""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np


class LoggerUnavailable(Exception):
    pass


def _scalars(row: dict) -> dict[str, float]:
    out = {}
    for key, value in row.items():
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            continue
        out[key] = float(value)
    return out


def _tag(row: dict, key: str) -> str:
    return f"grid{row['grid_index']}/{key}" if "grid_index" in row else key


class TensorBoardLogger:
    """Writes every numeric metric as a scalar against env steps to ``<run_dir>/tensorboard``."""

    def __init__(self, run_dir):
        if importlib.util.find_spec("tensorboardX") is None:
            raise LoggerUnavailable("--tensorboard needs the tensorboardX package (pip install 'jaxrl[logging]')")
        from tensorboardX import SummaryWriter

        self.writer = SummaryWriter(str(Path(run_dir) / "tensorboard"))

    def log(self, rows: list[dict]) -> None:
        for row in rows:
            step = int(row["env_steps"])
            for key, value in _scalars(row).items():
                if key not in ("env_steps", "update", "grid_index"):
                    self.writer.add_scalar(_tag(row, key), value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbLogger:
    """Logs metrics to Weights & Biases (``WANDB_MODE=offline`` works without a network)."""

    def __init__(self, run_dir, config: dict, project: str, name: str):
        if importlib.util.find_spec("wandb") is None:
            raise LoggerUnavailable("--wandb needs the wandb package (pip install 'jaxrl[logging]')")
        import wandb

        self.run = wandb.init(project=project, name=name, dir=str(run_dir), config=config, reinit=True)

    def log(self, rows: list[dict]) -> None:
        for row in rows:
            scalars = {_tag(row, k): v for k, v in _scalars(row).items() if k not in ("env_steps", "update", "grid_index")}
            scalars["env_steps"] = row["env_steps"]
            self.run.log(scalars)

    def close(self) -> None:
        self.run.finish()


def check_available(tensorboard: bool, wandb: bool) -> None:
    """Raises LoggerUnavailable (before compiling) if a requested backend is not installed."""
    if tensorboard and importlib.util.find_spec("tensorboardX") is None:
        raise LoggerUnavailable("--tensorboard needs the tensorboardX package (pip install 'jaxrl[logging]')")
    if wandb and importlib.util.find_spec("wandb") is None:
        raise LoggerUnavailable("--wandb needs the wandb package (pip install 'jaxrl[logging]')")
