"""Reward-design tasks: an environment, its primary reward, and auxiliary (heuristic) rewards that help or mislead.

BARFI's experiments (Gupta et al. 2023; the reference code's ``CartPoleGoodAux`` / ``CartPoleBadAuxDebug``,
``Maze_goodreward`` / ``Maze_badreward``, ``MCSenseSparseBangAux``) give each task a designer's heuristic reward
``r_aux(s, a)`` beside the task's primary reward. A heuristic is a pure function

    aux(obs [D], action [], next_obs [D], terminated []) -> []

of the step the agent took (``next_obs`` is the observation the step led to, before any auto-reset); every
heuristic pays 0 on a terminal step, as the reference's do. ``good`` encodes a behaviour that helps on the
primary reward; ``misspecified`` rewards a behaviour that hurts it.

* ``CartPole-v1``: good, +1 when the action agrees with a PD controller on the pole angle (push towards the side
  the pole leans to, with its angular velocity as the derivative term); misspecified, -5 when it agrees and +1
  when it does not (the reference's ``CartPoleBadAuxDebug``).
* ``MountainCar-v0`` (gymnax: -1 a step) and ``MountainCarSparse-v0`` (the reference's primary reward: 1 at the
  goal, 0 otherwise): good, +1 for accelerating in the direction of the velocity (energy pumping: the bang-bang
  heuristic), -1 otherwise; misspecified, its negation (rewards braking).
* ``GoalGrid-v0``: good, minus the squared distance to the goal region's centre (a dense pull towards the goal);
  misspecified, +50 a step on the centre cells (a distractor worth more than the goal's +100 over an episode).

Each task also gives a grid of states (``state_grid``) on which the learned reward is drawn.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax.numpy as jnp
import numpy as np

HEURISTICS = ("good", "misspecified")


class StateGrid(NamedTuple):
    """States laid out on a 2-D grid for drawing a function of the state.

    Attributes:
        obs: ``[ny * nx, D]`` observations, row-major over ``(y, x)``.
        shape: ``(ny, nx)``.
        extent: ``(x_min, x_max, y_min, y_max)`` of the drawn axes.
        labels: ``(x label, y label)``.
    """

    obs: np.ndarray
    shape: tuple
    extent: tuple
    labels: tuple


class RewardTask(NamedTuple):
    """An environment name, its heuristics by name, and the states on which to draw the learned reward."""

    env: str
    heuristics: dict
    state_grid: Callable  # () -> StateGrid


def _agreement(agrees, on_agree: float, otherwise: float, terminated):
    return jnp.where(terminated, 0.0, jnp.where(agrees, on_agree, otherwise)).astype(jnp.float32)


# ------------------------------------------------------------------------------------------------ CartPole

CARTPOLE_TAU = 0.02  # gymnax's integration step: the PD controller's derivative term is the angle's change a step


def cartpole_pd_action(obs: jnp.ndarray) -> jnp.ndarray:
    """The reference's PD controller on the pole angle (P = D = 0.1 on the angle and its change over a step):
    push right (1) when ``theta + tau * theta_dot > 0``; ``[4] -> []`` int32."""
    return (obs[2] + CARTPOLE_TAU * obs[3] > 0).astype(jnp.int32)


def cartpole_good(obs, action, next_obs, terminated):
    return _agreement(action == cartpole_pd_action(obs), 1.0, 0.0, terminated)


def cartpole_misspecified(obs, action, next_obs, terminated):
    return _agreement(action == cartpole_pd_action(obs), -5.0, 1.0, terminated)


def cartpole_grid(n: int = 41) -> StateGrid:
    """Pole angle x angular velocity, cart at rest in the centre."""
    theta, theta_dot = np.linspace(-0.21, 0.21, n), np.linspace(-2.0, 2.0, n)
    tt, dd = np.meshgrid(theta, theta_dot)
    obs = np.stack([np.zeros(tt.size), np.zeros(tt.size), tt.ravel(), dd.ravel()], -1).astype(np.float32)
    return StateGrid(obs, (n, n), (theta[0], theta[-1], theta_dot[0], theta_dot[-1]), ("pole angle", "pole angular velocity"))


# --------------------------------------------------------------------------------------------- MountainCar


def _pumps(action, next_obs):
    """Accelerating with the velocity: push left (0) moving left, push right (2) moving right."""
    velocity = next_obs[1]
    return ((velocity < 0) & (action == 0)) | ((velocity > 0) & (action == 2))


def mountaincar_good(obs, action, next_obs, terminated):
    return _agreement(_pumps(action, next_obs), 1.0, -1.0, terminated)


def mountaincar_misspecified(obs, action, next_obs, terminated):
    return _agreement(_pumps(action, next_obs), -1.0, 1.0, terminated)


def mountaincar_grid(n: int = 41) -> StateGrid:
    position, velocity = np.linspace(-1.2, 0.6, n), np.linspace(-0.07, 0.07, n)
    pp, vv = np.meshgrid(position, velocity)
    obs = np.stack([pp.ravel(), vv.ravel()], -1).astype(np.float32)
    return StateGrid(obs, (n, n), (position[0], position[-1], velocity[0], velocity[-1]), ("position", "velocity"))


# ------------------------------------------------------------------------------------------------ GoalGrid

GRID_SIZE = 10
GOAL_CENTRE = (8.5 / 9.0, 8.5 / 9.0)  # the centre of the goal cells 8..9 in observation coordinates
CENTRE_CELLS = (4, 5)  # the misspecified heuristic's cells, on both axes
DISTRACTOR_REWARD = 50.0


def goalgrid_good(obs, action, next_obs, terminated):
    distance = (next_obs[0] - GOAL_CENTRE[0]) ** 2 + (next_obs[1] - GOAL_CENTRE[1]) ** 2
    return jnp.where(terminated, 0.0, -distance).astype(jnp.float32)


def goalgrid_misspecified(obs, action, next_obs, terminated):
    cell = jnp.round(next_obs * (GRID_SIZE - 1))
    centre = jnp.all((cell >= CENTRE_CELLS[0]) & (cell <= CENTRE_CELLS[1]))
    return _agreement(centre, DISTRACTOR_REWARD, 0.0, terminated)


def goalgrid_grid() -> StateGrid:
    cells = np.arange(GRID_SIZE)
    xx, yy = np.meshgrid(cells, cells)
    obs = np.stack([xx.ravel(), yy.ravel()], -1).astype(np.float32) / (GRID_SIZE - 1)
    return StateGrid(obs, (GRID_SIZE, GRID_SIZE), (-0.5, GRID_SIZE - 0.5, -0.5, GRID_SIZE - 0.5), ("x", "y"))


TASKS = {
    "CartPole-v1": RewardTask("CartPole-v1", {"good": cartpole_good, "misspecified": cartpole_misspecified}, cartpole_grid),
    "MountainCar-v0": RewardTask("MountainCar-v0", {"good": mountaincar_good, "misspecified": mountaincar_misspecified},
                                 mountaincar_grid),
    "MountainCarSparse-v0": RewardTask("MountainCarSparse-v0", {"good": mountaincar_good,
                                                                "misspecified": mountaincar_misspecified}, mountaincar_grid),
    "GoalGrid-v0": RewardTask("GoalGrid-v0", {"good": goalgrid_good, "misspecified": goalgrid_misspecified}, goalgrid_grid),
}
