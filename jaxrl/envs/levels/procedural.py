"""Procedurally generated maze levels on the host (numpy): held-out sets and level datasets.

* :func:`perfect_maze`: a maze with exactly one path between any two free cells (randomised
  depth-first search on the odd-coordinate lattice, as minimax's ``PerfectMaze`` and dcd's MST mazes).
* :func:`cave_level`: a cave-like layout from a cellular automaton (random fill, then the 4-5
  smoothing rule), reduced to its largest connected region: the target distribution of
  jaxrl's DRED dataset (DRED's own dataset is cave-escape MiniGrid layouts made with wave
  function collapse; this generator is jaxrl's local, download-free stand-in).

Both place the start and the goal on free cells of one connected region, the goal at least
``min_distance`` forward moves away when the region allows, and return a
:class:`~jaxrl.envs.levels.maze.Level` of numpy arrays (:func:`level_set` stacks them on the device). Sets are drawn from a fixed seed, so they are the same
on every machine.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.envs.levels.maze import DIR_VEC, Level


def _distances(free: np.ndarray, start: tuple[int, int]) -> np.ndarray:
    """Breadth-first forward-move distances ``[H, W]`` from ``start = (x, y)`` over ``free`` cells (-1: unreachable)."""
    height, width = free.shape
    dist = np.full((height, width), -1, np.int64)
    dist[start[1], start[0]] = 0
    frontier = [start]
    while frontier:
        nxt = []
        for x, y in frontier:
            for dx, dy in DIR_VEC:
                px, py = x + int(dx), y + int(dy)
                if 0 <= px < width and 0 <= py < height and free[py, px] and dist[py, px] < 0:
                    dist[py, px] = dist[y, x] + 1
                    nxt.append((px, py))
        frontier = nxt
    return dist


def place_start_and_goal(rng: np.random.Generator, wall_map: np.ndarray, min_distance: int) -> Level:
    """A :class:`Level` on ``wall_map [H, W]`` with a random start (and direction) and a goal in its region,
    at least ``min_distance`` moves away if any cell is (else the farthest cell)."""
    free_cells = np.argwhere(~wall_map)  # (y, x)
    y, x = free_cells[rng.integers(len(free_cells))]
    dist = _distances(~wall_map, (int(x), int(y)))
    far = np.argwhere(dist >= min_distance)
    gy, gx = far[rng.integers(len(far))] if len(far) else np.unravel_index(np.argmax(dist), dist.shape)
    return Level(wall_map, np.asarray([gx, gy], np.int32), np.asarray([x, y], np.int32), np.asarray(rng.integers(4), np.int32))


def perfect_maze_walls(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """``[H, W]`` bool walls of a perfect maze: passages on odd coordinates carved by randomised DFS."""
    wall_map = np.ones((height, width), bool)
    cells_y, cells_x = (height - 1) // 2, (width - 1) // 2
    stack = [(int(rng.integers(cells_x)), int(rng.integers(cells_y)))]
    seen = {stack[0]}
    wall_map[2 * stack[0][1] + 1, 2 * stack[0][0] + 1] = False
    while stack:
        cx, cy = stack[-1]
        options = [(cx + dx, cy + dy) for dx, dy in DIR_VEC.tolist()
                   if 0 <= cx + dx < cells_x and 0 <= cy + dy < cells_y and (cx + dx, cy + dy) not in seen]
        if not options:
            stack.pop()
            continue
        nx, ny = options[rng.integers(len(options))]
        wall_map[cy + ny + 1, cx + nx + 1] = False  # the wall between the two cells
        wall_map[2 * ny + 1, 2 * nx + 1] = False
        seen.add((nx, ny))
        stack.append((nx, ny))
    return wall_map


def perfect_maze(rng: np.random.Generator, height: int = 13, width: int = 13, min_distance: int = 10) -> Level:
    """One perfect maze of ``height x width`` (odd sizes use the whole grid) with start and goal."""
    return place_start_and_goal(rng, perfect_maze_walls(rng, height, width), min_distance)


def _largest_region(free: np.ndarray) -> np.ndarray:
    """``free`` reduced to its largest 4-connected region."""
    best, seen = np.zeros_like(free), np.zeros_like(free)
    for y, x in np.argwhere(free):
        if seen[y, x]:
            continue
        region = _distances(free, (int(x), int(y))) >= 0
        seen |= region
        if region.sum() > best.sum():
            best = region
    return best


def cave_walls(rng: np.random.Generator, height: int, width: int, fill: float = 0.45, steps: int = 4) -> np.ndarray:
    """``[H, W]`` bool walls of a cellular-automaton cave: each cell starts a wall with probability ``fill``; each
    step a cell becomes a wall when 5 or more of its 3 x 3 neighbourhood (itself included, outside = wall) are walls."""
    walls = rng.random((height, width)) < fill
    for _ in range(steps):
        padded = np.pad(walls, 1, constant_values=True)
        count = sum(padded[1 + dy:1 + dy + height, 1 + dx:1 + dx + width] for dy in (-1, 0, 1) for dx in (-1, 0, 1))
        walls = count >= 5
    return ~_largest_region(~walls)


def cave_level(rng: np.random.Generator, height: int = 13, width: int = 13, min_distance: int = 6) -> Level:
    """One cave (at least 12 free cells: redrawn until it has them) with start and goal in its region."""
    while True:
        walls = cave_walls(rng, height, width)
        if (~walls).sum() >= 12:
            return place_start_and_goal(rng, walls, min_distance)


def stack_levels(levels: list[Level]) -> Level:
    """A list of same-shaped levels as one batch of device arrays, leaves ``[N, ...]``."""
    return jax.tree.map(lambda *xs: jnp.asarray(np.stack(xs)), *levels)


def level_set(kind: str, count: int, seed: int, height: int = 13, width: int = 13) -> Level:
    """``count`` levels of ``kind`` (``perfect`` or ``cave``) from ``seed``, leaves ``[count, ...]``."""
    rng = np.random.default_rng(seed)
    make = {"perfect": perfect_maze, "cave": cave_level}[kind]
    return stack_levels([make(rng, height, width) for _ in range(count)])
