"""A deceptive point-navigation maze for novelty search (after Lehman & Stanley 2011).

A point starts inside a cup whose closed side faces the goal::

     y
     1 +---------------------------+
       |            G              |   G = goal (0, 0.6)
       |                           |
     0 |     +===============+     |   the cup: a bar at y = 0, x in [-0.6, 0.6],
       |     |               |     |   and two side walls x = +-0.6, y in [-0.7, 0]
       |     |       S       |     |   S = start (0, -0.35)
       |     |               |     |
    -1 +---------------------------+
      -1                           1  x

The reward is the negative distance to the goal when the episode ends (0 when
the goal is reached, which ends it early), so the fitness gradient leads
straight into the bar, the local optimum with return about -0.6. Reaching the
goal means first moving away from it: down and out of the cup's open bottom,
around a side wall, then up. Observations are the position ``[2]``; actions are
a velocity in ``[-1, 1]^2`` scaled by ``speed``. A move that would cross a wall
is cancelled (the point stays), and positions are clipped to the arena.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.envs.core import Box, Env
from jaxrl.types import Timestep

# Walls as (fixed coordinate, low, high): horizontal at y = c for x in [low, high], vertical at x = c.
HORIZONTAL_WALLS = np.array([[0.0, -0.6, 0.6]], np.float32)
VERTICAL_WALLS = np.array([[-0.6, -0.7, 0.0], [0.6, -0.7, 0.0]], np.float32)
START = np.array([0.0, -0.35], np.float32)
GOAL = np.array([0.0, 0.6], np.float32)


class MazeState(NamedTuple):
    position: jax.Array  # [2]
    time: jax.Array


def crosses(p: jax.Array, q: jax.Array, walls: jax.Array, axis: int) -> jax.Array:
    """Whether the segment ``p -> q`` touches any wall perpendicular to ``axis``.

    Args:
        p, q: ``[2]`` start and end of a move.
        walls: ``[W, 3]`` rows ``(c, low, high)``: the wall is ``{coord[axis] = c,
            low <= coord[1 - axis] <= high}``.
        axis: 1 for horizontal walls (fixed y), 0 for vertical ones (fixed x).

    Returns:
        scalar bool.
    """
    c, low, high = walls[:, 0], walls[:, 1], walls[:, 2]
    a0, a1 = p[axis], q[axis]
    straddles = (a0 - c) * (a1 - c) <= 0.0  # landing exactly on the wall counts as touching it
    t = jnp.clip((c - a0) / jnp.where(a1 == a0, 1.0, a1 - a0), 0.0, 1.0)
    other = p[1 - axis] + t * (q[1 - axis] - p[1 - axis])
    return jnp.any(straddles & (a1 != a0) & (other >= low) & (other <= high))


class DeceptiveMaze(Env):
    """The cup maze above. ``max_steps`` ends an episode by truncation; the goal by termination."""

    name = "DeceptiveMaze-v0"

    def __init__(self, max_steps: int = 100, speed: float = 0.05, goal_radius: float = 0.1):
        self.max_steps = int(max_steps)
        self.speed = float(speed)
        self.goal_radius = float(goal_radius)

    def reset(self, key, params):
        position = jnp.asarray(START)
        return MazeState(position, jnp.zeros((), jnp.int32)), position

    def step(self, key, state, action, params):
        p = state.position
        q = jnp.clip(p + self.speed * jnp.clip(action, -1.0, 1.0), -1.0, 1.0)
        blocked = crosses(p, q, jnp.asarray(HORIZONTAL_WALLS), 1) | crosses(p, q, jnp.asarray(VERTICAL_WALLS), 0)
        q = jnp.where(blocked, p, q)
        time = state.time + 1
        distance = jnp.linalg.norm(q - jnp.asarray(GOAL))
        terminated = distance < self.goal_radius
        truncated = (time >= self.max_steps) & ~terminated
        reward = jnp.where(truncated, -distance, 0.0).astype(jnp.float32)
        done = terminated | truncated
        reset_state, reset_obs = self.reset(key, params)
        next_state = MazeState(jnp.where(done, reset_state.position, q), jnp.where(done, 0, time))
        return next_state, Timestep(obs=next_state.position, reward=reward, terminated=terminated,
                                    truncated=truncated, final_obs=q, info={})

    def observation_space(self, params):
        return Box(low=-np.ones(2, np.float32), high=np.ones(2, np.float32), shape=(2,))

    def action_space(self, params):
        return Box(low=-np.ones(2, np.float32), high=np.ones(2, np.float32), shape=(2,))

    def max_episode_steps(self, params):
        return self.max_steps
