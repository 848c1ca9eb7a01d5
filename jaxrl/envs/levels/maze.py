"""A partially observable grid maze whose levels are environment parameters (after minimax / JaxUED).

A level (:class:`Level`, the env's ``params``) is a wall map ``[H, W]`` (at
most 13 x 13; cells outside the grid count as walls), the agent's start
position and direction and the goal position. Positions are ``(x, y)`` with
``wall_map[y, x]``; directions are 0 right (+x), 1 down (+y), 2 left (-x),
3 up (-y), so turning right is ``dir + 1``.

Actions: 0 turn left, 1 turn right, 2 move forward (blocked by walls and the
border). Reaching the goal terminates the episode with reward
``1 - 0.9 * t / max_steps`` (``t`` the steps taken, including this one), the
sparse time-discounted reward of minimax and JaxUED; ``max_steps`` ends it by
truncation with reward 0. ``step`` auto-resets to the same level, so a vector
of envs with one level each keeps playing its level until the curriculum
replaces it.

The agent sees an egocentric ``view_size x view_size`` window (itself at the
bottom centre, looking up the window) with a wall and a goal channel, plus its
direction one-hot: a flat ``[view_size * view_size * 2 + 4]`` observation.
Walls do not occlude the view.

Curricula use :func:`generate_level` (random walls, start and goal),
:func:`mutate_level` (ACCEL's edits) and :data:`HELD_OUT_MAZES` (hand-designed
mazes for zero-shot evaluation, see :func:`held_out_levels`).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.envs.core import Box, Discrete, Env, auto_reset
from jaxrl.types import Timestep

# Unit steps of directions 0 right, 1 down, 2 left, 3 up as (dx, dy).
DIR_VEC = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]], np.int32)
NUM_ACTIONS = 3  # turn left, turn right, forward


class Level(NamedTuple):
    """One maze (the env's params); add a leading ``[N]`` to every leaf for a batch of levels.

    Attributes:
        wall_map: ``[H, W]`` bool, True where a wall is.
        goal_pos: ``[2]`` int32 ``(x, y)``.
        agent_pos: ``[2]`` int32 ``(x, y)``, the start.
        agent_dir: ``[]`` int32 in ``0..3``, the start direction.
    """

    wall_map: jax.Array
    goal_pos: jax.Array
    agent_pos: jax.Array
    agent_dir: jax.Array


class MazeState(NamedTuple):
    agent_pos: jax.Array  # [2] int32 (x, y)
    agent_dir: jax.Array  # [] int32
    time: jax.Array  # [] int32, steps taken in this episode


def is_wall(wall_map: jax.Array, pos: jax.Array) -> jax.Array:
    """Wall at ``pos [..., 2]`` (cells outside the grid are walls) -> bool ``[...]``."""
    height, width = wall_map.shape
    x, y = pos[..., 0], pos[..., 1]
    inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
    return ~inside | wall_map[jnp.clip(y, 0, height - 1), jnp.clip(x, 0, width - 1)]


def view_cells(agent_pos: jax.Array, agent_dir: jax.Array, view_size: int) -> jax.Array:
    """Grid cells of the egocentric window, ``[view_size, view_size, 2]`` ``(x, y)``.

    Row 0 is farthest ahead, the last row is the agent's own row; columns run
    from the agent's left to its right, the agent in the middle column.
    """
    forward = jnp.asarray(DIR_VEC)[agent_dir]
    right = jnp.asarray(DIR_VEC)[(agent_dir + 1) % 4]
    rows = jnp.arange(view_size)
    ahead = (view_size - 1 - rows)[:, None, None]  # steps forward
    side = (jnp.arange(view_size) - view_size // 2)[None, :, None]  # steps to the right
    return agent_pos + ahead * forward + side * right


def observe(level: Level, agent_pos: jax.Array, agent_dir: jax.Array, view_size: int) -> jax.Array:
    """Flat observation ``[view_size * view_size * 2 + 4]``: wall and goal channels, then direction one-hot."""
    cells = view_cells(agent_pos, agent_dir, view_size)
    walls = is_wall(level.wall_map, cells)
    goal = jnp.all(cells == level.goal_pos, axis=-1)
    image = jnp.stack([walls, goal], axis=-1).astype(jnp.float32)
    return jnp.concatenate([image.reshape(-1), jax.nn.one_hot(agent_dir, 4, dtype=jnp.float32)])


def episode_reward(steps: jax.Array, max_steps: int) -> jax.Array:
    """Reward for reaching the goal after ``steps`` steps: ``1 - 0.9 * steps / max_steps``."""
    return 1.0 - 0.9 * steps.astype(jnp.float32) / max_steps


class Maze(Env):
    """The maze above; ``params`` is a :class:`Level` (``default_params``: an open room)."""

    name = "Maze"

    def __init__(self, height: int = 13, width: int = 13, view_size: int = 5, max_steps: int = 250):
        self.height, self.width = int(height), int(width)
        self.view_size = int(view_size)
        self.max_steps = int(max_steps)

    @property
    def default_params(self) -> Level:
        return open_room(self.height, self.width)

    def reset(self, key, params: Level):
        state = MazeState(params.agent_pos.astype(jnp.int32), params.agent_dir.astype(jnp.int32), jnp.zeros((), jnp.int32))
        return state, observe(params, state.agent_pos, state.agent_dir, self.view_size)

    def step(self, key, state: MazeState, action, params: Level):
        action = jnp.asarray(action).reshape(())
        turn = jnp.where(action == 0, -1, jnp.where(action == 1, 1, 0))
        agent_dir = (state.agent_dir + turn) % 4
        target = state.agent_pos + jnp.asarray(DIR_VEC)[state.agent_dir]
        moves = (action == 2) & ~is_wall(params.wall_map, target)
        agent_pos = jnp.where(moves, target, state.agent_pos)
        time = state.time + 1
        terminated = jnp.all(agent_pos == params.goal_pos)
        truncated = (time >= self.max_steps) & ~terminated
        reward = jnp.where(terminated, episode_reward(time, self.max_steps), 0.0).astype(jnp.float32)
        final_obs = observe(params, agent_pos, agent_dir, self.view_size)
        done = terminated | truncated
        next_state, obs = auto_reset(done, self.reset(key, params), (MazeState(agent_pos, agent_dir, time), final_obs))
        return next_state, Timestep(obs=obs, reward=reward, terminated=terminated, truncated=truncated,
                                    final_obs=final_obs, info={})

    def observation_space(self, params):
        dim = self.view_size * self.view_size * 2 + 4
        return Box(low=np.zeros(dim, np.float32), high=np.ones(dim, np.float32), shape=(dim,))

    def action_space(self, params):
        return Discrete(NUM_ACTIONS)

    def max_episode_steps(self, params):
        return self.max_steps


# ----------------------------------------------------------------------------- generator and mutator


def open_room(height: int = 13, width: int = 13) -> Level:
    """No walls, start at ``(1, 1)`` facing right, goal at ``(width - 2, height - 2)``."""
    return Level(jnp.zeros((height, width), bool), jnp.asarray([width - 2, height - 2], jnp.int32),
                 jnp.asarray([1, 1], jnp.int32), jnp.asarray(0, jnp.int32))


def generate_level(key, height: int = 13, width: int = 13, num_walls: int = 25) -> Level:
    """A random level: ``num_walls`` distinct wall cells, a goal and a start on free cells.

    One permutation of all cells gives walls, goal and start at once, so the
    three never overlap (the level may still be unsolvable: curricula find out).

    Returns:
        :class:`Level` with ``wall_map [height, width]``.
    """
    if not 0 <= num_walls <= height * width - 2:
        raise ValueError(f"num_walls must be in [0, {height * width - 2}], got {num_walls}")
    key_cells, key_dir = jax.random.split(key)
    cells = jax.random.permutation(key_cells, height * width)
    wall_map = jnp.zeros(height * width, bool).at[cells[:num_walls]].set(True).reshape(height, width)
    to_xy = lambda c: jnp.stack([c % width, c // width]).astype(jnp.int32)  # noqa: E731
    return Level(wall_map, to_xy(cells[num_walls]), to_xy(cells[num_walls + 1]),
                 jax.random.randint(key_dir, (), 0, 4, jnp.int32))


def _random_free_cell(key, level: Level, exclude: jax.Array) -> jax.Array:
    """A uniformly random cell ``[2]`` that is neither a wall nor ``exclude [2]`` (stays put if none)."""
    height, width = level.wall_map.shape
    flat = jnp.arange(height * width)
    xy = jnp.stack([flat % width, flat // width], axis=-1)
    free = ~level.wall_map.reshape(-1) & ~jnp.all(xy == exclude, axis=-1)
    cell = jax.random.categorical(key, jnp.where(free, 0.0, -jnp.inf))
    return xy[cell].astype(jnp.int32)


def mutate_once(key, level: Level) -> Level:
    """One ACCEL edit, uniformly one of: flip a wall, move the goal, move the start.

    A wall flip at the start or goal cell is a no-op, so edits keep start and
    goal off walls. The moved start keeps its direction.
    """
    height, width = level.wall_map.shape
    key_kind, key_cell, key_move = jax.random.split(key, 3)
    kind = jax.random.randint(key_kind, (), 0, 3)
    cell = jax.random.randint(key_cell, (2,), 0, jnp.asarray([width, height]))
    occupied = jnp.all(cell == level.goal_pos) | jnp.all(cell == level.agent_pos)
    flip = (kind == 0) & ~occupied
    wall_map = level.wall_map.at[cell[1], cell[0]].set(level.wall_map[cell[1], cell[0]] ^ flip)
    goal = jnp.where(kind == 1, _random_free_cell(key_move, level, level.agent_pos), level.goal_pos)
    start = jnp.where(kind == 2, _random_free_cell(key_move, level, level.goal_pos), level.agent_pos)
    return Level(wall_map, goal, start, level.agent_dir)


def mutate_level(key, level: Level, num_edits: int = 8) -> Level:
    """``num_edits`` successive :func:`mutate_once` edits of one level (ACCEL's mutator)."""
    return jax.lax.fori_loop(0, num_edits, lambda i, lv: mutate_once(jax.random.fold_in(key, i), lv), level)


# ----------------------------------------------------------------------------- held-out mazes

# '#' wall, '.' free, 'G' goal, start '>' 'v' '<' '^' (direction 0..3). Smaller mazes are padded with walls.
HELD_OUT_MAZES: dict[str, tuple[str, ...]] = {
    "OpenRoom": (
        ".............",
        ".>...........",
        ".............",
        ".............",
        ".............",
        ".............",
        ".............",
        ".............",
        ".............",
        ".............",
        ".............",
        "...........G.",
        ".............",
    ),
    "SmallCorridor": (
        "#############",
        "#############",
        "#############",
        "#############",
        "#############",
        "#.#.#.#.#.###",
        "#>.........G#",
        "#.#.#.#.#.###",
        "#############",
        "#############",
        "#############",
        "#############",
        "#############",
    ),
    "LargeCorridor": (
        "#############",
        "#############",
        "#.#.#.#.#.#.#",
        "#.#.#.#.#.#.#",
        "#.#.#.#.#.#.#",
        "#.#.#.#.#.#.#",
        ">...........G",
        "#.#.#.#.#.#.#",
        "#.#.#.#.#.#.#",
        "#.#.#.#.#.#.#",
        "#.#.#.#.#.#.#",
        "#############",
        "#############",
    ),
    "FourRooms": (
        "......#......",
        "......#......",
        "..>..........",
        "......#......",
        "......#......",
        "......#......",
        "###.#####.###",
        "......#......",
        "......#......",
        "......#......",
        ".............",
        "......#...G..",
        "......#......",
    ),
    "SixteenRooms": (
        "...#..#..#...",
        ".>.......#...",
        "...#..#..#...",
        "#.####.##.#.#",
        "...#.....#...",
        "......#..#...",
        "##.#.##.###.#",
        "...#..#......",
        "...#..#..#...",
        "#.####.##.#.#",
        "......#..#...",
        "...#..#....G.",
        "...#..#..#...",
    ),
    "Spiral": (
        ">............",
        "############.",
        "...........#.",
        ".#########.#.",
        ".#.......#.#.",
        ".#.#####.#.#.",
        ".#.#G..#.#.#.",
        ".#.#.###.#.#.",
        ".#.#.....#.#.",
        ".#.#######.#.",
        ".#.........#.",
        ".###########.",
        ".............",
    ),
    "Labyrinth": (
        ">..#...#.....",
        "##.#.#.#.###.",
        ".#.#.#.#.#...",
        ".#.#.###.#.#.",
        "...#.#...#.#.",
        ".###.#.###.##",
        "...#.#G#.#...",
        "##.#.#.#.###.",
        "...#.......#.",
        ".###########.",
        ".......#...#.",
        "######.#.#.#.",
        ".........#...",
    ),
}


def level_from_strings(rows: tuple[str, ...], height: int = 13, width: int = 13) -> Level:
    """Parses a drawn maze (see :data:`HELD_OUT_MAZES`), padding it with walls to ``[height, width]``."""
    if len(rows) > height or any(len(r) > width for r in rows):
        raise ValueError(f"maze of {len(rows)} x {max(len(r) for r in rows)} does not fit {height} x {width}")
    wall_map = np.ones((height, width), bool)
    goal = start = None
    direction = 0
    for y, row in enumerate(rows):
        for x, c in enumerate(row):
            wall_map[y, x] = c == "#"
            if c == "G":
                goal = (x, y)
            elif c in ">v<^":
                start, direction = (x, y), ">v<^".index(c)
    if goal is None or start is None:
        raise ValueError("a maze needs one goal 'G' and one start ('>', 'v', '<' or '^')")
    return Level(jnp.asarray(wall_map), jnp.asarray(goal, jnp.int32), jnp.asarray(start, jnp.int32), jnp.asarray(direction, jnp.int32))


def held_out_levels(height: int = 13, width: int = 13) -> tuple[tuple[str, ...], Level]:
    """``(names, levels)``: every held-out maze, leaves with a leading ``[len(names)]``."""
    names = tuple(HELD_OUT_MAZES)
    levels = [level_from_strings(HELD_OUT_MAZES[n], height, width) for n in names]
    return names, jax.tree.map(lambda *xs: jnp.stack(xs), *levels)


def shortest_path_length(level: Level) -> int:
    """Fewest forward moves from start to goal ignoring turns (breadth-first search on the host); -1 if unreachable."""
    wall_map = np.asarray(level.wall_map)
    height, width = wall_map.shape
    start, goal = tuple(int(v) for v in np.asarray(level.agent_pos)), tuple(int(v) for v in np.asarray(level.goal_pos))
    frontier, seen, steps = [start], {start}, 0
    while frontier:
        if goal in frontier:
            return steps
        nxt = []
        for x, y in frontier:
            for dx, dy in DIR_VEC:
                p = (x + int(dx), y + int(dy))
                if 0 <= p[0] < width and 0 <= p[1] < height and not wall_map[p[1], p[0]] and p not in seen:
                    seen.add(p)
                    nxt.append(p)
        frontier, steps = nxt, steps + 1
    return -1


def render_level(level: Level, cell: int = 8) -> np.ndarray:
    """An RGB image ``[H * cell, W * cell, 3]`` uint8 of one level: walls grey, goal green, start red."""
    wall_map = np.asarray(level.wall_map)
    image = np.where(wall_map[..., None], np.array([100, 100, 100], np.uint8), np.array([0, 0, 0], np.uint8))
    gx, gy = np.asarray(level.goal_pos)
    ax, ay = np.asarray(level.agent_pos)
    image[gy, gx] = (0, 200, 0)
    image[ay, ax] = (220, 40, 40)
    return np.kron(image, np.ones((cell, cell, 1), np.uint8)).astype(np.uint8)


def render_trajectory(level: Level, positions: np.ndarray, cell: int = 8) -> np.ndarray:
    """:func:`render_level` with the cells of ``positions`` (``[T, 2]`` (x, y), in order) drawn in blue,
    darker the later they were visited; start and goal keep their colours."""
    image = render_level(level, 1).astype(np.float32)
    positions = np.asarray(positions).reshape(-1, 2)
    for t, (x, y) in enumerate(positions):
        shade = 0.35 + 0.65 * (t + 1) / max(len(positions), 1)
        image[y, x] = (60 * (1 - shade), 120 * (1 - shade) + 60, 255 * shade)
    gx, gy = np.asarray(level.goal_pos)
    ax, ay = np.asarray(level.agent_pos)
    image[gy, gx] = (0, 200, 0)
    image[ay, ax] = (220, 40, 40)
    return np.kron(image.astype(np.uint8), np.ones((cell, cell, 1), np.uint8)).astype(np.uint8)
