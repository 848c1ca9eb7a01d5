"""A policy-only network for direct policy search (evolution strategies, GA)."""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxrl.networks.distributions import Categorical, DiagGaussian
from jaxrl.networks.mlp import MLP, orthogonal_dense


class PolicyNetwork(nn.Module):
    """``obs [..., obs_dim] ->`` action distribution; its ``mode()`` is the action.

    Discrete actions: ``Categorical`` over ``action_dim`` logits. Continuous
    actions: a ``DiagGaussian`` whose mean is ``tanh``-squashed into ``[-1, 1]``
    (the range of jaxrl's rescaled action spaces) with unit std; evolution uses
    only its mode. No critic: every parameter is part of the searched solution.
    The head's gain is 1 (not PPO's 0.01) so independently initialised
    individuals already act differently, which a GA's first generation needs.
    """

    action_dim: int
    discrete: bool
    hidden_sizes: Sequence[int] = (16,)
    activation: str = "tanh"
    head_scale: float = 1.0

    @nn.compact
    def __call__(self, obs):
        x = MLP(self.hidden_sizes, self.activation)(obs) if self.hidden_sizes else obs
        out = orthogonal_dense(self.action_dim, self.head_scale)(x)
        if self.discrete:
            return Categorical(out)
        return DiagGaussian(jnp.tanh(out), jnp.zeros_like(out))
