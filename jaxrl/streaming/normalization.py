"""Running statistics of one stream (Elsayed et al. 2024's normalisation wrappers, as pure functions).

``SampleMeanStd`` is Welford's sample mean and unbiased variance, with the
reference's conventions: the first sample sets the mean, the variance is 1
until two samples are seen. Observations are normalised by their running
mean and standard deviation (the statistics updated with the observation
first); rewards are divided by the running standard deviation of the
discounted return ``u <- gamma * (1 - done) * u + r`` (its mean is not
subtracted, so the reward's sign is kept).
"""
from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

EPS = 1e-8


class SampleMeanStd(NamedTuple):
    mean: jnp.ndarray
    p: jnp.ndarray  # sum of squared deviations
    count: jnp.ndarray

    @classmethod
    def create(cls, shape=()) -> "SampleMeanStd":
        return cls(jnp.zeros(shape, jnp.float32), jnp.zeros(shape, jnp.float32), jnp.zeros((), jnp.float32))

    @property
    def var(self):
        """Unbiased variance (1 before two samples); also for a batch of streams (``count [M]``, ``p [M, ...]``)."""
        count = jnp.reshape(self.count, jnp.shape(self.count) + (1,) * (jnp.ndim(self.p) - jnp.ndim(self.count)))
        return jnp.where(count < 2, 1.0, self.p / jnp.maximum(count - 1, 1.0))


def update_sample_stats(stats: SampleMeanStd, x) -> SampleMeanStd:
    count = stats.count + 1
    mean = stats.mean + (x - stats.mean) / count
    p = stats.p + (x - stats.mean) * (x - mean)
    return SampleMeanStd(mean, p, count)


def normalize_sample(stats: SampleMeanStd, x):
    """``(stats updated with x, (x - mean) / sqrt(var + eps))``."""
    stats = update_sample_stats(stats, x)
    return stats, (x - stats.mean) / jnp.sqrt(stats.var + EPS)


class RewardScaler(NamedTuple):
    stats: SampleMeanStd
    trace: jnp.ndarray  # the discounted return so far

    @classmethod
    def create(cls) -> "RewardScaler":
        return cls(SampleMeanStd.create(), jnp.zeros((), jnp.float32))


def scale_reward(scaler: RewardScaler, reward, done, gamma):
    """``(scaler, reward / sqrt(var(u) + eps))`` with ``u <- gamma * (1 - done) * u + reward``: a step that ends an
    episode (termination or time limit) drops the return so far before its reward is added (the reference's and
    gymnasium's ``NormalizeReward`` convention)."""
    trace = scaler.trace * gamma * (1.0 - jnp.asarray(done, jnp.float32)) + reward
    stats = update_sample_stats(scaler.stats, trace)
    return RewardScaler(stats, trace), reward / jnp.sqrt(stats.var + EPS)

