"""The adversary's MDP of PAIRED (Dennis et al. 2020): build a maze one cell per step.

Step 0 places the goal, step 1 the agent's start (moved to the next cell if
it lands on the goal), each of the next ``num_walls`` steps a wall (ignored
on the goal or the start). The episode terminates after ``num_walls + 2``
steps with reward 0: PAIRED's regret is known only after the protagonist and
antagonist have played the level, and is given to the adversary then (see
:mod:`jaxrl.curricula.paired`).

Observation ``[3 * H * W + num_walls + 2]``: walls, goal and start as flat
``H x W`` planes, then the step one-hot. The level is read back from the last
step's ``final_obs`` with :func:`level_from_editor_obs`.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.envs.core import Box, Discrete, Env
from jaxrl.envs.levels.maze import Level
from jaxrl.types import Timestep


class EditorState(NamedTuple):
    wall_map: jax.Array  # [H * W] bool
    goal: jax.Array  # [] int32 flat cell
    start: jax.Array  # [] int32 flat cell
    time: jax.Array  # [] int32 steps taken


class MazeEditor(Env):
    """Builds one :class:`~jaxrl.envs.levels.maze.Level` per episode; actions are flat cell indices."""

    name = "MazeEditor"

    def __init__(self, height: int = 13, width: int = 13, num_walls: int = 25):
        self.height, self.width, self.num_walls = int(height), int(width), int(num_walls)
        self.num_steps = self.num_walls + 2

    def _obs(self, state: EditorState) -> jax.Array:
        cells = self.height * self.width
        placed_goal = state.time > 0
        placed_start = state.time > 1
        planes = jnp.concatenate([
            state.wall_map.astype(jnp.float32),
            jax.nn.one_hot(state.goal, cells) * placed_goal,
            jax.nn.one_hot(state.start, cells) * placed_start,
        ])
        return jnp.concatenate([planes, jax.nn.one_hot(jnp.minimum(state.time, self.num_steps - 1), self.num_steps)])

    def reset(self, key, params):
        cells = self.height * self.width
        state = EditorState(jnp.zeros(cells, bool), jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))
        return state, self._obs(state)

    def step(self, key, state: EditorState, action, params):
        cells = self.height * self.width
        cell = jnp.asarray(action, jnp.int32).reshape(())
        goal = jnp.where(state.time == 0, cell, state.goal)
        start = jnp.where(state.time == 1, jnp.where(cell == goal, (cell + 1) % cells, cell), state.start)
        wall = (state.time >= 2) & (cell != goal) & (cell != start)
        wall_map = state.wall_map.at[cell].set(state.wall_map[cell] | wall)
        time = state.time + 1
        built = EditorState(wall_map, goal, start, time)
        terminated = time >= self.num_steps
        final_obs = self._obs(built)
        reset_state, reset_obs = self.reset(key, params)
        next_state = jax.tree.map(lambda r, s: jnp.where(terminated, r, s), reset_state, built)
        return next_state, Timestep(obs=jnp.where(terminated, reset_obs, final_obs), reward=jnp.zeros((), jnp.float32),
                                    terminated=terminated, truncated=jnp.zeros((), bool), final_obs=final_obs, info={})

    def observation_space(self, params):
        dim = 3 * self.height * self.width + self.num_steps
        return Box(low=np.zeros(dim, np.float32), high=np.ones(dim, np.float32), shape=(dim,))

    def action_space(self, params):
        return Discrete(self.height * self.width)

    def max_episode_steps(self, params):
        return self.num_steps


def level_from_editor_obs(obs: jax.Array, height: int, width: int) -> Level:
    """The level in a finished editor observation ``[3 * H * W + steps]`` (start direction 0, facing right)."""
    cells = height * width
    to_xy = lambda c: jnp.stack([c % width, c // width]).astype(jnp.int32)  # noqa: E731
    return Level(obs[:cells].reshape(height, width) > 0.5, to_xy(jnp.argmax(obs[cells:2 * cells])),
                 to_xy(jnp.argmax(obs[2 * cells:3 * cells])), jnp.zeros((), jnp.int32))
