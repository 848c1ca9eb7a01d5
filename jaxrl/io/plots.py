"""Learning-curve figures."""
from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from scipy import stats

# Figures are built with the object-oriented API (no pyplot): writing a PNG never opens a
# window and never switches the backend of a notebook that imports jaxrl.


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
    fig = Figure(figsize=(11, 4), layout="constrained")
    axes = fig.subplots(1, 2)
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


def plot_aggregate_intervals(path, methods, metric_labels, estimates, score_name: str):
    """One panel per aggregate metric: a point and its interval per method (rliable's layout).

    Args:
        estimates: ``{method: Interval}`` with ``[num_metrics]`` arrays (NaN: not applicable).
    """
    shown = [i for i in range(len(metric_labels)) if any(np.isfinite(estimates[m].point[i]) for m in methods)]
    fig = Figure(figsize=(3.2 * len(shown), 0.6 * len(methods) + 1.4), layout="constrained")
    axes = fig.subplots(1, len(shown), squeeze=False)
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, i in zip(axes[0], shown):
        for j, m in enumerate(methods):
            est = estimates[m]
            color = colors[j % len(colors)]
            ax.barh(j, est.high[i] - est.low[i], left=est.low[i], height=0.6, color=color, alpha=0.6)
            ax.vlines(est.point[i], j - 0.3, j + 0.3, color="black", linewidth=1.5)
        ax.set_yticks(range(len(methods)))
        ax.set_yticklabels(methods if ax is axes[0][0] else [""] * len(methods))
        ax.set_title(metric_labels[i])
        ax.grid(axis="x", alpha=0.3)
    fig.supxlabel(score_name)
    fig.savefig(path, dpi=110)


def plot_performance_profiles(path, taus, profiles, score_name: str):
    """Fraction of runs with score above tau, with interval bands. ``profiles``: ``{method: Interval [K]}``."""
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    for m, est in profiles.items():
        (line,) = ax.plot(taus, est.point, label=m)
        ax.fill_between(taus, est.low, est.high, alpha=0.2, color=line.get_color())
    ax.set_xlabel(f"{score_name} threshold tau")
    ax.set_ylabel("fraction of runs with score > tau")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)


def plot_probability_of_improvement(path, poi):
    """P(X > Y) with intervals for each ordered pair. ``poi``: ``{(x, y): Interval scalar}``."""
    pairs = list(poi)
    fig = Figure(figsize=(6, 0.45 * max(len(pairs), 1) + 1.2), layout="constrained")
    ax = fig.subplots()
    for j, pair in enumerate(pairs):
        est = poi[pair]
        ax.barh(j, float(est.high) - float(est.low), left=float(est.low), height=0.6, alpha=0.6)
        ax.vlines(float(est.point), j - 0.3, j + 0.3, color="black", linewidth=1.5)
    ax.axvline(0.5, color="gray", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(pairs)))
    ax.set_yticklabels([f"P({x} > {y})" for x, y in pairs])
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability of improvement")
    ax.grid(axis="x", alpha=0.3)
    fig.savefig(path, dpi=110)


def plot_sample_efficiency(path, efficiency, ylabel: str):
    """An aggregate over training with interval bands. ``efficiency``: ``{method: (steps [K], Interval [K])}``."""
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    for m, (steps, est) in efficiency.items():
        (line,) = ax.plot(steps, est.point, label=m, marker="o", markersize=2)
        ax.fill_between(steps, est.low, est.high, alpha=0.2, color=line.get_color())
    ax.set_xlabel("env steps per run")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)


def plot_fitness_curves(path, generations, population_returns, eval_generations, eval_returns, title: str):
    """Writes a PNG of a population search: fitness distribution and the solution's evaluation return.

    Args:
        generations: ``[G]`` generation numbers (1-based).
        population_returns: ``[G, S, N]`` fitness of every individual, per seed.
        eval_generations: ``[C]`` generations at which the solution was evaluated.
        eval_returns: ``[C, S]`` mean evaluation return of the solution per seed.
    """
    fig = Figure(figsize=(11, 4), layout="constrained")
    axes = fig.subplots(1, 2)
    pop = np.asarray(population_returns, np.float64)
    # Population quantiles per seed, then averaged over seeds: the typical seed's distribution.
    q = np.nanpercentile(pop, [0, 10, 50, 90, 100], axis=-1).mean(axis=-1)  # [5, G]
    axes[0].fill_between(generations, q[1], q[3], alpha=0.3, label="10-90th percentile")
    axes[0].plot(generations, q[2], label="median")
    axes[0].plot(generations, q[4], label="best", linewidth=1)
    axes[0].plot(generations, q[0], label="worst", linewidth=0.8, alpha=0.6)
    axes[0].set_title("population fitness (mean over seeds of each quantile)")
    axes[0].legend(fontsize=8)
    mean, half = mean_and_ci95(np.asarray(eval_returns), axis=-1)
    axes[1].plot(eval_generations, mean, marker="o", markersize=3)
    axes[1].fill_between(eval_generations, mean - half, mean + half, alpha=0.25)
    axes[1].set_title("evaluation return of the solution")
    for ax in axes:
        ax.set_xlabel("generation")
        ax.set_ylabel("return")
        ax.grid(alpha=0.3)
    n_seeds = pop.shape[1]
    fig.suptitle(f"{title}: {n_seeds} seed{'s' if n_seeds > 1 else ''}, population {pop.shape[2]}")
    fig.savefig(path, dpi=110)


def plot_drift(path, ratios, curves: dict, references: dict, title: str):
    """Drift against the probability ratio r, one panel per advantage sign.

    Args:
        ratios: ``[K]``.
        curves: ``{label: {advantage: [K]}}`` of the learned objective (e.g. one label per
            training progress for TA-LPO).
        references: the same for fixed objectives (PPO-clip, DPO), drawn dashed.
    """
    advantages = sorted({a for c in list(curves.values()) + list(references.values()) for a in c}, reverse=True)
    fig = Figure(figsize=(5 * len(advantages), 4), layout="constrained")
    axes = fig.subplots(1, len(advantages), squeeze=False)[0]
    for ax, adv in zip(axes, advantages):
        for label, c in references.items():
            ax.plot(ratios, c[adv], linestyle="--", color="gray" if "ppo" in label.lower() else "black", linewidth=1, label=label)
        cmap = matplotlib.colormaps["viridis"]
        for i, (label, c) in enumerate(curves.items()):
            ax.plot(ratios, c[adv], color=cmap(i / max(len(curves) - 1, 1)), linewidth=2, label=label)
        ax.axvline(1.0, color="lightgray", linewidth=0.8)
        ax.set_title(f"advantage A = {adv:+g}")
        ax.set_xlabel("probability ratio r")
        ax.set_ylabel("drift")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.savefig(path, dpi=110)


def archive_raster(fitnesses: np.ndarray, centroids: np.ndarray, minval, maxval, resolution: int = 200) -> np.ndarray:
    """The fitness of the cell under each pixel of the descriptor box (NaN where the cell is empty).

    Cells are Voronoi cells of ``centroids``, so one rule draws grids and CVTs alike.

    Args:
        fitnesses: ``[C]`` (``-inf`` empty); centroids: ``[C, D]`` with ``D`` 1 or 2.

    Returns:
        ``[resolution, resolution]`` for ``D = 2`` (rows: the second dimension, from ``minval``), ``[1, resolution]``
        for ``D = 1``.
    """
    dim = centroids.shape[1]
    axes = [np.linspace(lo, hi, resolution) for lo, hi in zip(minval, maxval)]
    if dim == 1:
        points = axes[0][:, None]
    else:
        xx, yy = np.meshgrid(axes[0], axes[1])
        points = np.stack([xx.ravel(), yy.ravel()], -1)
    from scipy.spatial import cKDTree  # nearest centroid of 40k pixels in milliseconds

    owner = cKDTree(centroids).query(points)[1]
    values = np.where(np.isfinite(fitnesses), fitnesses, np.nan)[owner]
    return values.reshape(1, resolution) if dim == 1 else values.reshape(resolution, resolution)


def plot_archive(path, fitnesses, centroids, minval, maxval, title: str, descriptor_names=("descriptor 1", "descriptor 2")):
    """A heatmap PNG of a repertoire: each cell coloured by its elite's fitness, empty cells white.

    Args:
        fitnesses: ``[C]``; centroids: ``[C, D]`` (``D`` 1 or 2); minval / maxval: ``[D]`` descriptor bounds.
    """
    fitnesses, centroids = np.asarray(fitnesses, np.float64), np.asarray(centroids, np.float64)
    dim = centroids.shape[1]
    raster = archive_raster(fitnesses, centroids, minval, maxval)
    fig = Figure(figsize=(6, 5 if dim == 2 else 2.2), layout="constrained")
    ax = fig.subplots()
    extent = (minval[0], maxval[0], minval[1], maxval[1]) if dim == 2 else (minval[0], maxval[0], 0, 1)
    image = ax.imshow(np.ma.masked_invalid(raster), origin="lower", extent=extent, aspect="auto", cmap="viridis",
                      interpolation="nearest")
    fig.colorbar(image, ax=ax, label="fitness")
    ax.set_xlabel(descriptor_names[0])
    if dim == 2:
        ax.set_ylabel(descriptor_names[1])
    else:
        ax.set_yticks([])
    filled = np.isfinite(fitnesses)
    ax.set_title(f"{title}\n{int(filled.sum())} of {fitnesses.size} cells filled", fontsize=9)
    fig.savefig(path, dpi=110)


def plot_metric_curves(path, x, curves: dict, title: str, xlabel: str, percent: tuple = ()):
    """One panel per metric against ``x``: mean and 95% interval over seeds.

    Args:
        x: ``[N]``; curves: ``{name: [N, S]}``; percent: names drawn with a "(%)" title.
    """
    fig = Figure(figsize=(max(4.4 * len(curves), 6), 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(curves)))
    for ax, (name, values) in zip(axes, curves.items()):
        mean, half = mean_and_ci95(values, axis=-1)
        (line,) = ax.plot(x, mean)
        ax.fill_between(x, mean - half, mean + half, alpha=0.25, color=line.get_color())
        ax.set_title(name.replace("_", " ") + (" (%)" if name in percent else ""))
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    n = next(iter(curves.values())).shape[-1]
    fig.suptitle(f"{title}: mean and 95% interval over {n} seed{'s' if n > 1 else ''}")
    fig.savefig(path, dpi=110)


def plot_qd_curves(path, evaluations, curves: dict, title: str):
    """QD-score, coverage and max fitness against evaluations (``curves``: ``{name: [N, S]}``)."""
    plot_metric_curves(path, evaluations, curves, title, "evaluations per seed", percent=("coverage",))


def plot_state_maps(path, maps: dict, extent, axis_labels, title: str):
    """One heatmap panel per function of the state on a 2-D grid of states.

    Args:
        maps: ``{name: [ny, nx]}`` (row ``y``, column ``x``); extent: ``(x_min, x_max, y_min, y_max)``;
        axis_labels: ``(x label, y label)``.
    """
    fig = Figure(figsize=(4.6 * len(maps), 4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(maps)))
    for ax, (name, values) in zip(axes, maps.items()):
        image = ax.imshow(np.asarray(values), origin="lower", extent=extent, aspect="auto", cmap="coolwarm",
                          interpolation="nearest")
        fig.colorbar(image, ax=ax)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(axis_labels[0])
        ax.set_ylabel(axis_labels[1])
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=110)
