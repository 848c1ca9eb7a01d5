"""Aggregate statistics over runs and tasks with stratified bootstrap intervals.

The estimators of Agarwal et al. 2021, "Deep Reinforcement Learning at the Edge
of the Statistical Precipice", with the conventions of their ``rliable``
package (tested to agree with it on the same data):

- a score matrix is ``[num_runs, num_tasks]`` (extra trailing axes allowed
  where stated), usually normalised per task;
- mean / median are of the per-task mean scores; IQM and the optimality gap
  pool every run of every task; IQM is the 25% trimmed mean with
  ``scipy.stats.trim_mean``'s cut (``int(0.25 * n)`` values off each end);
- probability of improvement P(X > Y) is the Mann-Whitney U statistic over
  all run pairs of a task (ties count one half), averaged over tasks;
- intervals are percentile intervals of a stratified bootstrap: runs are
  resampled with replacement independently for each task (and each entry of
  any trailing axis), tasks are kept.

Everything is written in JAX so thousands of bootstrap replications over
thousands of runs are one vectorised program (``benchmarks/stats_speed.py``
compares against ``rliable``). Point estimates are deterministic; intervals
depend on the key.
"""
from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


def aggregate_mean(scores):
    """Mean over tasks of the per-task mean score. ``scores [R, T]`` -> scalar."""
    return jnp.mean(jnp.mean(scores, axis=0))


def aggregate_median(scores):
    """Median over tasks of the per-task mean score. ``scores [R, T]`` -> scalar."""
    return jnp.median(jnp.mean(scores, axis=0))


def aggregate_iqm(scores):
    """Interquartile mean of all ``R * T`` scores pooled: drop the ``int(n / 4)`` lowest
    and highest, average the rest. ``scores [R, T]`` -> scalar."""
    flat = jnp.sort(jnp.ravel(scores))
    n = flat.shape[0]
    cut = int(0.25 * n)
    return jnp.mean(flat[cut : n - cut])


def aggregate_optimality_gap(scores, gamma: float = 1.0):
    """``gamma - mean(min(score, gamma))`` over all runs and tasks: how far below the
    target ``gamma`` scores fall on average (lower is better). ``scores [R, T]`` -> scalar."""
    return gamma - jnp.mean(jnp.minimum(scores, gamma))


def probability_of_improvement(scores_x, scores_y):
    """P(X > Y): for each task the fraction of run pairs where X beats Y (ties 1/2),
    averaged over tasks. ``scores_x [Rx, T]``, ``scores_y [Ry, T]`` -> scalar.

    Counted through ranks (the Mann-Whitney U statistic, as rliable computes it) rather
    than all ``Rx * Ry`` pairs: for each run of X, the number of runs of Y below it plus
    half the number equal to it, found by binary search in Y's sorted scores. The same
    number in ``O((Rx + Ry) log Ry)`` instead of ``O(Rx * Ry)``, which matters for
    thousands of runs times thousands of bootstrap replications.
    """

    def one_task(x, y):
        y = jnp.sort(y)
        below = jnp.searchsorted(y, x, side="left")
        not_above = jnp.searchsorted(y, x, side="right")
        return jnp.sum(below + 0.5 * (not_above - below)) / (x.shape[0] * y.shape[0])

    return jnp.mean(jax.vmap(one_task, in_axes=1)(scores_x, scores_y))


def score_distribution(scores, taus):
    """Performance profile: fraction of all runs (pooled over tasks) scoring above each
    threshold. ``scores [R, T]``, ``taus [K]`` -> ``[K]``."""
    return jnp.mean(jnp.ravel(scores)[None, :] > jnp.asarray(taus)[:, None], axis=1)


def average_score_distribution(scores, taus):
    """Fraction of tasks whose mean score is above each threshold. -> ``[K]``."""
    return jnp.mean(jnp.mean(scores, axis=0)[None, :] > jnp.asarray(taus)[:, None], axis=1)


AGGREGATES: dict[str, Callable] = {
    "median": aggregate_median,
    "iqm": aggregate_iqm,
    "mean": aggregate_mean,
    "optimality_gap": aggregate_optimality_gap,
}


def all_aggregates(scores):
    """``[4]``: median, IQM, mean and optimality gap (``AGGREGATES`` order)."""
    return jnp.stack([fn(scores) for fn in AGGREGATES.values()])


class Interval(NamedTuple):
    """A point estimate and its bootstrap interval (same shape each)."""

    point: np.ndarray
    low: np.ndarray
    high: np.ndarray


def stratified_resample(key, scores):
    """One stratified bootstrap sample: for each task (and trailing entry) draw ``R``
    runs with replacement from that task's runs. ``scores [R, T, ...]`` -> same shape."""
    idx = jax.random.randint(key, scores.shape, 0, scores.shape[0])
    return jnp.take_along_axis(scores, idx, axis=0)


def _percentile_interval(samples, confidence: float):
    alpha = 100.0 * (1.0 - confidence) / 2.0
    low, high = jnp.percentile(samples, jnp.array([alpha, 100.0 - alpha]), axis=0)
    return low, high


def _bootstrap(key, statistic, arrays, reps: int, batch_size: int):
    """``[reps, ...]`` values of ``statistic(*resampled arrays)``, each array resampled independently."""

    def one(rep_key):
        keys = jax.random.split(rep_key, len(arrays))
        return statistic(*(stratified_resample(k, a) for k, a in zip(keys, arrays)))

    return jax.lax.map(one, jax.random.split(key, reps), batch_size=min(batch_size, reps))


@functools.lru_cache(maxsize=64)
def _interval_program(statistic, reps: int, batch_size: int, confidence: float):
    """One jitted program per statistic and setting (reports call the same one for every method pair)."""
    return jax.jit(lambda k, *a: (statistic(*a), *_percentile_interval(_bootstrap(k, statistic, a, reps, batch_size), confidence)))


def interval_estimate(
    key, statistic: Callable, *score_arrays, reps: int = 2000, confidence: float = 0.95, batch_size: int = 500
) -> Interval:
    """Point estimate of ``statistic(*score_arrays)`` and its stratified-bootstrap
    percentile interval.

    Args:
        key: PRNG key.
        statistic: ``(*arrays) -> array`` written in ``jax.numpy``.
        score_arrays: one or more ``[R_i, T, ...]`` matrices; each is resampled
            independently (two for probability of improvement).
        reps: bootstrap replications.
        confidence: interval coverage.
        batch_size: replications vectorised at once (bounds memory).
    """
    arrays = tuple(jnp.asarray(a, jnp.float32) for a in score_arrays)
    point, low, high = _interval_program(statistic, reps, batch_size, confidence)(key, *arrays)
    return Interval(np.array(point), np.array(low), np.array(high))


def iqm_and_mean(scores, seed: int = 0, reps: int = 2000) -> dict:
    """IQM and mean of ``scores [R, T]`` with 95% stratified-bootstrap intervals, as JSON-ready lists
    ``{"iqm": [point, low, high], "mean": [point, low, high]}`` (the rows of the benchmark tables)."""
    key = jax.random.PRNGKey(seed)
    out = {}
    for name, statistic in (("iqm", aggregate_iqm), ("mean", aggregate_mean)):
        estimate = interval_estimate(key, statistic, scores, reps=reps)
        out[name] = [float(estimate.point), float(estimate.low), float(estimate.high)]
    return out


def normalize_scores(scores, random_score, reference_score):
    """``(score - random) / (reference - random)``: 0 is a random policy, 1 the reference."""
    return (np.asarray(scores, np.float64) - random_score) / (reference_score - random_score)
