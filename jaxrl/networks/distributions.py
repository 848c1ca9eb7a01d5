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


def tanh_log_det_jacobian(pre_tanh):
    """``sum log(1 - tanh(u)^2)`` over the last axis, computed stably as
    ``2 * (log 2 - u - softplus(-2u))`` (no ``1 - tanh^2`` underflow for large ``|u|``).

    Args:
        pre_tanh: ``u [..., A]``.

    Returns:
        ``[...]``.
    """
    return jnp.sum(2.0 * (jnp.log(2.0) - pre_tanh - jax.nn.softplus(-2.0 * pre_tanh)), axis=-1)


class TanhGaussian(NamedTuple):
    """``a = tanh(u)``, ``u ~ N(mean, exp(log_std)^2)`` diagonal over the last axis ``[..., A]``:
    SAC's squashed Gaussian (Haarnoja et al. 2018, appendix C), actions in ``(-1, 1)``.

    By the change of variables ``log pi(a) = log N(u) - sum log(1 - tanh(u)^2)``.
    Learning uses :meth:`sample_and_log_prob_from_noise`, which keeps ``u`` (no
    ``atanh`` of a saturated action); :meth:`log_prob` of a given action inverts
    the squashing and is exact away from the bounds.
    """

    mean: jax.Array
    log_std: jax.Array

    def _gaussian(self) -> DiagGaussian:
        return DiagGaussian(self.mean, self.log_std)

    def mode(self):
        return jnp.tanh(self.mean)

    def noise_shape(self) -> tuple:
        return self.mean.shape

    @staticmethod
    def draw_noise(key, shape):
        return jax.random.normal(key, shape)

    def sample_and_log_prob_from_noise(self, noise):
        """Reparameterised sample and its log-probability: ``(a [..., A], log_prob [...])``."""
        pre_tanh = self.mean + jnp.exp(self.log_std) * noise
        log_prob = self._gaussian().log_prob(pre_tanh) - tanh_log_det_jacobian(pre_tanh)
        return jnp.tanh(pre_tanh), log_prob

    def sample_from_noise(self, noise):
        return jnp.tanh(self.mean + jnp.exp(self.log_std) * noise)

    def sample(self, key):
        return self.sample_from_noise(self.draw_noise(key, self.mean.shape))

    def log_prob(self, action, eps: float = 1e-6):
        """Log-density of ``action`` in ``(-1, 1)``; actions are clipped ``eps`` inside the bounds before ``atanh``."""
        pre_tanh = jnp.arctanh(jnp.clip(action, -1.0 + eps, 1.0 - eps))
        return self._gaussian().log_prob(pre_tanh) - tanh_log_det_jacobian(pre_tanh)
