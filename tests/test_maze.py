"""The designable maze: movement, walls, the time-discounted goal reward, the egocentric window,
the level generator and mutator, and the held-out mazes."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import envs
from jaxrl.envs.levels.maze import (
    HELD_OUT_MAZES,
    Level,
    Maze,
    generate_level,
    held_out_levels,
    level_from_strings,
    mutate_level,
    render_level,
    shortest_path_length,
)

LEFT, RIGHT, FORWARD = 0, 1, 2
KEY = jax.random.PRNGKey(0)


def make_level(agent=(2, 2), direction=0, goal=(10, 10), walls=()):
    wall_map = np.zeros((13, 13), bool)
    for x, y in walls:
        wall_map[y, x] = True
    return Level(jnp.asarray(wall_map), jnp.asarray(goal, jnp.int32), jnp.asarray(agent, jnp.int32), jnp.asarray(direction, jnp.int32))


def play(env, level, actions):
    """Steps one env through ``actions``; returns the list of (state, timestep)."""
    step = jax.jit(env.step)
    state, _ = env.reset(KEY, level)
    out = []
    for a in actions:
        state, ts = step(KEY, state, jnp.int32(a), level)
        out.append((state, ts))
    return out


def test_turns_and_moves():
    env = Maze()
    out = play(env, make_level(), [FORWARD, RIGHT, FORWARD, LEFT, LEFT, FORWARD])
    positions = [tuple(np.asarray(s.agent_pos)) for s, _ in out]
    directions = [int(s.agent_dir) for s, _ in out]
    assert positions == [(3, 2), (3, 2), (3, 3), (3, 3), (3, 3), (3, 2)]
    assert directions == [0, 1, 1, 0, 3, 3]
    assert all(float(ts.reward) == 0.0 and not bool(ts.terminated) for _, ts in out)


def test_walls_and_border_block():
    env = Maze()
    out = play(env, make_level(agent=(2, 2), walls=[(3, 2)]), [FORWARD])
    assert tuple(np.asarray(out[0][0].agent_pos)) == (2, 2)
    out = play(env, make_level(agent=(0, 0), direction=2), [FORWARD, RIGHT, FORWARD])  # left, then up: both off the grid
    assert all(tuple(np.asarray(s.agent_pos)) == (0, 0) for s, _ in out)


def test_goal_reward_is_discounted_by_time_and_resets():
    env = Maze(max_steps=20)
    level = make_level(agent=(2, 2), direction=1, goal=(3, 2))
    out = play(env, level, [LEFT, FORWARD])  # turn to face right (t=1), step onto the goal (t=2)
    state, ts = out[-1]
    assert bool(ts.terminated) and not bool(ts.truncated)
    np.testing.assert_allclose(float(ts.reward), 1.0 - 0.9 * 2 / 20, rtol=1e-6)
    # Auto-reset to the same level's start; final_obs is the observation at the goal.
    assert tuple(np.asarray(state.agent_pos)) == (2, 2) and int(state.agent_dir) == 1 and int(state.time) == 0
    _, start_obs = env.reset(KEY, level)
    np.testing.assert_array_equal(np.asarray(ts.obs), np.asarray(start_obs))
    assert not np.array_equal(np.asarray(ts.final_obs), np.asarray(ts.obs))


def test_time_limit_truncates_with_zero_reward():
    env = Maze(max_steps=3)
    out = play(env, make_level(), [LEFT, LEFT, LEFT])
    _, ts = out[-1]
    assert bool(ts.truncated) and not bool(ts.terminated) and float(ts.reward) == 0.0
    assert not any(bool(t.truncated) for _, t in out[:-1])


def image(obs, view=5):
    return np.asarray(obs[: view * view * 2]).reshape(view, view, 2)


def test_egocentric_window():
    env = Maze()
    # Facing up: a wall two cells ahead, the goal one cell to the right.
    _, obs = env.reset(KEY, make_level(agent=(6, 6), direction=3, goal=(7, 6), walls=[(6, 4)]))
    img = image(obs)
    assert img[2, 2, 0] == 1 and img[:, :, 0].sum() == 1
    assert img[4, 3, 1] == 1 and img[:, :, 1].sum() == 1
    np.testing.assert_array_equal(np.asarray(obs[-4:]), [0, 0, 0, 1])
    # Facing right, the same wall is now two cells to the left and two behind the view edge: at row 4, col 0.
    _, obs = env.reset(KEY, make_level(agent=(6, 6), direction=0, goal=(8, 6), walls=[(6, 4)]))
    img = image(obs)
    assert img[4, 0, 0] == 1 and img[:, :, 0].sum() == 1
    assert img[2, 2, 1] == 1
    # In the top-left corner facing up, everything ahead and to the left is outside the grid: walls.
    _, obs = env.reset(KEY, make_level(agent=(0, 0), direction=3))
    img = image(obs)
    assert img[:4, :, 0].all() and img[4, :2, 0].all() and not img[4, 2:, 0].any()


def test_generator_places_walls_goal_and_start_apart():
    levels = jax.vmap(lambda k: generate_level(k, num_walls=30))(jax.random.split(KEY, 64))
    walls = np.asarray(levels.wall_map)
    assert walls.shape == (64, 13, 13) and (walls.sum(axis=(1, 2)) == 30).all()
    idx = np.arange(64)
    goal, start = np.asarray(levels.goal_pos), np.asarray(levels.agent_pos)
    assert not walls[idx, goal[:, 1], goal[:, 0]].any() and not walls[idx, start[:, 1], start[:, 0]].any()
    assert (goal != start).any(axis=1).all()
    assert set(np.asarray(levels.agent_dir).tolist()) <= {0, 1, 2, 3}
    with pytest.raises(ValueError, match="num_walls"):
        generate_level(KEY, num_walls=13 * 13)


def test_mutator_keeps_levels_valid():
    keys = jax.random.split(KEY, 128)
    parents = jax.vmap(lambda k: generate_level(k, num_walls=25))(keys)
    children = jax.jit(jax.vmap(lambda k, lv: mutate_level(k, lv, num_edits=4)))(jax.random.split(keys[0], 128), parents)
    walls = np.asarray(children.wall_map)
    idx = np.arange(128)
    goal, start = np.asarray(children.goal_pos), np.asarray(children.agent_pos)
    assert not walls[idx, goal[:, 1], goal[:, 0]].any() and not walls[idx, start[:, 1], start[:, 0]].any()
    assert (goal != start).any(axis=1).all()
    flipped = (walls != np.asarray(parents.wall_map)).sum(axis=(1, 2))
    assert flipped.max() <= 4
    moved = (goal != np.asarray(parents.goal_pos)).any(1) | (start != np.asarray(parents.agent_pos)).any(1)
    assert (flipped > 0).mean() > 0.5 and moved.mean() > 0.5  # each edit kind happens


def test_held_out_mazes_are_valid_and_solvable():
    names, levels = held_out_levels()
    assert names == tuple(HELD_OUT_MAZES) and levels.wall_map.shape == (len(names), 13, 13)
    for name in names:
        level = level_from_strings(HELD_OUT_MAZES[name])
        assert shortest_path_length(level) > 0, name
        assert render_level(level, cell=2).shape == (26, 26, 3)
    assert shortest_path_length(level_from_strings(("#G#", "###", ">.."))) == -1


def test_one_level_per_env_through_the_registry():
    env = envs.make("Maze")
    names, levels = held_out_levels()
    vec = envs.make_vec_env(env, len(names), batched_params=True)
    state, obs = jax.jit(vec.reset)(KEY, levels)
    state, ts = jax.jit(vec.step)(KEY, state, jnp.full((len(names),), FORWARD), levels)
    assert obs.shape == (len(names), 5 * 5 * 2 + 4) and ts.reward.shape == (len(names),)
    # Every env plays its own level: starts differ between mazes.
    assert len({tuple(p) for p in np.asarray(levels.agent_pos).tolist()}) > 1


def test_played_trajectory_is_recorded_until_the_first_episode_ends_and_drawn():
    """play_levels on two hand-made corridors with an always-forward policy: the recorded cells are the
    ones acted from, ``playing`` stops after the step that reaches the goal, and the path is drawn."""
    from jaxrl.envs.levels.maze import render_trajectory
    from jaxrl.envs.levels.spaces import maze_agent_positions
    from jaxrl.evaluation.rollout import play_levels

    env = envs.make("Maze", max_steps=20)
    levels = [level_from_strings((">..G.",)), level_from_strings(("..>.G",))]  # goal 3 and 2 steps ahead
    batch = jax.tree.map(lambda *x: jnp.stack(x), *levels)
    forward = lambda params, obs, key, deterministic: jnp.full(obs.shape[:1], FORWARD, jnp.int32)  # noqa: E731
    returns, states, playing = jax.jit(lambda k: play_levels(k, forward, None, env, batch))(KEY)
    playing, positions = np.asarray(playing), np.asarray(maze_agent_positions(states))
    assert playing.shape == (20, 2) and playing[:, 0].sum() == 3 and playing[:, 1].sum() == 2
    assert playing[:3, 0].all() and playing[:2, 1].all()  # the first episode's steps come first
    np.testing.assert_array_equal(positions[playing[:, 0], 0], [[0, 0], [1, 0], [2, 0]])
    np.testing.assert_array_equal(positions[playing[:, 1], 1], [[2, 0], [3, 0]])
    np.testing.assert_allclose(returns, [1 - 0.9 * 3 / 20, 1 - 0.9 * 2 / 20], rtol=1e-6)
    image = render_trajectory(levels[0], positions[playing[:, 0], 0], cell=2)
    plain = render_level(levels[0], cell=2)
    assert image.shape == plain.shape
    changed = np.argwhere((image != plain).any(-1))[:, ::-1] // 2  # (x, y) cells the path recoloured
    assert {tuple(c) for c in changed} == {(1, 0), (2, 0)}  # the start keeps its colour, the goal was never acted from
