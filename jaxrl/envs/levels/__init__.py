"""Environments with designable levels: a level is the env's params (see :mod:`jaxrl.curricula`)."""
from jaxrl.envs.levels.classic import (
    cartpole_held_out_levels,
    cartpole_level,
    generate_cartpole_level,
    mutate_cartpole_level,
)
from jaxrl.envs.levels.maze import (
    HELD_OUT_MAZES,
    Level,
    Maze,
    generate_level,
    held_out_levels,
    level_from_strings,
    mutate_level,
    open_room,
    render_level,
    shortest_path_length,
)

__all__ = [
    "cartpole_held_out_levels", "cartpole_level", "generate_cartpole_level", "mutate_cartpole_level",
    "HELD_OUT_MAZES", "Level", "Maze", "generate_level", "held_out_levels", "level_from_strings", "mutate_level",
    "open_room", "render_level", "shortest_path_length",
]
