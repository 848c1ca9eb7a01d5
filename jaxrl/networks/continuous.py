"""Networks for continuous-action off-policy agents: SAC's squashed Gaussian actor, twin critics, and the
deterministic (TD3-style) actor that quality-diversity searches evolve and train."""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxrl.networks.distributions import TanhGaussian
from jaxrl.networks.mlp import ACTIVATIONS, MLP, orthogonal_dense


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


class DeterministicActor(nn.Module):
    """``obs [..., in_dim] -> action [..., A]`` in ``(-1, 1)``: Dense layers ``Dense_0 ... Dense_L``, the last one
    tanh-squashed, LeCun-uniform weights and zero biases (QDax's policy MLP).

    A descriptor-conditioned actor is the same network on ``concat(obs, descriptor)``;
    :func:`fold_conditioning` turns it into an ordinary actor for one descriptor.
    """

    action_dim: int
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "relu"

    @nn.compact
    def __call__(self, obs):
        x = obs
        for size in self.hidden_sizes:
            x = ACTIVATIONS[self.activation](nn.Dense(size, kernel_init=nn.initializers.lecun_uniform())(x))
        return jnp.tanh(nn.Dense(self.action_dim, kernel_init=nn.initializers.lecun_uniform())(x))


def fold_conditioning(params, conditioning: jax.Array):
    """The parameters of an unconditioned :class:`DeterministicActor` equal to a conditioned one at ``conditioning``.

    The conditioned actor's first layer sees ``concat(obs, c)``: ``W_obs obs + W_c c + b``. With ``c`` fixed that
    is a layer on ``obs`` alone with bias ``b + c W_c`` (DCG-ME's actor injection).

    Args:
        params: the conditioned actor's parameters (first kernel ``[obs_dim + K, H]``).
        conditioning: ``[K]``.
    """
    first = params["params"]["Dense_0"]
    k = conditioning.shape[-1]
    kernel = first["kernel"]
    folded = {"kernel": kernel[: kernel.shape[0] - k], "bias": first["bias"] + conditioning @ kernel[kernel.shape[0] - k:]}
    return {**params, "params": {**params["params"], "Dense_0": folded}}
