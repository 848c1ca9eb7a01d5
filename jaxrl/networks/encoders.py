"""Observation encoders that run before an actor-critic's torso (or recurrent core).

``mlp`` is no encoder at all: the flat observation goes to the MLP torso. ``maze_conv`` is the
maze encoder of the published UED results (Jiang et al. 2021's robust PLR, ACCEL; the JaxUED and
minimax reference implementations): a 3 x 3 convolution with 16 channels over the agent's
egocentric view, flattened, concatenated with a 5-unit embedding of its direction. jaxrl's maze
observation is flat (:func:`jaxrl.envs.levels.maze.observe`: the ``[v, v, 2]`` wall and goal view,
then the direction one-hot ``[4]``), so the encoder un-flattens it; ``v`` follows from the size.
"""
from __future__ import annotations

import math

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from jaxrl.networks.mlp import orthogonal_dense

ENCODERS = ("mlp", "maze_conv")
MAZE_CHANNELS = 2  # wall, goal
NUM_DIRECTIONS = 4


def maze_view_size(obs_dim: int) -> int:
    """The side ``v`` of a flat maze observation ``[v * v * 2 + 4]``; ValueError if ``obs_dim`` is not one."""
    side = math.isqrt(max(obs_dim - NUM_DIRECTIONS, 0) // MAZE_CHANNELS)
    if side < 1 or side * side * MAZE_CHANNELS + NUM_DIRECTIONS != obs_dim:
        raise ValueError(f"--encoder maze_conv needs a maze observation [v*v*{MAZE_CHANNELS}+{NUM_DIRECTIONS}], got {obs_dim} values")
    return side


class MazeConvEncoder(nn.Module):
    """``obs [..., v*v*2 + 4] -> features [..., 16 * (v-2)^2 + 5]``.

    Conv(16, 3 x 3, valid padding) + ReLU over the ``[v, v, 2]`` view, flattened, and Dense(5) of the
    direction one-hot (orthogonal sqrt 2 init, as JaxUED's ``scalar_embed``), concatenated.
    """

    channels: int = 16
    kernel: int = 3
    direction_features: int = 5

    @nn.compact
    def __call__(self, obs):
        side = maze_view_size(obs.shape[-1])
        batch = obs.shape[:-1]
        image = obs[..., : side * side * MAZE_CHANNELS].reshape((-1, side, side, MAZE_CHANNELS))
        direction = obs[..., side * side * MAZE_CHANNELS:]
        features = nn.Conv(self.channels, (self.kernel, self.kernel), padding="VALID")(image)
        features = nn.relu(features).reshape(batch + (-1,))
        direction = orthogonal_dense(self.direction_features, np.sqrt(2))(direction)
        return jnp.concatenate([features, direction], axis=-1)


def make_encoder(name: str) -> nn.Module | None:
    """The encoder module named ``name`` (one of :data:`ENCODERS`); None for ``mlp`` (no encoder, no parameters)."""
    if name == "mlp":
        return None
    if name == "maze_conv":
        return MazeConvEncoder()
    raise ValueError(f"--encoder: {name!r} is not one of {', '.join(ENCODERS)}")


__all__ = ["ENCODERS", "MazeConvEncoder", "make_encoder", "maze_view_size"]
