"""Small action distributions (pure, vmappable) used by the policy heads.

Each distribution can also sample from pre-drawn noise (``sample_from_noise``)
so rollouts draw all their randomness for ``T`` steps in one batched call
outside the step loop, which is measurably faster on CPU than splitting keys
inside it.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

LOG_2PI = jnp.log(2.0 * jnp.pi)


class Categorical(NamedTuple):
    """Categorical over the last axis of ``logits`` ``[..., A]``."""

    logits: jax.Array

    def log_prob(self, action):
        logp = jax.nn.log_softmax(self.logits)
        return jnp.take_along_axis(logp, action[..., None].astype(jnp.int32), axis=-1)[..., 0]

    def entropy(self):
        logp = jax.nn.log_softmax(self.logits)
        return -jnp.sum(jnp.exp(logp) * logp, axis=-1)

    def mode(self):
        return jnp.argmax(self.logits, axis=-1).astype(jnp.int32)

    def noise_shape(self) -> tuple:
        return self.logits.shape

    @staticmethod
    def draw_noise(key, shape):
        """Gumbel noise; ``argmax(logits + noise)`` is an exact categorical sample."""
        return jax.random.gumbel(key, shape)

    def sample_from_noise(self, noise):
        return jnp.argmax(self.logits + noise, axis=-1).astype(jnp.int32)

    def sample(self, key):
        return self.sample_from_noise(self.draw_noise(key, self.logits.shape))

    def kl(self, other: "Categorical"):
        logp, logq = jax.nn.log_softmax(self.logits), jax.nn.log_softmax(other.logits)
        return jnp.sum(jnp.exp(logp) * (logp - logq), axis=-1)


class DiagGaussian(NamedTuple):
    """Diagonal Gaussian over the last axis: ``mean``, ``log_std`` ``[..., A]``."""

    mean: jax.Array
    log_std: jax.Array

    def log_prob(self, action):
        z = (action - self.mean) * jnp.exp(-self.log_std)
        return jnp.sum(-0.5 * z**2 - self.log_std - 0.5 * LOG_2PI, axis=-1)

    def entropy(self):
        return jnp.sum(self.log_std + 0.5 * (1.0 + LOG_2PI), axis=-1)

    def mode(self):
        return self.mean

    def noise_shape(self) -> tuple:
        return self.mean.shape

    @staticmethod
    def draw_noise(key, shape):
        return jax.random.normal(key, shape)

    def sample_from_noise(self, noise):
        return self.mean + jnp.exp(self.log_std) * noise

    def sample(self, key):
        return self.sample_from_noise(self.draw_noise(key, self.mean.shape))

    def kl(self, other: "DiagGaussian"):
        var_ratio = jnp.exp(2 * (self.log_std - other.log_std))
        t = ((self.mean - other.mean) * jnp.exp(-other.log_std)) ** 2
        return 0.5 * jnp.sum(var_ratio + t - 1.0 - 2 * (self.log_std - other.log_std), axis=-1)


class EpsilonGreedy(NamedTuple):
    """Epsilon-greedy over action values ``q [..., A]``: with probability
    ``epsilon`` a uniformly random action, otherwise ``argmax q`` (ties: lowest index).

    Noise is ``[..., A + 1]`` uniforms: the first ``A`` become Gumbel noise whose
    argmax is the uniform random action, the last decides whether to explore.
    """

    q_values: jax.Array
    epsilon: jax.Array

    def mode(self):
        return jnp.argmax(self.q_values, axis=-1).astype(jnp.int32)

    def log_prob(self, action):
        num_actions = self.q_values.shape[-1]
        greedy = (action.astype(jnp.int32) == self.mode()).astype(self.q_values.dtype)
        return jnp.log((1.0 - self.epsilon) * greedy + self.epsilon / num_actions)

    def noise_shape(self) -> tuple:
        return self.q_values.shape[:-1] + (self.q_values.shape[-1] + 1,)

    @staticmethod
    def draw_noise(key, shape):
        return jax.random.uniform(key, shape, minval=jnp.finfo(jnp.float32).tiny, maxval=1.0)

    def sample_from_noise(self, noise):
        random_action = jnp.argmax(-jnp.log(-jnp.log(noise[..., :-1])), axis=-1).astype(jnp.int32)
        return jnp.where(noise[..., -1] < self.epsilon, random_action, self.mode())

    def sample(self, key):
        return self.sample_from_noise(self.draw_noise(key, self.noise_shape()))
