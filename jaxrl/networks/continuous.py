"""Networks for continuous-action off-policy agents (SAC): a squashed Gaussian actor and twin critics."""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxrl.networks.distributions import TanhGaussian
from jaxrl.networks.mlp import MLP, orthogonal_dense


class SquashedGaussianActor(nn.Module):
    """``obs [..., obs_dim] -> TanhGaussian`` over actions in ``(-1, 1)^A``.

    The log standard deviation is squashed smoothly into ``[log_std_min,
    log_std_max]`` by a tanh (bounded exploration noise without a hard clip
    that kills its gradient).
    """

    action_dim: int
    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"
    log_std_min: float = -5.0
    log_std_max: float = 2.0

    @nn.compact
    def __call__(self, obs) -> TanhGaussian:
        x = MLP(self.hidden_sizes, self.activation)(obs)
        # Small heads: the initial policy is close to tanh(N(0, exp(mid log-std)^2)) for every obs.
        mean = orthogonal_dense(self.action_dim, 0.01)(x)
        raw_log_std = jnp.tanh(orthogonal_dense(self.action_dim, 0.01)(x))
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (raw_log_std + 1.0)
        return TanhGaussian(mean, log_std)


class ContinuousQNetwork(nn.Module):
    """``(obs [..., obs_dim], action [..., A]) -> Q [...]``."""

    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"

    @nn.compact
    def __call__(self, obs, action):
        x = MLP(self.hidden_sizes, self.activation)(jnp.concatenate([obs, action], axis=-1))
        return orthogonal_dense(1, 1.0)(x)[..., 0]


class TwinQNetwork(nn.Module):
    """``num_critics`` independent :class:`ContinuousQNetwork` s in one module: ``-> Q [num_critics, ...]``.

    The critics are ``nn.vmap``-ed with their parameter RNG split, so each one
    gets its own initialisation (clipped double Q-learning, Fujimoto et al.
    2018, relies on the two estimates being different); their parameters carry
    a leading ``[num_critics]`` axis.
    """

    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"
    num_critics: int = 2

    @nn.compact
    def __call__(self, obs, action):
        critics = nn.vmap(
            ContinuousQNetwork,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=None,
            out_axes=0,
            axis_size=self.num_critics,
        )
        return critics(self.hidden_sizes, self.activation, name="critics")(obs, action)
