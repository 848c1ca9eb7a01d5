"""Recurrent actor-critic (GRU or LSTM core) and the reset / unroll helpers that thread its state.

The recurrent state of a batch of environments is a pytree with leaves
``[B, core_size]`` (a GRU's ``h``; an LSTM's ``(c, h)``). It is carried from
step to step and reset to the initial state (zeros) right after an episode
ends (``done = terminated | truncated``), so the observation that starts the
next episode is processed from a fresh state and memory never leaks across
episodes. Rollouts, the PPO update and evaluation all reset with
:func:`reset_where`; the update re-runs stored sequences with :func:`unroll`.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxrl.networks.distributions import Categorical, DiagGaussian
from jaxrl.networks.encoders import make_encoder
from jaxrl.networks.init import orthogonal
from jaxrl.networks.mlp import MLP, orthogonal_dense

CORES = ("gru", "lstm")


def initial_core_state(core: str, core_size: int, batch_size: int) -> Any:
    """The initial recurrent state of ``batch_size`` environments: zeros.

    Returns:
        ``h [B, core_size]`` for a GRU, ``(c, h)`` each ``[B, core_size]`` for an LSTM
        (the carry layout of flax's ``GRUCell`` / ``OptimizedLSTMCell``).
    """
    zeros = jnp.zeros((batch_size, core_size), jnp.float32)
    if core == "gru":
        return zeros
    if core == "lstm":
        return (zeros, zeros)
    raise ValueError(f"unknown recurrent core {core!r}; choose from {', '.join(CORES)}")


def reset_where(done, state, initial):
    """Replaces the state of environments whose episode just ended by the initial state.

    Args:
        done: ``[B]`` bool, the episode of env ``b`` ended on this step.
        state: pytree, leaves ``[B, ...]``.
        initial: pytree of the same structure, leaves ``[B, ...]`` (or broadcastable to them).

    Returns:
        ``state`` with env ``b``'s leaves replaced by ``initial``'s where ``done[b]``.
        An empty pytree (a feedforward policy's state) passes through.
    """

    def select(init, leaf):
        mask = jnp.reshape(done, done.shape + (1,) * (leaf.ndim - done.ndim))
        return jnp.where(mask, init, leaf)

    return jax.tree.map(select, initial, state)


def unroll(step_fn: Callable, state, inputs, done, initial):
    """Runs ``step_fn`` over a stored sequence with the rollout's resets.

    The state entering step ``t`` is the state after step ``t - 1``, reset to
    ``initial`` where ``done[t - 1]``: the same rule the rollout applied, so
    the same parameters reproduce the rollout's outputs.

    Args:
        step_fn: ``(state, inputs_t) -> (state, out_t)`` for one step of ``B`` envs.
        state: leaves ``[B, ...]``, the state before step 0 (stored at the rollout's start).
        inputs: pytree, leaves ``[T, B, ...]``.
        done: ``[T, B]`` bool, episode ended at step ``t``.
        initial: the initial state (leaves ``[B, ...]`` or broadcastable).

    Returns:
        ``(state after the last step and its reset, outs [T, B, ...])``.
    """

    def body(state, x):
        inputs_t, done_t = x
        state, out = step_fn(state, inputs_t)
        return reset_where(done_t, state, initial), out

    return jax.lax.scan(body, state, (inputs, done))


class RecurrentActorCritic(nn.Module):
    """(Encoder ->) MLP torso -> recurrent core -> separate one-hidden-layer actor and critic heads.

    With ``encoder="maze_conv"``, ``hidden_sizes=()``, ``core="lstm"``, ``core_size=256``,
    ``head_size=32`` and ReLU this is the maze policy of JaxUED / minimax (conv + direction
    embedding -> LSTM 256 -> 32-unit heads). ``head_size`` 0 means ``core_size``.

    ``__call__(state, obs [B, obs_dim]) -> (state, distribution, critic_out)``
    is one step; ``critic_out`` is the value ``[B]`` (or logits
    ``[B, value_bins]`` of a categorical critic). The core is shared so the
    critic's loss also shapes the memory; heads and initialisation follow
    :class:`~jaxrl.networks.mlp.ActorCritic` (policy gain 0.01, value gain 1).
    The recurrent kernel's orthogonal init is jaxrl's LAPACK-free one (flax's
    QR-based init can deadlock XLA:CPU inside a vmapped init).
    """

    action_dim: int
    discrete: bool
    hidden_sizes: Sequence[int] = (64,)
    activation: str = "tanh"
    core: str = "gru"
    core_size: int = 64
    value_bins: int = 0
    encoder: str = "mlp"
    head_size: int = 0

    def setup(self):
        encoder = make_encoder(self.encoder)
        mlp = MLP(self.hidden_sizes, self.activation)
        self.torso = nn.Sequential([encoder, mlp]) if encoder else mlp
        cell = {"gru": nn.GRUCell, "lstm": nn.OptimizedLSTMCell}[self.core]
        self.cell = cell(features=self.core_size, recurrent_kernel_init=orthogonal())
        head = (self.head_size or self.core_size,)
        self.actor_torso = MLP(head, self.activation)
        self.actor_head = orthogonal_dense(self.action_dim, 0.01)
        self.critic_torso = MLP(head, self.activation)
        self.critic_head = orthogonal_dense(max(self.value_bins, 1), 1.0)
        if not self.discrete:
            self.log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))

    def __call__(self, state, obs):
        state, features = self.cell(state, self.torso(obs))
        out = self.actor_head(self.actor_torso(features))
        if self.discrete:
            dist = Categorical(out)
        else:
            dist = DiagGaussian(out, jnp.broadcast_to(self.log_std, out.shape))
        critic_out = self.critic_head(self.critic_torso(features))
        return state, dist, critic_out if self.value_bins else critic_out[..., 0]


__all__ = ["CORES", "RecurrentActorCritic", "initial_core_state", "reset_where", "unroll"]
