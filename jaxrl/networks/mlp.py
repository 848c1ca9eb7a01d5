"""MLP torsos and the actor-critic used by policy-gradient agents."""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from jaxrl.networks.distributions import Categorical, DiagGaussian
from jaxrl.networks.init import orthogonal

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "gelu": nn.gelu, "silu": nn.silu}


def orthogonal_dense(features: int, scale: float, use_bias: bool = True) -> nn.Dense:
    """Dense layer with orthogonal weights of gain ``scale`` and zero bias (PPO's standard init)."""
    return nn.Dense(features, kernel_init=orthogonal(scale), bias_init=nn.initializers.zeros, use_bias=use_bias)


class MLP(nn.Module):
    """``[..., in] -> [..., hidden_sizes[-1]]`` with orthogonal(sqrt 2) init."""

    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        for size in self.hidden_sizes:
            x = orthogonal_dense(size, np.sqrt(2))(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = act(x)
        return x


class ActorCritic(nn.Module):
    """Separate actor and critic MLPs.

    ``__call__(obs [..., obs_dim])`` returns ``(distribution, value [...])``;
    ``policy`` and ``value`` run one head alone (rollouts need only the actor).
    With ``value_bins > 0`` the critic is categorical (classification value
    losses such as HL-Gauss): ``value`` returns logits ``[..., value_bins]``
    over a support the agent fixes, instead of a scalar.
    The policy head is initialised with gain 0.01 (near-uniform initial policy),
    the value head with gain 1. ``encoder`` (:mod:`jaxrl.networks.encoders`) runs before each
    torso; actor and critic have their own.
    """

    action_dim: int
    discrete: bool
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    value_bins: int = 0
    encoder: str = "mlp"

    def setup(self):
        from jaxrl.networks.encoders import make_encoder  # encoders build on this module's dense layers

        actor_encoder, critic_encoder = make_encoder(self.encoder), make_encoder(self.encoder)
        self.actor_torso = nn.Sequential([actor_encoder, MLP(self.hidden_sizes, self.activation)]) if actor_encoder else MLP(self.hidden_sizes, self.activation)
        self.actor_head = orthogonal_dense(self.action_dim, 0.01)
        self.critic_torso = nn.Sequential([critic_encoder, MLP(self.hidden_sizes, self.activation)]) if critic_encoder else MLP(self.hidden_sizes, self.activation)
        self.critic_head = orthogonal_dense(max(self.value_bins, 1), 1.0)
        if not self.discrete:
            self.log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))

    def policy(self, obs):
        out = self.actor_head(self.actor_torso(obs))
        if self.discrete:
            return Categorical(out)
        return DiagGaussian(out, jnp.broadcast_to(self.log_std, out.shape))

    def value(self, obs):
        out = self.critic_head(self.critic_torso(obs))
        return out if self.value_bins else out[..., 0]

    def __call__(self, obs):
        return self.policy(obs), self.value(obs)
