"""Environments: one protocol, adapters for gymnax and brax, wrappers, probes, registry."""
from jaxrl.envs.core import Box, Discrete, Env, Wrapper
from jaxrl.envs.deceptive_maze import DeceptiveMaze
from jaxrl.envs.goal_grid import GoalGrid
from jaxrl.envs.levels.gridworld import HAND_DESIGNED, HAND_DESIGNED_SPECS, GridWorld
from jaxrl.envs.levels.maze import Maze
from jaxrl.envs.registry import UnknownEnvironmentError, make, make_raw, register, registered_envs
from jaxrl.envs.wrappers import (
    EpisodeStatistics,
    FlattenObservation,
    NormalizeObservation,
    RescaleAction,
    RunningMeanStd,
    VecEnv,
    find_obs_stats,
    make_vec_env,
    unflattened_observation_shape,
)

register("DeceptiveMaze-v0", DeceptiveMaze)  # novelty search's deceptive navigation task
register("GoalGrid-v0", GoalGrid)  # BARFI's reward-design grid world (good and misspecified heuristics)
register("Maze", Maze)  # partially observable grid maze with designable levels (curricula)
for _level in HAND_DESIGNED:  # LPG's hand-designed grid worlds (GridWorld-dense ... GridWorld-long_dense)
    register(f"GridWorld-{_level}", lambda _l=_level, **kw: GridWorld(**{"level": _l, "max_steps": HAND_DESIGNED_SPECS[_l][1], **kw}))

__all__ = [
    "Box", "DeceptiveMaze", "Discrete", "Env", "Wrapper", "UnknownEnvironmentError", "make", "make_raw", "register", "registered_envs",
    "EpisodeStatistics", "FlattenObservation", "NormalizeObservation", "RescaleAction", "RunningMeanStd",
    "VecEnv", "find_obs_stats", "make_vec_env", "unflattened_observation_shape",
]
