"""Drift functions of mirror-learning policy objectives: small pure functions.

Lu et al. (2022), "Discovered Policy Optimisation", write a policy objective as

    L(theta) = -mean(r * A - drift(r, A)),    r = pi_theta(a|s) / pi_old(a|s),

where the drift is non-negative and zero (with zero gradient) at ``r = 1``. PPO's
clip is one drift; DPO is the closed form they discovered; LPO learns it with a
network (:mod:`jaxrl.networks.drift`) whose inputs are :func:`lpo_features`.
"""
from __future__ import annotations

import jax.numpy as jnp


def drift_policy_loss(ratio, advantages, drift):
    """``-mean(r A - drift)``. ``ratio``, ``advantages``, ``drift``: ``[N]``."""
    return -jnp.mean(ratio * advantages - drift)


def ppo_clip_drift(ratio, advantages, clip_eps):
    """PPO-clip as a drift: ``relu((r - clip(r, 1-eps, 1+eps)) A)``.

    ``r A - drift`` equals ``min(r A, clip(r) A)``, so :func:`drift_policy_loss` with
    this drift is PPO's clipped surrogate. ``[N]`` -> ``[N]``.
    """
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    return jnp.maximum((ratio - clipped) * advantages, 0.0)


def dpo_drift(ratio, advantages, alpha, beta):
    """Discovered Policy Optimisation's closed-form drift (Lu et al. 2022, eq. 9).

    ``A >= 0``: ``relu((r - 1) A - alpha tanh((r - 1) A / alpha))``;
    ``A < 0``:  ``relu(log(r) A - beta tanh(log(r) A / beta))``.
    The paper's constants are ``alpha = 2``, ``beta = 0.6``. ``[N]`` -> ``[N]``.
    """
    pos = (ratio - 1.0) * advantages
    neg = jnp.log(ratio) * advantages
    drift_pos = jnp.maximum(pos - alpha * jnp.tanh(pos / alpha), 0.0)
    drift_neg = jnp.maximum(neg - beta * jnp.tanh(neg / beta), 0.0)
    return jnp.where(advantages >= 0.0, drift_pos, drift_neg)


NUM_LPO_FEATURES = 8


def lpo_features(ratio, advantages):
    """The learned drift's inputs: ``[N]`` -> ``[N, 8]``.

    ``[r - 1, (r - 1)^2, log r, (log r)^2]`` and each of those times ``A``. Every
    feature is zero at ``r = 1``, so a network without biases outputs exactly zero there.
    """
    d, lr = ratio - 1.0, jnp.log(ratio)
    base = jnp.stack([d, d**2, lr, lr**2], axis=-1)
    return jnp.concatenate([base, base * advantages[..., None]], axis=-1)


def ta_lpo_features(ratio, advantages, progress, log_num_updates=None):
    """Temporally-aware inputs (Jackson et al. 2024, "Discovering Temporally-Aware
    Reinforcement Learning Algorithms"): the LPO features ``x`` and ``(n / N) x``, and
    with ``log_num_updates`` also ``log(N) x``. Products keep every input zero at ``r = 1``.

    Args:
        ratio, advantages: ``[N]``.
        progress: scalar ``n / N``, fraction of training done.
        log_num_updates: optional scalar ``log N`` (the training horizon).
    Returns:
        ``[N, 16]`` or ``[N, 24]``.
    """
    x = lpo_features(ratio, advantages)
    parts = [x, progress * x]
    if log_num_updates is not None:
        parts.append(log_num_updates * x)
    return jnp.concatenate(parts, axis=-1)
