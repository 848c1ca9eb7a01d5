"""PLR's math against hand-computed numbers, the buffer's insertion and staleness rules, the
regret scores on hand-made rollouts, and the sample / update cycle of every curriculum."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.curricula import (
    MUTATE,
    NEW,
    REPLAY,
    CurriculumConfig,
    LevelScores,
    best_returns,
    curriculum_hparams,
    empty_buffer,
    insert_level,
    max_mc,
    make_curriculum,
    positive_value_loss,
    replay_distribution,
    score_weights,
    staleness_weights,
    update_replayed,
)
from jaxrl.curricula.buffer import advance_time
from jaxrl.envs.levels import generate_level, mutate_level

FILLED3 = jnp.array([True, True, True, False])


def test_rank_weights_by_hand():
    scores = jnp.array([1.0, 3.0, 2.0, 9.0])  # the empty slot's score is ignored
    # ranks 3, 1, 2 -> h = 1/3, 1, 1/2 (sum 11/6)
    np.testing.assert_allclose(score_weights(scores, FILLED3, "rank", 1.0), [2 / 11, 6 / 11, 3 / 11, 0], rtol=1e-6)
    # temperature 0.5: h^2 = 1/9, 1, 1/4 (sum 49/36)
    np.testing.assert_allclose(score_weights(scores, FILLED3, "rank", 0.5), [4 / 49, 36 / 49, 9 / 49, 0], rtol=1e-6)


def test_proportional_weights_by_hand():
    scores = jnp.array([1.0, 3.0, 2.0, 9.0])
    np.testing.assert_allclose(score_weights(scores, FILLED3, "proportional", 1.0), [1 / 6, 3 / 6, 2 / 6, 0], rtol=1e-6)
    np.testing.assert_allclose(score_weights(scores, FILLED3, "proportional", 0.5), [1 / 14, 9 / 14, 4 / 14, 0], rtol=1e-6)
    # All scores zero: uniform over the filled slots rather than 0/0.
    np.testing.assert_allclose(score_weights(jnp.zeros(4), FILLED3, "proportional", 0.3), [1 / 3, 1 / 3, 1 / 3, 0])
    with pytest.raises(ValueError, match="prioritization"):
        score_weights(scores, FILLED3, "softmax", 1.0)


def test_staleness_and_mixture_by_hand():
    filled = jnp.ones(4, bool)
    last = jnp.array([0, 1, 2, 3], jnp.int32)
    np.testing.assert_allclose(staleness_weights(last, jnp.int32(5), filled), [5 / 14, 4 / 14, 3 / 14, 2 / 14], rtol=1e-6)
    buffer = empty_buffer(jnp.zeros(2), 4)._replace(scores=jnp.array([1.0, 3.0, 2.0, 0.0]), last_sampled=last, filled=filled,
                                                    time=jnp.int32(5))
    rank = np.array([4, 12, 6, 3]) / 25  # h = 1/3, 1, 1/2, 1/4 (sum 25/12)
    stale = np.array([5, 4, 3, 2]) / 14
    np.testing.assert_allclose(replay_distribution(buffer, "rank", 1.0, 0.3), 0.7 * rank + 0.3 * stale, rtol=1e-6)


def test_insertion_fills_then_replaces_the_lowest_score_only_if_higher():
    buffer = advance_time(empty_buffer(jnp.zeros(()), 3), 7)
    for i, score in enumerate([0.5, 0.2, 0.9]):
        buffer = insert_level(buffer, jnp.float32(i), jnp.float32(score), jnp.float32(-1.0))
    np.testing.assert_array_equal(buffer.levels, [0, 1, 2])
    np.testing.assert_array_equal(buffer.filled, [True, True, True])
    np.testing.assert_array_equal(buffer.last_sampled, [7, 7, 7])
    rejected = insert_level(buffer, jnp.float32(10), jnp.float32(0.1), jnp.float32(0.0))
    jax.tree.map(np.testing.assert_array_equal, rejected, buffer)
    buffer = insert_level(advance_time(buffer, 3), jnp.float32(11), jnp.float32(0.4), jnp.float32(0.3))
    np.testing.assert_array_equal(buffer.levels, [0, 11, 2])  # slot 1 held the lowest score, 0.2
    np.testing.assert_allclose(buffer.scores, [0.5, 0.4, 0.9])
    np.testing.assert_allclose(buffer.max_returns, [-1, 0.3, -1])
    np.testing.assert_array_equal(buffer.last_sampled, [7, 10, 7])


def test_replayed_levels_get_new_scores_best_returns_and_fresh_staleness():
    buffer = empty_buffer(jnp.zeros(()), 3)._replace(scores=jnp.array([0.1, 0.2, 0.3]), max_returns=jnp.array([0.5, -jnp.inf, 0.9]),
                                                   last_sampled=jnp.array([1, 2, 3]), filled=jnp.ones(3, bool), time=jnp.int32(9))
    buffer = update_replayed(buffer, jnp.array([0, 2]), jnp.array([0.7, 0.05]), jnp.array([0.4, 0.95]))
    np.testing.assert_allclose(buffer.scores, [0.7, 0.2, 0.05])
    np.testing.assert_allclose(buffer.max_returns, [0.5, -np.inf, 0.95])
    np.testing.assert_array_equal(buffer.last_sampled, [9, 2, 9])
    np.testing.assert_allclose(staleness_weights(buffer.last_sampled, buffer.time, buffer.filled), [0, 1, 0])


def test_scores_on_hand_made_rollouts():
    advantages = jnp.array([[1.0, -2.0], [3.0, 4.0], [-1.0, 0.0]])  # [T=3, B=2]
    np.testing.assert_allclose(positive_value_loss(advantages), [4 / 3, 4 / 3], rtol=1e-6)
    episode_returns = jnp.array([[0.0, 0.0, 0.0], [0.8, 0.0, 0.0], [0.6, 0.0, 0.3]])  # [T=3, B=3]
    episode_done = jnp.array([[False, False, False], [True, False, False], [True, False, True]])
    best = best_returns(jnp.array([-jnp.inf, -jnp.inf, 0.5]), episode_returns, episode_done)
    np.testing.assert_allclose(best, [0.8, -np.inf, 0.5])
    values = jnp.array([[0.2, 0.1, 0.0], [0.4, 0.1, 0.5], [0.0, 0.1, 1.0]])
    # level 0: mean(0.8 - V) = 0.8 - 0.2; level 1: never finished -> 0; level 2: 0.5 - 0.5.
    np.testing.assert_allclose(max_mc(values, best), [0.6, 0.0, 0.0], atol=1e-6)


def make(method, **overrides):
    cfg = CurriculumConfig(method=method, **{**dict(num_levels=4, capacity=8, replay_prob=0.5, min_fill=0.5, num_edits=2), **overrides})
    return make_curriculum(cfg, lambda k: generate_level(k, 7, 7, num_walls=5), lambda k, lv: mutate_level(k, lv, cfg.num_edits))


def run_cycle(curriculum, steps, seed=0):
    """Runs ``steps`` sample / update cycles with the mean wall count as a stand-in score; returns states and infos."""

    @jax.jit
    def cycle(state, key):
        state, levels, info = curriculum.sample(key, state, curriculum_hparams(curriculum.config))
        score = jnp.mean(levels.wall_map, axis=(1, 2)).astype(jnp.float32)
        state = curriculum.update(state, levels, LevelScores(score, score), info)
        return state, (info, levels, state)

    key = jax.random.PRNGKey(seed)
    return jax.lax.scan(cycle, curriculum.init(key), jax.random.split(key, steps))


def test_domain_randomisation_always_trains_on_new_levels():
    _, (info, _, _) = run_cycle(make("dr"), 5)
    assert (np.asarray(info.kind) == NEW).all() and np.asarray(info.train).all()


@pytest.mark.parametrize("method", ["plr", "robust_plr"])
def test_plr_replays_only_once_min_fill_is_reached(method):
    _, (info, _, states) = run_cycle(make(method), 30)
    kind, train = np.asarray(info.kind), np.asarray(info.train)
    filled_before = np.concatenate([[0], np.asarray(states.buffer.filled).sum(1)[:-1]])
    assert (kind[filled_before < 4] == NEW).all()  # min_fill 0.5 of capacity 8
    assert (kind == REPLAY).any() and (kind == NEW).any()
    assert (np.asarray(states.buffer.time) == 4 * np.arange(1, 31)).all()
    if method == "plr":
        assert train.all()
    else:
        np.testing.assert_array_equal(train, kind == REPLAY)


@pytest.mark.parametrize("method", ["plr", "robust_plr", "accel"])
def test_min_fill_zero_never_replays_the_empty_buffers_placeholders(method):
    # With min_fill 0 and replay_prob 1 every batch after the first is replayed; the first must be generated:
    # the empty buffer holds all-zero placeholder levels (start on the goal at (0, 0), no walls).
    _, (info, levels, states) = run_cycle(make(method, min_fill=0.0, replay_prob=1.0), 6)
    kind = np.asarray(info.kind)
    assert kind[0] == NEW and (kind[1:] != NEW).all()
    start_on_goal = np.all(np.asarray(levels.agent_pos) == np.asarray(levels.goal_pos), axis=-1)
    assert not start_on_goal.any()


def test_accel_mutates_the_replayed_batch_next_without_training():
    _, (info, levels, _) = run_cycle(make("accel"), 40)
    kind, train = np.asarray(info.kind), np.asarray(info.train)
    replays = np.flatnonzero(kind[:-1] == REPLAY)
    assert len(replays) > 0
    assert (kind[replays + 1] == MUTATE).all()
    not_after_replay = np.flatnonzero(kind[:-1] != REPLAY) + 1
    assert (kind[not_after_replay] != MUTATE).all() and kind[0] == NEW
    np.testing.assert_array_equal(train, kind == REPLAY)
    # Children differ from their parents by at most num_edits = 2 wall flips each.
    i = replays[0]
    flips = (np.asarray(levels.wall_map[i + 1]) != np.asarray(levels.wall_map[i])).sum(axis=(1, 2))
    assert flips.max() <= 2


def test_curriculum_vmaps_over_seeds():
    curriculum = make("accel")

    @jax.jit
    def one_cycle(key):
        states = jax.vmap(curriculum.init)(jax.random.split(key, 3))
        hp = curriculum_hparams(curriculum.config)
        states, levels, info = jax.vmap(curriculum.sample, in_axes=(0, 0, None))(jax.random.split(key, 3), states, hp)
        score = jnp.ones((3, 4))
        return jax.vmap(curriculum.update)(states, levels, LevelScores(score, score), info), levels, info

    states, levels, info = one_cycle(jax.random.PRNGKey(1))
    assert levels.wall_map.shape == (3, 4, 7, 7) and info.indices.shape == (3, 4)
    assert states.buffer.filled.shape == (3, 8)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="--replay-prob"):
        make("plr", replay_prob=1.5)
    with pytest.raises(ValueError, match="--capacity"):
        make("plr", capacity=2)
    with pytest.raises(ValueError, match="make_paired"):  # PAIRED samples no levels: it has its own iteration
        make("paired")


def test_completed_episode_means_by_hand():
    from jaxrl.curricula.scores import completed_episode_means, rollout_score

    # env 0: episodes [1, 3] (mean 2) and [5] (mean 5), then an unfinished tail [100]: (2 + 5) / 2 = 3.5.
    # env 1: no episode ends: no score. env 2: one episode over all four steps: mean 2.5.
    x = jnp.array([[1.0, 7.0, 1.0], [3.0, 7.0, 2.0], [5.0, 7.0, 3.0], [100.0, 7.0, 4.0]])
    done = jnp.array([[False, False, False], [True, False, False], [True, False, False], [False, False, True]])
    means, episodes = completed_episode_means(x, done)
    np.testing.assert_allclose(means, [3.5, 0.0, 2.5])
    np.testing.assert_array_equal(episodes, [2, 0, 1])
    np.testing.assert_allclose(rollout_score(x, done, "unscored"), [3.5, -np.inf, 2.5])
    np.testing.assert_allclose(rollout_score(x, done, "rollout_mean"), [27.25, 7.0, 2.5])


def test_unscored_levels_never_enter_the_buffer():
    # An unscored level (-inf: no episode finished) is not inserted, not even into an empty slot.
    buffer = empty_buffer(jnp.zeros(2), 3)
    buffer = insert_level(buffer, jnp.ones(2), jnp.asarray(-jnp.inf), jnp.asarray(-jnp.inf))
    assert not np.asarray(buffer.filled).any()
    buffer = insert_level(buffer, jnp.ones(2), jnp.asarray(0.5), jnp.asarray(1.0))
    np.testing.assert_array_equal(buffer.filled, [True, False, False])


def test_ued_leaves_levels_without_a_finished_episode_out_of_the_buffer():
    # A 2-step rollout on mazes with a 20-step limit finishes no episode on levels the agent cannot reach the goal
    # of in 2 steps: under the default rule those levels are unscored and the buffer stays empty of them.
    from jaxrl.agents.ppo import PPOConfig
    from jaxrl.curricula.ued import make_ued, ued_hparams
    from jaxrl.envs.levels.maze import Maze

    cfg = CurriculumConfig(method="robust_plr", num_levels=8, capacity=64, min_fill=0.5)
    ppo = PPOConfig(rollout_len=2, num_epochs=1, num_minibatches=1, hidden_sizes=(8,))
    env = Maze(7, 7, max_steps=20)
    eval_levels = jax.tree.map(lambda x: x[None], env.default_params)
    for unfinished, expect_filled in (("unscored", 0), ("rollout_mean", 8)):
        agent = make_ued(ppo, dataclasses.replace(cfg, unfinished=unfinished), env, 8 * 2 * 2,
                         lambda k: generate_level(k, 7, 7, num_walls=5), None, eval_levels, num_eval_episodes=1)
        hp = ued_hparams(ppo, cfg)
        state = agent.init(jax.random.PRNGKey(0), hp)
        state, metrics = jax.jit(agent.update)(jax.random.PRNGKey(1), state, None, hp)
        # Starts 2+ moves from the goal (all but a few levels) cannot finish in 2 steps.
        filled = int(np.asarray(state.curriculum.buffer.filled).sum())
        if expect_filled:
            assert filled == expect_filled
        else:
            assert filled <= 2 and float(metrics["scored_levels"]) == filled / 8
