"""Level images: grids of rendered levels, buffer snapshots and held-out solve-rate curves (PNG)."""
from __future__ import annotations

from pathlib import Path

import jax
import numpy as np


def level_at(levels, i: int):
    """Level ``i`` of a batch (leaves ``[N, ...]``), as numpy."""
    return jax.tree.map(lambda x: np.asarray(x)[i], levels)


def image_grid(images: list, columns: int, gap: int) -> np.ndarray:
    """Same-sized RGB images in rows of ``columns``, ``gap`` white pixels around each."""
    h, w, _ = images[0].shape
    rows = -(-len(images) // columns)
    grid = np.full((rows * (h + gap) + gap, columns * (w + gap) + gap, 3), 255, np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        grid[gap + r * (h + gap): gap + r * (h + gap) + h, gap + c * (w + gap): gap + c * (w + gap) + w] = image
    return grid


def level_grid(levels, num: int, columns: int = 8, cell: int = 6, render=None) -> np.ndarray:
    """An RGB image of the first ``num`` levels (leaves ``[N, ...]``) drawn by ``render(level, cell)`` (a level
    space's; mazes by default), ``columns`` per row, 1-cell white gaps."""
    if render is None:
        from jaxrl.envs.levels.maze import render_level as render
    return image_grid([render(level_at(levels, i), cell) for i in range(num)], columns, cell)


def save_image(path: Path, image: np.ndarray, title: str) -> None:
    """An RGB array as a titled PNG."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(3.0, image.shape[1] / 60), max(2.5, image.shape[0] / 60 + 0.5)))
    ax = fig.add_subplot()
    ax.imshow(image, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    fig.savefig(path, dpi=100, bbox_inches="tight")


def top_buffer_levels(buffer, seed: int = 0, num: int = 16):
    """The ``num`` highest-scoring filled levels of one seed's buffer (leaves ``[S, C, ...]``) and their scores."""
    scores = np.where(np.asarray(buffer.filled)[seed], np.asarray(buffer.scores)[seed], -np.inf)
    order = np.argsort(-scores)[: min(num, int(np.isfinite(scores).sum()))]
    return jax.tree.map(lambda x: np.asarray(x)[seed][order], buffer.levels), scores[order]


def save_buffer_levels(path: Path, buffer, render, title_prefix: str = "") -> None:
    """The highest-scoring levels of seed 0's buffer (leaves ``[S, C, ...]``, on the host) as a PNG grid."""
    levels, scores = top_buffer_levels(buffer)
    if len(scores):
        save_image(path, level_grid(levels, len(scores), render=render),
                   f"{title_prefix}highest-scoring buffer levels (seed 0), scores {scores[0]:.3f} .. {scores[-1]:.3f}")
    else:  # still a file, so a run's outputs do not depend on whether any level was scored yet
        save_image(path, np.full((8, 8, 3), 255, np.uint8), f"{title_prefix}the level buffer (seed 0) is empty: no level scored yet")


def plot_solve_rates(path: Path, env_steps: np.ndarray, solve: np.ndarray, names, title: str) -> None:
    """Held-out solve rate per level (mean over seeds) against env steps; ``solve [C, S, L]``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    for i, name in enumerate(names):
        ax.plot(env_steps, solve[:, :, i].mean(1), label=name)
    ax.plot(env_steps, solve.mean(axis=(1, 2)), "k--", linewidth=2, label="mean")
    ax.set_xlabel("env steps per seed")
    ax.set_ylabel("held-out solve rate")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    fig.savefig(path, dpi=100, bbox_inches="tight")
