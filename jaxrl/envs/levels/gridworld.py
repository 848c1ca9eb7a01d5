"""LPG's grid worlds: objects with rewards, termination and respawn probabilities; a level is the env's params.

"Discovering Reinforcement Learning Algorithms" (Oh et al. 2020, LPG) meta-trains
its update rule on small tabular grid worlds, and GROOVE (Jackson et al. 2023)
designs levels of the same family with a curriculum. A :class:`GridLevel` holds
everything that varies: walls (cells outside the level's ``size x size`` grid are
walls, so every level fits one static ``max_size`` board), the start, up to
``max_objects`` objects with their positions, rewards, termination and respawn
probabilities, the episode length and the agent *lifetime* (agent updates an
inner agent gets on this level, sampled with the level).

Dynamics, per step (the order of the GROOVE reference, ``environments/gridworld``):

1. the agent moves (0 up, 1 down, 2 left, 3 right, 4 stay; walls block);
2. an object present at the new cell is collected: its reward is paid and the
   episode terminates with its termination probability;
3. every absent object reappears (at its own cell) with its respawn probability
   (a collected one is absent from the next step on);
4. the episode is truncated at the level's ``max_steps``.

Observation: the tabular one-hot of (agent cell, which objects are present),
``[max_size**2 * 2**max_objects]``, what LPG's tabular agents see.

:data:`HAND_DESIGNED` are LPG's five training levels (dense, sparse, long,
longer, long_dense: the object tables and lengths of the paper's appendix as
the GROOVE reference codes them); :func:`generate_level` draws random levels of
the same space and :func:`mutate_level` is ACCEL's edit operator over it.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.envs.core import Box, Discrete, Env, auto_reset
from jaxrl.types import Timestep

# (dx, dy) of actions 0 up, 1 down, 2 left, 3 right, 4 stay; positions are (x, y) with wall_map[y, x].
MOVES = np.array([[0, -1], [0, 1], [-1, 0], [1, 0], [0, 0]], np.int32)
NUM_ACTIONS = 5


class GridLevel(NamedTuple):
    """One grid world (the env's params); add a leading ``[N]`` to every leaf for a batch.

    Attributes:
        wall_map: ``[S, S]`` bool (``S`` the env's ``max_size``); True at walls and outside the level's grid.
        start_pos: ``[2]`` int32 ``(x, y)``.
        obj_pos: ``[K, 2]`` int32 (``K`` the env's ``max_objects``).
        obj_reward: ``[K]`` float32, paid when the object is collected.
        obj_p_terminate: ``[K]`` float32, probability that collecting it ends the episode.
        obj_p_respawn: ``[K]`` float32, per-step probability that an absent object reappears.
        obj_active: ``[K]`` bool, which object slots the level uses.
        max_steps: ``[]`` int32, the episode's time limit (at most the env's ``max_steps``).
        lifetime: ``[]`` int32, agent updates an inner agent trains for on this level.
    """

    wall_map: jax.Array
    start_pos: jax.Array
    obj_pos: jax.Array
    obj_reward: jax.Array
    obj_p_terminate: jax.Array
    obj_p_respawn: jax.Array
    obj_active: jax.Array
    max_steps: jax.Array
    lifetime: jax.Array


class GridState(NamedTuple):
    pos: jax.Array  # [2] int32 (x, y)
    present: jax.Array  # [K] bool
    time: jax.Array  # [] int32, steps taken in this episode


def is_blocked(wall_map: jax.Array, pos: jax.Array) -> jax.Array:
    """Wall or off the board at ``pos [..., 2]`` -> bool ``[...]``."""
    size = wall_map.shape[0]
    x, y = pos[..., 0], pos[..., 1]
    inside = (x >= 0) & (x < size) & (y >= 0) & (y < size)
    return ~inside | wall_map[jnp.clip(y, 0, size - 1), jnp.clip(x, 0, size - 1)]


def observe(pos: jax.Array, present: jax.Array, max_size: int) -> jax.Array:
    """Tabular one-hot ``[max_size**2 * 2**K]`` of (cell, presence bits)."""
    bits = jnp.sum(present.astype(jnp.int32) * (2 ** jnp.arange(present.shape[0])))
    index = pos[1] * max_size + pos[0] + max_size * max_size * bits
    return jax.nn.one_hot(index, max_size * max_size * 2 ** present.shape[0], dtype=jnp.float32)


class GridWorld(Env):
    """The grid worlds above; ``params`` is a :class:`GridLevel` (``default_params``: LPG's ``dense`` level,
    or on a board too small for it a fixed random level).

    Args:
        max_size: side of the board every level fits in (LPG's levels need 13).
        max_objects: object slots (LPG's levels use at most 5).
        max_steps: static cap on a level's episode length (evaluation scans this many steps).
        level: the hand-designed level ``default_params`` holds (what ``train.py --env GridWorld-<level>`` plays).
    """

    name = "GridWorld"

    def __init__(self, max_size: int = 13, max_objects: int = 5, max_steps: int = 2000, level: str = "dense"):
        self.max_size, self.max_objects, self.max_steps = int(max_size), int(max_objects), int(max_steps)
        if level not in HAND_DESIGNED_SPECS:
            raise ValueError(f"unknown level {level!r}; choose from {', '.join(HAND_DESIGNED)}")
        self.level = level

    @property
    def default_params(self) -> GridLevel:
        size, _, objects, _ = HAND_DESIGNED_SPECS[self.level]
        if self.max_size >= size and self.max_objects >= len(objects):
            return hand_designed_level(self.level, self.max_size, self.max_objects)
        # A board too small for LPG's levels: a fixed random level of it.
        return generate_level(jax.random.PRNGKey(0), self.max_size, self.max_objects, min(4, self.max_size),
                              num_walls=0, max_steps=(self.max_steps, self.max_steps))

    def reset(self, key, params: GridLevel):
        state = GridState(params.start_pos.astype(jnp.int32), params.obj_active, jnp.zeros((), jnp.int32))
        return state, observe(state.pos, state.present, self.max_size)

    def step(self, key, state: GridState, action, params: GridLevel):
        key_term, key_respawn, key_reset = jax.random.split(key, 3)
        action = jnp.asarray(action).reshape(())
        target = state.pos + jnp.asarray(MOVES)[action]
        pos = jnp.where(is_blocked(params.wall_map, target), state.pos, target)
        collected = state.present & jnp.all(params.obj_pos == pos, axis=-1)  # [K]
        reward = jnp.sum(jnp.where(collected, params.obj_reward, 0.0)).astype(jnp.float32)
        p_end = 1.0 - jnp.prod(jnp.where(collected, 1.0 - params.obj_p_terminate, 1.0))
        terminated = jax.random.uniform(key_term) < p_end
        respawn = jax.random.uniform(key_respawn, state.present.shape) < params.obj_p_respawn
        present = ((state.present | respawn) & ~collected) & params.obj_active
        time = state.time + 1
        truncated = (time >= jnp.minimum(params.max_steps, self.max_steps)) & ~terminated
        final_obs = observe(pos, present, self.max_size)
        done = terminated | truncated
        next_state, obs = auto_reset(done, self.reset(key_reset, params), (GridState(pos, present, time), final_obs))
        return next_state, Timestep(obs=obs, reward=reward, terminated=terminated, truncated=truncated,
                                    final_obs=final_obs, info={})

    def observation_space(self, params):
        dim = self.max_size * self.max_size * 2 ** self.max_objects
        return Box(low=np.zeros(dim, np.float32), high=np.ones(dim, np.float32), shape=(dim,))

    def action_space(self, params):
        return Discrete(NUM_ACTIONS)

    def max_episode_steps(self, params):
        return self.max_steps


# ----------------------------------------------------------------------------- LPG's hand-designed levels

# name -> (grid size, max_steps, per-object (reward, p_terminate, p_respawn), wall cells (x, y)), from the LPG
# paper's appendix table as the GROOVE reference codes it (its ``longer`` has 5 objects: 2 rewarding, 3 penalising).
_LONGER_WALLS = tuple((4, y) for y in range(9) if y not in (1, 7))
_LONG_DENSE_WALLS = tuple(sorted({(5, y) for y in range(11) if y not in (0, 7)}
                                 | {(x, 4) for x in range(11) if x not in (2, 8)}))
HAND_DESIGNED_SPECS: dict[str, tuple] = {
    "dense": (11, 500, ((1.0, 0.0, 0.05), (1.0, 0.0, 0.05), (-1.0, 0.5, 0.1), (-1.0, 0.0, 0.5)), ()),
    "sparse": (13, 50, ((1.0, 1.0, 0.0), (-1.0, 1.0, 0.0)), ()),
    "long": (11, 1000, ((1.0, 0.0, 0.01), (1.0, 0.0, 0.01), (-1.0, 0.5, 1.0), (-1.0, 0.5, 1.0)), ()),
    "longer": (9, 2000, ((1.0, 0.1, 0.01), (1.0, 0.1, 0.01), (-1.0, 0.8, 1.0), (-1.0, 0.8, 1.0), (-1.0, 0.8, 1.0)),
               _LONGER_WALLS),
    "long_dense": (11, 2000, ((1.0, 0.0, 0.005),) * 4, _LONG_DENSE_WALLS),
}
HAND_DESIGNED = tuple(HAND_DESIGNED_SPECS)
HAND_DESIGNED_LIFETIME = 2500  # agent updates per level (LPG / GROOVE: 2500 updates of 20-step rollouts)
LAYOUT_SEED = 2020  # the start and object cells of the hand-designed levels are drawn once with this seed


def _level_walls(size: int, max_size: int, walls) -> np.ndarray:
    wall_map = np.ones((max_size, max_size), bool)
    wall_map[:size, :size] = False
    for x, y in walls:
        wall_map[y, x] = True
    return wall_map


def hand_designed_level(name: str, max_size: int = 13, max_objects: int = 5, lifetime: int = HAND_DESIGNED_LIFETIME
                        ) -> GridLevel:
    """LPG's level ``name`` on a ``max_size`` board with ``max_objects`` slots.

    The object table, grid size, walls and episode length are the paper's; the start
    and object cells are drawn once from free cells with :data:`LAYOUT_SEED` (the paper
    gives no coordinates; the GROOVE reference redraws them at every sample).
    """
    size, max_steps, objects, walls = HAND_DESIGNED_SPECS[name]
    if size > max_size or len(objects) > max_objects:
        raise ValueError(f"level {name!r} needs max_size >= {size} and max_objects >= {len(objects)}")
    wall_map = _level_walls(size, max_size, walls)
    free = np.argwhere(~wall_map)[:, ::-1]  # (x, y) of free cells
    rng = np.random.default_rng(LAYOUT_SEED + HAND_DESIGNED.index(name))
    cells = free[rng.choice(len(free), len(objects) + 1, replace=False)]
    pad = max_objects - len(objects)
    table = np.asarray(objects, np.float32)
    return GridLevel(
        wall_map=jnp.asarray(wall_map), start_pos=jnp.asarray(cells[0], jnp.int32),
        obj_pos=jnp.asarray(np.concatenate([cells[1:], np.zeros((pad, 2), int)]), jnp.int32),
        obj_reward=jnp.asarray(np.pad(table[:, 0], (0, pad))), obj_p_terminate=jnp.asarray(np.pad(table[:, 1], (0, pad))),
        obj_p_respawn=jnp.asarray(np.pad(table[:, 2], (0, pad))),
        obj_active=jnp.asarray(np.arange(max_objects) < len(objects)),
        max_steps=jnp.asarray(max_steps, jnp.int32), lifetime=jnp.asarray(lifetime, jnp.int32))


def hand_designed_levels(max_size: int = 13, max_objects: int = 5, lifetime: int = HAND_DESIGNED_LIFETIME):
    """``(names, levels)``: the five levels stacked on a leading ``[5]`` axis."""
    levels = [hand_designed_level(n, max_size, max_objects, lifetime) for n in HAND_DESIGNED]
    return list(HAND_DESIGNED), jax.tree.map(lambda *x: jnp.stack(x), *levels)


# ----------------------------------------------------------------------------- generator and mutator


def log_uniform(key, low: float, high: float, shape=()) -> jax.Array:
    """``exp(U(log low, log high))``."""
    return jnp.exp(jax.random.uniform(key, shape, minval=jnp.log(low), maxval=jnp.log(high)))


def generate_level(key, max_size: int = 13, max_objects: int = 5, min_size: int = 4, num_walls: int = 15,
                   max_steps: tuple = (20, 750), lifetime: tuple = (250, 250)) -> GridLevel:
    """A random level of the hand-designed levels' space (the GROOVE reference's ``all`` distribution).

    Grid side in ``[min_size, max_size]``; 1..``max_objects`` objects, the first with
    reward in ``[0, 1]`` and the others in ``[-1, 1]``; termination probabilities
    log-uniform in ``[0.01, 1]``, respawn in ``[0.001, 0.1]``; up to ``num_walls``
    walls drawn over the board; episode length and lifetime log-uniform integers over
    the given ranges (equal ends: a fixed value). Start and objects on distinct free cells.
    """
    ks = jax.random.split(key, 9)
    size = jax.random.randint(ks[0], (), min_size, max_size + 1)
    n_obj = jax.random.randint(ks[1], (), 1, max_objects + 1)
    xs, ys = jnp.meshgrid(jnp.arange(max_size), jnp.arange(max_size))
    outside = (xs >= size) | (ys >= size)
    wall_cells = jax.random.choice(ks[2], max_size * max_size, (num_walls,), replace=False)
    wall_map = outside | jnp.zeros(max_size * max_size, bool).at[wall_cells].set(True).reshape(max_size, max_size)
    free = ~wall_map.reshape(-1)
    # Start and objects: distinct free cells (a Gumbel top-k over free cells); a board with too few
    # free cells keeps its walls but frees the cells chosen (the start and objects are never in a wall).
    scores = jnp.where(free, jax.random.gumbel(ks[3], (max_size * max_size,)), -jnp.inf)
    cells = jnp.argsort(-scores)[: max_objects + 1]
    wall_map = wall_map.reshape(-1).at[cells].set(outside.reshape(-1)[cells]).reshape(max_size, max_size)
    xy = jnp.stack([cells % max_size, cells // max_size], axis=-1).astype(jnp.int32)
    reward = jax.random.uniform(ks[4], (max_objects,), minval=-1.0, maxval=1.0)
    reward = reward.at[0].set(jnp.abs(reward[0]))
    steps = jnp.round(log_uniform(ks[7], *max_steps)).astype(jnp.int32)
    life = jnp.round(log_uniform(ks[8], *lifetime)).astype(jnp.int32)
    return GridLevel(wall_map, xy[0], xy[1:], reward, log_uniform(ks[5], 0.01, 1.0, (max_objects,)),
                     log_uniform(ks[6], 0.001, 0.1, (max_objects,)), jnp.arange(max_objects) < n_obj, steps, life)


def mutate_once(key, level: GridLevel) -> GridLevel:
    """One ACCEL edit, uniformly one of: flip a wall inside the grid, move an object, move the start,
    redraw an object's reward (the first object's in ``[0, 1]``). A flip at the start or an object's cell is a no-op."""
    max_size = level.wall_map.shape[0]
    k_kind, k_cell, k_obj, k_value = jax.random.split(key, 4)
    kind = jax.random.randint(k_kind, (), 0, 4)
    cell = jax.random.randint(k_cell, (2,), 0, max_size)
    obj = jax.random.randint(k_obj, (), 0, level.obj_pos.shape[0])
    taken = jnp.all(cell == level.start_pos) | jnp.any(jnp.all(cell == level.obj_pos, axis=-1) & level.obj_active)
    free = ~level.wall_map[cell[1], cell[0]] & ~taken
    # The level's grid is the wall-free extent of its rows and columns: cells outside it stay walls.
    inside = ~jnp.all(level.wall_map, axis=1)[cell[1]] & ~jnp.all(level.wall_map, axis=0)[cell[0]]
    flip = (kind == 0) & ~taken & inside
    wall_map = level.wall_map.at[cell[1], cell[0]].set(level.wall_map[cell[1], cell[0]] ^ flip)
    obj_pos = jnp.where((kind == 1) & free, level.obj_pos.at[obj].set(cell), level.obj_pos)
    start = jnp.where((kind == 2) & free, cell, level.start_pos)
    new_reward = jax.random.uniform(k_value, (), minval=-1.0, maxval=1.0)
    new_reward = jnp.where(obj == 0, jnp.abs(new_reward), new_reward)  # the first object stays rewarding, as generated
    reward = jnp.where(kind == 3, level.obj_reward.at[obj].set(new_reward), level.obj_reward)
    return level._replace(wall_map=wall_map, obj_pos=obj_pos, start_pos=start, obj_reward=reward)


def mutate_level(key, level: GridLevel, num_edits: int = 4) -> GridLevel:
    """``num_edits`` successive :func:`mutate_once` edits of one level (ACCEL's mutator)."""
    return jax.lax.fori_loop(0, num_edits, lambda i, lv: mutate_once(jax.random.fold_in(key, i), lv), level)


def render_level(level: GridLevel, cell: int = 8) -> np.ndarray:
    """RGB ``[S * cell, S * cell, 3]`` uint8: walls dark, start blue, rewarding objects green, others red."""
    wall_map = np.asarray(level.wall_map)
    size = wall_map.shape[0]
    image = np.full((size, size, 3), 240, np.uint8)
    image[wall_map] = (60, 60, 60)
    for pos, reward, active in zip(np.asarray(level.obj_pos), np.asarray(level.obj_reward), np.asarray(level.obj_active)):
        if active:
            image[pos[1], pos[0]] = (60, 170, 80) if reward > 0 else (210, 70, 60)
    start = np.asarray(level.start_pos)
    image[start[1], start[0]] = (60, 100, 220)
    return np.repeat(np.repeat(image, cell, axis=0), cell, axis=1)
