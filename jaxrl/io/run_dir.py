"""The run directory: resolved config, metrics over time, curves, figures and summary.

Layout::

    <out_dir>/config.yaml        resolved config (re-usable with --config)
    <out_dir>/metrics.jsonl      one row per update (and grid point): env steps, returns, losses, throughput
    <out_dir>/curves.npz         raw per-member arrays: train_return [U, G, S], eval_returns [C, G, S, E]
    <out_dir>/learning_curve.png mean and 95% interval across seeds
    <out_dir>/fitness_curve.png  evolution: population fitness and the solution's evaluation return per generation
    <out_dir>/summary.json       final results and speed
"""
from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import yaml


def _plain(value: Any):
    """Converts numpy / tuple values into YAML/JSON-friendly Python values."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def atomic_write_text(path: Path, text: str) -> None:
    """Writes ``text`` to ``path`` via a temporary file and rename, so readers never see half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class RunDirectory:
    """Writes one run's outputs; every file is written atomically or appended line by line."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    # Everything a run writes; ``prepare`` removes these (and only these) when a run is overwritten.
    OUTPUTS = ("config.yaml", "metrics.jsonl", "curves.npz", "learning_curve.png", "fitness_curve.png", "summary.json",
               "reproducibility.json", "evaluation.json",
               "solve_rate_curve.png", "held_out_levels.png", "held_out_trajectories.png", "buffer_levels.png")  # curricula
    OUTPUT_DIRS = ("checkpoints", "tensorboard", "wandb", "buffer_levels")

    def prepare(self) -> None:
        """Creates the directory and clears the outputs of a previous run in it (``--overwrite``)."""
        self.path.mkdir(parents=True, exist_ok=True)
        for name in self.OUTPUTS:
            (self.path / name).unlink(missing_ok=True)
        for name in self.OUTPUT_DIRS:
            if (self.path / name).is_dir():
                shutil.rmtree(self.path / name)

    def write_config(self, config: dict) -> None:
        atomic_write_text(self.path / "config.yaml", yaml.safe_dump(_plain(config), sort_keys=False))

    def append_metrics(self, rows: list[dict]) -> None:
        with open(self.path / "metrics.jsonl", "a") as f:
            for row in rows:
                f.write(json.dumps(_plain(row)) + "\n")

    def truncate_metrics(self, max_update: int, key: str = "update") -> None:
        """Drops rows whose ``key`` (update, or generation for evolution) is past ``max_update``
        (written after the checkpoint a run resumes from)."""
        path = self.path / "metrics.jsonl"
        if not path.exists():
            return
        rows = [line for line in path.read_text().splitlines() if line.strip()]
        kept = [line for line in rows if json.loads(line)[key] <= max_update]
        atomic_write_text(path, "".join(line + "\n" for line in kept))

    def write_json(self, name: str, data: dict) -> None:
        atomic_write_text(self.path / name, json.dumps(_plain(data), indent=2) + "\n")

    def write_summary(self, summary: dict) -> None:
        atomic_write_text(self.path / "summary.json", json.dumps(_plain(summary), indent=2) + "\n")

    def write_arrays(self, name: str, **arrays) -> None:
        tmp = self.path / f".{name}.tmp.npz"
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, self.path / name)


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    """All rows of a run's ``metrics.jsonl``."""
    with open(Path(run_dir) / "metrics.jsonl") as f:
        return [json.loads(line) for line in f if line.strip()]
