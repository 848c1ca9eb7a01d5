"""One-step temporal-difference targets and losses for off-policy agents (DQN, SAC).

Small pure functions on batches; the agents compose them. ``terminated`` (a
true terminal state) stops the bootstrap; a time-limit truncation does not:
the replay stores the true final observation as the next observation, so the
bootstrap at truncation uses it.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def td_target(reward, terminated, next_value, gamma):
    """``r + gamma * (1 - terminated) * next_value``, with no gradient into ``next_value``.

    Args:
        reward, terminated, next_value: ``[B]`` (``terminated`` bool or 0/1).
        gamma: scalar discount.

    Returns:
        ``[B]`` targets.
    """
    not_done = 1.0 - terminated.astype(jnp.float32)
    return reward + gamma * not_done * jax.lax.stop_gradient(next_value)


def greedy_next_value(next_q_target, next_q_online, double_q: bool):
    """Value of the next state for Q-learning targets.

    DQN (Mnih et al. 2015): ``max_a Q_target(s', a)``. Double DQN (van Hasselt
    et al. 2016): the online network picks the action, the target network
    evaluates it, ``Q_target(s', argmax_a Q_online(s', a))``.

    Args:
        next_q_target, next_q_online: ``[B, A]``.
        double_q: static switch.

    Returns:
        ``[B]``.
    """
    if not double_q:
        return jnp.max(next_q_target, axis=-1)
    action = jnp.argmax(next_q_online, axis=-1)
    return jnp.take_along_axis(next_q_target, action[:, None], axis=-1)[:, 0]


def regression_loss(prediction, target, kind: str, huber_delta: float = 1.0):
    """Mean over the batch of ``(prediction - target)^2`` (``"mse"``) or the Huber loss (``"huber"``:
    ``0.5 x^2`` for ``|x| <= delta``, ``delta (|x| - delta / 2)`` beyond; SB3's and the Nature DQN's choice).

    Args:
        prediction, target: ``[B]``.
    """
    if kind == "mse":
        return jnp.mean((prediction - target) ** 2)
    if kind == "huber":
        return jnp.mean(optax.huber_loss(prediction, target, delta=huber_delta))
    raise ValueError(f"unknown regression loss {kind!r}")


def polyak_update(target_params, online_params, tau):
    """``tau * online + (1 - tau) * target`` leafwise; ``tau = 1`` copies the online network."""
    return jax.tree.map(lambda t, o: tau * o + (1.0 - tau) * t, target_params, online_params)
