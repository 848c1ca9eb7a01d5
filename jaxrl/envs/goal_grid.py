"""GoalGrid-v0: the grid world of BARFI's reward-design experiments (Gupta et al. 2023), on a discrete grid.

The reference task is a unit square the agent crosses in moves of 0.2 from (0.125, 0.125) to a goal region
[0.75, 0.99]^2 that pays +100 and ends the episode, with -0.1 a move, a random action 10% of the time and 50
moves at most. Here the square is an ``size x size`` grid (default 10: a move is one cell, 0.1 of the side)::

     y
     9 . . . . . . . . G G      G: goal cells (x, y >= goal_from): +100, terminal
     8 . . . . . . . . G G
     5 . . . . C C . . . .      C: the centre cells (4 <= x, y <= 5), where the misspecified
     4 . . . . C C . . . .         heuristic of :mod:`jaxrl.bilevel.tasks` pays +50 a step
     1 . S . . . . . . . .      S: start (1, 1)
       0 1 2 3 4 5 6 7 8 9  x

Actions 0..3 move up, right, down, left (the reference's order); a move into the border leaves the agent where
it is. Observations are the position scaled to [0, 1]^2, ``[2]``. The 50-step limit is a truncation.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.envs.core import Box, Discrete, Env, auto_reset
from jaxrl.types import Timestep

MOVES = np.array([[0, 1], [1, 0], [0, -1], [-1, 0]], np.int32)  # up, right, down, left


class GoalGridState(NamedTuple):
    position: jax.Array  # [2] int32 cell (x, y)
    time: jax.Array  # steps taken in this episode


class GoalGridParams(NamedTuple):
    goal_reward: jax.Array  # paid on entering a goal cell (the episode ends)
    step_reward: jax.Array  # paid every step
    slip_prob: jax.Array  # probability that a uniformly random action replaces the chosen one


class GoalGrid(Env):
    """A ``size x size`` grid: start ``(1, 1)``, goal cells ``x, y >= goal_from``, ``max_steps`` steps."""

    name = "GoalGrid-v0"

    def __init__(self, size: int = 10, max_steps: int = 50, start: tuple = (1, 1), goal_from: int = 8):
        if not (0 <= goal_from < size and all(0 <= s < size for s in start)):
            raise ValueError(f"GoalGrid: start {start} and goal_from {goal_from} must lie on a {size}x{size} grid")
        self.size, self.max_steps, self.goal_from = int(size), int(max_steps), int(goal_from)
        self.start = np.asarray(start, np.int32)

    @property
    def default_params(self) -> GoalGridParams:
        return GoalGridParams(jnp.float32(100.0), jnp.float32(-0.1), jnp.float32(0.1))

    def observe(self, position: jax.Array) -> jax.Array:
        """``[2]`` int cell -> ``[2]`` float32 in [0, 1]."""
        return position.astype(jnp.float32) / (self.size - 1)

    def at_goal(self, position: jax.Array) -> jax.Array:
        return jnp.all(position >= self.goal_from, axis=-1)

    def reset(self, key, params):
        position = jnp.asarray(self.start)
        return GoalGridState(position, jnp.zeros((), jnp.int32)), self.observe(position)

    def step(self, key, state, action, params):
        key_slip, key_random = jax.random.split(key)
        action = jnp.where(jax.random.uniform(key_slip) < params.slip_prob,
                           jax.random.randint(key_random, (), 0, 4), jnp.asarray(action, jnp.int32).reshape(()))
        position = jnp.clip(state.position + jnp.asarray(MOVES)[action], 0, self.size - 1)
        terminated = self.at_goal(position)
        reward = params.step_reward + jnp.where(terminated, params.goal_reward, 0.0)
        time = state.time + 1
        truncated = (time >= self.max_steps) & ~terminated
        done = terminated | truncated
        final_obs = self.observe(position)
        next_state, obs = auto_reset(done, self.reset(key, params), (GoalGridState(position, time), final_obs))
        return next_state, Timestep(obs=obs, reward=reward.astype(jnp.float32),
                                    terminated=terminated, truncated=truncated, final_obs=final_obs, info={})

    def observation_space(self, params):
        return Box(low=np.zeros(2, np.float32), high=np.ones(2, np.float32), shape=(2,))

    def action_space(self, params):
        return Discrete(4)

    def max_episode_steps(self, params):
        return self.max_steps
