"""Procedural mazes: perfect mazes are trees of passages, caves are one connected region, and
start and goal are valid and reachable in every held-out set."""
import jax
import numpy as np

from jaxrl.envs.levels.maze import shortest_path_length
from jaxrl.envs.levels.procedural import cave_walls, level_set, perfect_maze_walls


def test_perfect_maze_has_exactly_one_path_between_free_cells():
    walls = perfect_maze_walls(np.random.default_rng(3), 13, 13)
    free = ~walls
    cells = int(free.sum())
    edges = int((free[:, 1:] & free[:, :-1]).sum() + (free[1:] & free[:-1]).sum())
    assert edges == cells - 1  # a connected graph with cells - 1 edges is a tree: exactly one path
    assert walls[0].all() and walls[-1].all() and walls[:, 0].all() and walls[:, -1].all()


def test_cave_is_one_connected_region():
    from jaxrl.envs.levels.procedural import _largest_region

    walls = cave_walls(np.random.default_rng(5), 13, 13)
    np.testing.assert_array_equal(_largest_region(~walls), ~walls)


def test_every_procedural_level_is_valid_and_solvable():
    for kind, size in (("perfect", 13), ("perfect", 25), ("cave", 13)):
        levels = level_set(kind, 5, seed=11, height=size, width=size)
        for i in range(5):
            level = jax.tree.map(lambda x: x[i], levels)
            walls = np.asarray(level.wall_map)
            (gx, gy), (ax, ay) = np.asarray(level.goal_pos), np.asarray(level.agent_pos)
            assert not walls[gy, gx] and not walls[ay, ax] and (gx, gy) != (ax, ay)
            assert shortest_path_length(level) > 0
