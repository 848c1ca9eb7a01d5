"""Learning-curve figures."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402


def mean_and_ci95(values: np.ndarray, axis: int = -1):
    """Mean and half-width of a Student-t 95% interval of the mean along ``axis``.

    With one sample the half-width is 0 (no spread to estimate).
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[axis]
    mean = values.mean(axis=axis)
    if n < 2:
        return mean, np.zeros_like(mean)
    sem = values.std(axis=axis, ddof=1) / np.sqrt(n)
    return mean, stats.t.ppf(0.975, n - 1) * sem


def plot_learning_curves(path, env_steps, train_returns, eval_steps, eval_returns, labels, title: str):
    """Writes a PNG of training and evaluation returns with 95% intervals across seeds.

    Args:
        env_steps: ``[U]`` env steps per seed after each update.
        train_returns: ``[U, G, S]`` training return per update, grid point and seed.
        eval_steps: ``[C]`` env steps at each evaluation.
        eval_returns: ``[C, G, S]`` mean evaluation return per seed.
        labels: ``G`` legend labels (grid points).
    """
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for g, label in enumerate(labels):
        for ax, x, y in ((axes[0], env_steps, train_returns[:, g]), (axes[1], eval_steps, eval_returns[:, g])):
            mean, half = mean_and_ci95(y, axis=-1)
            (line,) = ax.plot(x, mean, label=label, marker="o" if ax is axes[1] else None, markersize=3)
            ax.fill_between(x, mean - half, mean + half, alpha=0.25, color=line.get_color())
    n_seeds = train_returns.shape[-1]
    axes[0].set_title("training return (last finished episode)")
    axes[1].set_title("evaluation return")
    for ax in axes:
        ax.set_xlabel("env steps per seed")
        ax.set_ylabel("return")
        ax.grid(alpha=0.3)
    if len(labels) > 1:
        axes[1].legend(fontsize=8)
    fig.suptitle(f"{title}: mean and 95% interval over {n_seeds} seed{'s' if n_seeds > 1 else ''}")
    fig.savefig(path, dpi=110)
    plt.close(fig)
