"""Shared type aliases and named structures.

Every struct that crosses a module boundary is a ``NamedTuple`` (a pytree), so
it can be scanned, vmapped, sharded and checkpointed without special cases.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax

PRNGKey = jax.Array
Array = jax.Array
PyTree = Any
Params = Any
EnvState = Any
EnvParams = Any
Metrics = dict[str, Array]


class Timestep(NamedTuple):
    """What ``Env.step`` returns for one environment (add a leading ``[B]`` when vectorised).

    Attributes:
        obs: observation to act on next. After an episode ends this is already
            the first observation of the next episode (auto-reset).
        reward: reward for the transition just taken, ``[]``.
        terminated: the episode reached a true terminal state: do not bootstrap.
        truncated: the episode was cut by a time limit: bootstrap from ``final_obs``.
        final_obs: the observation the transition actually led to (before any
            auto-reset). Equal to ``obs`` when the episode did not end. The value
            target at truncation is ``reward + gamma * V(final_obs)``.
        info: extra per-step information (episode statistics, ...).
    """

    obs: Array
    reward: Array
    terminated: Array
    truncated: Array
    final_obs: Array
    info: dict

    @property
    def done(self) -> Array:
        """Episode ended for any reason (terminated or truncated)."""
        return self.terminated | self.truncated


class Transition(NamedTuple):
    """One stored step of an on-policy rollout, ``[T, B, ...]`` once stacked.

    Attributes:
        obs: observation the action was taken in.
        action: action taken.
        reward: reward received.
        terminated: next state is terminal (no bootstrap).
        truncated: episode cut by time limit after this step (bootstrap from final_obs).
        final_obs: observation the step led to (before auto-reset).
        log_prob: log-probability of ``action`` under the behaviour policy.
        info: per-step info from the environment (episode statistics).
    """

    obs: Array
    action: Array
    reward: Array
    terminated: Array
    truncated: Array
    final_obs: Array
    log_prob: Array
    info: dict
