"""Level spaces: what a curriculum run needs of an environment with designable levels.

A :class:`LevelSpace` bundles, for one environment, how to build it, how to
generate and mutate levels, its held-out levels for zero-shot evaluation, the
return that counts as solving a level, and how to draw a level. The UED driver
(:mod:`jaxrl.programs.ued`) reads everything environment-specific from
here, so a new designable environment is one entry in :data:`LEVEL_SPACES`.
"""
from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import numpy as np

from jaxrl import envs
from jaxrl.envs.levels.classic import (
    CARTPOLE_RANGES,
    cartpole_held_out_levels,
    generate_cartpole_level,
    mutate_cartpole_level,
)
from jaxrl.envs.levels.procedural import level_set
from jaxrl.envs.levels.maze import MazeState, generate_level, held_out_levels, mutate_level, render_level, render_trajectory


class LevelSpace(NamedTuple):
    """Attributes:
    make_env: ``(max_steps) -> Env`` whose params are levels.
    generator: ``(num_walls) -> (key -> level)``, the random level generator (``num_walls``
        is the maze's option; other spaces ignore it).
    mutator: ``(num_edits) -> ((key, level) -> level)``, ACCEL's edit operator.
    held_out: ``() -> (names, levels)``, levels with a leading ``[L]`` axis.
    solved_return: an episode whose return is above this solved its level.
    render: ``(level, cell) -> RGB uint8 image`` of one level.
    designable_by_adversary: whether PAIRED's adversary can build this space's levels.
    agent_positions: ``(wrapped env states [...]) -> [..., 2]`` where the agent is, or None when a
        level has no place to draw a trajectory on.
    render_trajectory: ``(level, positions [T, 2], cell) -> RGB image`` of a level with a path on it.
    extra_held_out: ``(max_steps) -> [(env, names, levels [L_i, ...]), ...]``, held-out sets beyond
        ``held_out`` played in their own env (``--held-out extended``), or None.
    dataset: ``(size, seed) -> levels [size, ...]`` of the space's target distribution (DRED), or None.
    """

    make_env: Callable
    generator: Callable
    mutator: Callable
    held_out: Callable
    solved_return: float
    render: Callable
    designable_by_adversary: bool
    agent_positions: Callable | None = None
    render_trajectory: Callable | None = None
    extra_held_out: Callable | None = None
    dataset: Callable | None = None


HELD_OUT_SETS = ("hand_designed", "extended")
EXTENDED_SET_SIZE = 10  # levels per procedural held-out set
HELD_OUT_SEED = 1_000_003  # procedural held-out sets (disjoint from dataset seeds, which count up from 0)


def maze_extended_held_out(max_steps: int):
    """Procedural held-out mazes: 10 perfect mazes of 13 x 13 (the training size), 10 of 25 x 25 (twice the
    size, in a 25 x 25 env with dcd's time limit 2 * 25 * 25) and 10 cellular-automaton caves of 13 x 13
    (DRED's target distribution, drawn from a seed no dataset uses)."""
    sets = []
    for kind, size, steps in (("perfect", 13, max_steps), ("perfect", 25, 2 * 25 * 25), ("cave", 13, max_steps)):
        levels = level_set(kind, EXTENDED_SET_SIZE, HELD_OUT_SEED + size, size, size)
        name = {"perfect": "PerfectMaze", "cave": "Cave"}[kind]
        sets.append((envs.make("Maze", height=size, width=size, max_steps=steps),
                     tuple(f"{name}{size}-{i}" for i in range(EXTENDED_SET_SIZE)), levels))
    return sets


def maze_caves(size: int, seed: int):
    """``size`` cellular-automaton caves of 13 x 13 from ``seed`` (the DRED dataset of the Maze space)."""
    return level_set("cave", size, seed, 13, 13)


def inner_state(env_state):
    """The innermost env state under the wrappers' states (each keeps the state it wraps as ``env_state``)."""
    while hasattr(env_state, "env_state"):
        env_state = env_state.env_state
    return env_state


def maze_agent_positions(env_states):
    """``[..., 2]`` (x, y) of the agent in (wrapped) maze states."""
    state = inner_state(env_states)
    if not isinstance(state, MazeState):
        raise TypeError(f"expected a maze state under the wrappers, found {type(state).__name__}")
    return state.agent_pos


def render_cartpole_level(level, cell: int = 8) -> np.ndarray:
    """One bar per designable parameter (gravity, cart mass, pole mass, length, push force), its
    height the value's place in its sampling range: an RGB image ``[10 * cell, 5 * cell, 3]`` uint8."""
    height = 10 * cell
    colours = np.array([[70, 110, 200], [220, 140, 40], [200, 60, 60], [60, 170, 90], [150, 90, 190]], np.uint8)
    image = np.full((height, len(CARTPOLE_RANGES) * cell, 3), 235, np.uint8)
    for i, (name, (low, high)) in enumerate(CARTPOLE_RANGES.items()):
        fraction = (float(np.asarray(getattr(level, name))) - low) / (high - low)
        bar = max(1, int(round(np.clip(fraction, 0.0, 1.0) * height)))
        image[height - bar:, i * cell:(i + 1) * cell - max(1, cell // 4)] = colours[i]
    return image


XLAND_LEVELS_ENV = "xminigrid/XLand-MiniGrid-R1-9x9"


def xland_env(max_steps: int | None = None):
    """XLand-MiniGrid's one-room 9 x 9 world whose params hold the rule set (XLand's own time limit, 3 * 9 * 9
    = 243 steps; ``max_steps`` is the maze's option). A missing xminigrid extra is a one-line ConfigError."""
    from jaxrl.programs.driver import checked_env

    return checked_env(XLAND_LEVELS_ENV, {})


def xland_generator(num_walls: int):
    """``key -> level``: the env's params with a rule set from :func:`jaxrl.envs.suites.xland.generate_ruleset`."""
    from jaxrl.envs.suites.xland import generate_ruleset

    base = xland_env().default_params
    return lambda key: base.replace(ruleset=generate_ruleset(key))


def xland_mutator(num_edits: int):
    from jaxrl.envs.suites.xland import mutate_ruleset

    return lambda key, level: level.replace(ruleset=mutate_ruleset(key, level.ruleset, num_edits))


def xland_held_out():
    from jaxrl.envs.suites.xland import held_out_rulesets

    names, rulesets = held_out_rulesets()
    return names, xland_env().default_params.replace(ruleset=rulesets)


def render_xland_level(level, cell: int = 8) -> np.ndarray:
    from jaxrl.envs.suites.xland import render_ruleset

    return render_ruleset(level.ruleset, cell)


LEVEL_SPACES: dict[str, LevelSpace] = {
    # Partially observable 13 x 13 grid maze; solved = the goal reached (the only reward).
    "Maze": LevelSpace(
        make_env=lambda max_steps: envs.make("Maze", max_steps=max_steps),
        generator=lambda num_walls: functools.partial(generate_level, num_walls=num_walls),
        mutator=lambda num_edits: functools.partial(mutate_level, num_edits=num_edits),
        held_out=held_out_levels,
        solved_return=0.0,
        render=render_level,
        designable_by_adversary=True,
        agent_positions=maze_agent_positions,
        render_trajectory=render_trajectory,
        extra_held_out=maze_extended_held_out,
        dataset=maze_caves,
    ),
    # CartPole whose physics is the level; solved = balanced for more than 475 of 500 steps
    # (gymnax's and Gymnasium's threshold for CartPole-v1).
    "CartPole-v1": LevelSpace(
        make_env=lambda max_steps: envs.make("CartPole-v1"),
        generator=lambda num_walls: generate_cartpole_level,
        mutator=lambda num_edits: functools.partial(mutate_cartpole_level, num_edits=num_edits),
        held_out=cartpole_held_out_levels,
        solved_return=475.0,
        render=render_cartpole_level,
        designable_by_adversary=False,
    ),
    # XLand-MiniGrid rule sets (goal, production rules, objects) generated on device; solved = the goal reached
    # (XLand pays 1 - 0.9 t / T at the goal and nothing else). Needs the xminigrid extra.
    XLAND_LEVELS_ENV: LevelSpace(
        make_env=xland_env,
        generator=xland_generator,
        mutator=xland_mutator,
        held_out=xland_held_out,
        solved_return=0.0,
        render=render_xland_level,
        designable_by_adversary=False,
    ),
}
