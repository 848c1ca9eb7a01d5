"""Meta-training an LPG rule: antithetic pairs and their rank fitness, the ES sign, and algorithmic regret
against a baseline whose return is known (computed once per new level, read back when replayed)."""
from typing import NamedTuple

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.agents.base import Agent
from jaxrl.agents.lpg import LPGAgentConfig, lpg_hparams, make_rule
from jaxrl.envs import make_vec_env
from jaxrl.envs.levels.gridworld import GridWorld
from jaxrl.evolution.strategies import EvolutionHParams, make_strategy
from jaxrl.objectives.lpg_meta import GridLevelsConfig, lpg_meta_hparams, make_lpg_meta_training, pair_fitness
from jaxrl.objectives.meta import MetaConfig

TINY = GridLevelsConfig(curriculum="groove", grid_size=4, max_objects=1, max_episode_steps=8, lifetime_min=2,
                        lifetime_max=2, num_walls=1, held_out_levels=1, capacity=4, replay_prob=1.0)
AGENT = LPGAgentConfig(num_envs=2, rollout_len=4, y_dim=4)


def test_pair_fitness_ranks_within_each_pair():
    returns = jnp.asarray([3.0, 1.0, 1.0, 2.0, 1.0, 0.0])  # pairs (0, 3), (1, 4), (2, 5)
    np.testing.assert_array_equal(np.asarray(pair_fitness(returns)), [0.5, 0.0, 0.5, -0.5, 0.0, -0.5])


def test_antithetic_pairs_and_the_es_climbs_with_pair_ranks():
    """Members i and i + P/2 mirror each other about the mean, and telling pair ranks of a score to maximise
    moves the mean towards its maximum (the sign of the update)."""
    strategy = make_strategy("openai_es", 3, 8, "none")
    hp = EvolutionHParams(jnp.asarray(0.1), jnp.asarray(0.05))
    target = jnp.asarray([1.0, -1.0, 0.5])
    state = strategy.init(jax.random.PRNGKey(0), jnp.zeros(3), hp)
    start = float(jnp.linalg.norm(strategy.solution(state) - target))
    for i in range(40):
        pop, state = strategy.ask(jax.random.PRNGKey(i), state, hp)
        mean = strategy.solution(state)
        np.testing.assert_allclose(np.asarray(pop[:4] + pop[4:]), np.asarray(2 * mean[None].repeat(4, 0)), atol=1e-5)
        state = strategy.tell(jax.random.PRNGKey(i), pop, pair_fitness(-jnp.sum((pop - target) ** 2, -1)), state, hp)
    assert float(jnp.linalg.norm(strategy.solution(state) - target)) < 0.5 * start


class StubState(NamedTuple):
    env_state: object
    obs: jax.Array


def known_baseline(env, value: float) -> Agent:
    """A baseline whose evaluation return is ``value`` on every level."""
    vec = make_vec_env(env, 2)
    return Agent(init=lambda key, hp: StubState(*vec.reset(key, env.default_params)),
                 update=lambda key, state, level, hp: (state, {}),
                 evaluate=lambda key, state, level, hp: jnp.full((3,), value), act=None, num_updates=1,
                 env_steps_per_update=1, env=vec)


def test_algorithmic_regret_is_the_known_baseline_return_minus_the_rules():
    env = GridWorld(TINY.grid_size, TINY.max_objects, TINY.max_episode_steps)
    search = MetaConfig(population=4)
    meta, _ = make_lpg_meta_training(search, TINY, AGENT, make_rule("lpg", hidden=8, y_dim=4), known_baseline(env, 5.0),
                                     None, generations=2, eval_seeds=1)
    hp = lpg_meta_hparams(search, TINY)
    state = meta.init(jax.random.PRNGKey(0), hp)
    update = jax.jit(meta.update)
    for i in range(3):  # new levels (baseline computed), then replayed ones (baseline read from the buffer)
        state, m = update(jax.random.PRNGKey(i), state, None, hp)
        pop = np.asarray(m["population_returns"])
        level_returns = 0.5 * (pop[:2] + pop[2:])
        np.testing.assert_allclose(float(m["level_score_mean"]), 5.0 - level_returns.mean(), atol=1e-5)
        assert float(m["replayed"]) == (1.0 if i > 0 else 0.0)
    buffer = state.curriculum.buffer
    filled = np.asarray(buffer.filled) if hasattr(buffer, "filled") else np.ones(len(np.asarray(buffer.max_returns)), bool)
    np.testing.assert_allclose(np.asarray(buffer.max_returns)[filled & np.isfinite(np.asarray(buffer.max_returns))], 5.0)


def tiny_agent_meta_loss(policy_lr=1.0):
    """One agent on a tiny level (2 updates per meta step) and its meta-loss function."""
    from jaxrl.agents.lpg import make_lpg_agent, make_policy_gradient_objective
    from jaxrl.objectives.lpg_meta import RuleSearchConfig, agent_on_level, level_generator, make_agent_meta_loss

    cfg = AGENT.__class__(num_envs=2, rollout_len=4, y_dim=4, policy_lr=policy_lr, y_lr=1.0)
    env = GridWorld(TINY.grid_size, TINY.max_objects, TINY.max_episode_steps)
    rule = make_rule("lpg", hidden=4, y_dim=4)
    agent = make_lpg_agent(cfg, env, rule, 4, with_critic=True)
    method = RuleSearchConfig(meta_method="meta_gradient", inner_updates=2)
    loss = make_agent_meta_loss(agent, make_policy_gradient_objective(cfg, env), cfg, method)
    level = level_generator(TINY)(jax.random.PRNGKey(3))._replace(lifetime=jnp.asarray(4, jnp.int32))
    start = agent_on_level(agent, lpg_hparams(cfg, rule.init(jax.random.PRNGKey(0)), 4), jax.random.PRNGKey(1), level)
    return rule, loss, start, level


def test_meta_gradient_through_inner_updates_matches_finite_differences():
    """The meta-gradient reaches the rule through the agent's updates: its projection on a random direction
    equals the central difference of the (deterministic, fixed-key) meta-loss."""
    rule, loss, start, level = tiny_agent_meta_loss()
    params = rule.init(jax.random.PRNGKey(0))
    key = jax.random.PRNGKey(7)
    f = jax.jit(lambda p: loss(p, start, level, key)[0])
    grads = jax.jit(jax.grad(f))(params)
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    direction = jax.random.normal(jax.random.PRNGKey(5), flat.shape)
    direction = direction / jnp.linalg.norm(direction)
    analytic = float(jnp.dot(jax.flatten_util.ravel_pytree(grads)[0], direction))
    eps = 1e-2
    numeric = (float(f(unravel(flat + eps * direction))) - float(f(unravel(flat - eps * direction)))) / (2 * eps)
    assert abs(analytic) > 1e-4  # the rule's parameters matter to the updated agent
    np.testing.assert_allclose(analytic, numeric, rtol=0.05, atol=1e-4)


def test_agent_past_its_lifetime_drops_out_of_the_meta_gradient():
    rule, loss, start, level = tiny_agent_meta_loss()
    params = rule.init(jax.random.PRNGKey(0))
    done = start._replace(update_step=jnp.asarray(4, jnp.int32))  # lifetime 4 used up
    both = jax.tree.map(lambda a, b: jnp.stack([a, b]), done, start)
    _, (state, alive, _) = jax.jit(jax.vmap(lambda s: loss(params, s, level, jax.random.PRNGKey(0))))(both)
    np.testing.assert_array_equal(np.asarray(alive), [False, True])
    for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(done.params)):
        np.testing.assert_array_equal(np.asarray(a[0]), np.asarray(b))  # frozen: the rule no longer moves it


@pytest.mark.parametrize("curriculum", ["dr", "plr_pvl"])
def test_meta_gradient_generation_moves_the_rule(curriculum):
    """A meta-gradient generation lives every agent through its lifetime, steps the rule, and (plr_pvl)
    scores its levels by the non-negative positive value loss of their agents."""
    from jaxrl.objectives.lpg_meta import RuleSearchConfig

    levels = TINY.__class__(**{**TINY.__dict__, "curriculum": curriculum})
    search = MetaConfig(population=3, lr=0.05)
    method = RuleSearchConfig(meta_method="meta_gradient", inner_updates=1)
    meta, _ = make_lpg_meta_training(search, levels, AGENT, make_rule("lpg", hidden=8, y_dim=4), None, None,
                                     generations=1, eval_seeds=1, method=method)
    hp = lpg_meta_hparams(search, levels)
    state = meta.init(jax.random.PRNGKey(0), hp)
    new, m = jax.jit(meta.update)(jax.random.PRNGKey(1), state, None, hp)
    assert m["population_returns"].shape == (3,) and np.isfinite(float(m["meta_loss"]))
    moved = sum(float(jnp.abs(a - b).max()) for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(state.params)))
    assert moved > 0
    if curriculum == "plr_pvl":
        scores = np.asarray(new.curriculum.buffer.scores)[np.asarray(new.curriculum.buffer.filled)]
        assert len(scores) == 3 and (scores >= 0).all() and np.isfinite(scores).all()
        np.testing.assert_allclose(scores.mean(), float(m["level_score_mean"]), rtol=1e-5)


TINY_ARGV = ["--objective", "lpg", "--levels", "gridworld", "--population", "4", "--generations", "2", "--num-seeds", "1",
             "--grid-size", "4", "--max-objects", "1", "--max-episode-steps", "8", "--lifetime-min", "2",
             "--lifetime-max", "2", "--num-walls", "1", "--held-out-levels", "1", "--capacity", "4", "--num-envs", "2",
             "--rollout-len", "4", "--rule-hidden", "8", "--num-chunks", "2", "--quiet"]


from jaxrl.programs.meta_train import main as meta_train_main  # noqa: E402


@pytest.mark.parametrize("argv, flag", [
    (["--objective", "lpg"], "--levels gridworld"),
    (["--objective", "lpg", "--levels", "gridworld", "--curriculum", "hand_designed", "--grid-size", "7"], "--curriculum hand_designed"),
    (["--objective", "lpg", "--levels", "gridworld", "--lifetime-min", "9", "--lifetime-max", "3"], "--lifetime-min"),
    (["--objective", "lpo", "--levels", "gridworld"], "--levels"),
    (["--objective", "lpg", "--levels", "gridworld", "--curriculum", "plr_regret"], "--curriculum"),
    (["--objective", "lpg", "--levels", "gridworld", "--meta-method", "meta_gradient", "--inner-updates", "9",
      "--lifetime-max", "3", "--lifetime-min", "3"], "--inner-updates"),
    (["--objective", "lpo", "--inner-timesteps", "100", "--inner-timesteps-min", "1000"], "--inner-timesteps-min"),
    (["--objective", "lpg", "--levels", "gridworld", "--inner-timesteps-min", "1000"], "--inner-timesteps-min"),
])
def test_bad_rule_options_are_one_line_and_exit_2(argv, flag, tmp_path, capsys):
    out = tmp_path / "run"
    assert meta_train_main([*argv, "--out-dir", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and flag in err[0] and not out.exists()


@pytest.mark.slow
def test_meta_train_meta_test_usage(tmp_path, capsys):
    """The usage of the LPG issue at tiny sizes: meta-train (groove), resume, train with the saved rule, meta-test."""
    from jaxrl.evaluation.meta_test import main as meta_test_main
    from jaxrl.programs.train import main as train_main

    out = tmp_path / "groove"
    assert meta_train_main([*TINY_ARGV, "--curriculum", "groove", "--out-dir", str(out)]) == 0
    summary = __import__("json").loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and np.isfinite(summary["final_return_mean"])
    assert (out / "best" / "objective.json").is_file() and (out / "fitness_curve.png").is_file()
    assert meta_train_main(["--resume", str(out), "--quiet"]) == 0
    assert train_main(["--algo", "lpg", "--rule", str(out / "best"), "--env", "GridWorld-sparse", "--total-timesteps", "64",
                       "--num-envs", "2", "--rollout-len", "4", "--num-chunks", "1", "--quiet",
                       "--out-dir", str(tmp_path / "lpg_sparse")]) == 0
    report = tmp_path / "report"
    assert meta_test_main([str(out / "best"), "--envs", "GridWorld-sparse,GridWorld-dense", "--timesteps", "1280",
                           "--num-seeds", "2", "--baselines", "a2c", "--reps", "100", "--out", str(report)]) == 0
    # grid worlds have no score-table entry: one report per environment, nothing aggregated across them
    assert (report / "horizon_1280" / "GridWorld-sparse" / "report.md").is_file()
    assert (report / "horizon_1280" / "GridWorld-dense" / "report.md").is_file()
    assert __import__("json").loads((report / "meta_test.json").read_text())["per_environment"]


def test_meta_test_refuses_table_normalisation_without_scores_before_training(tmp_path, capsys):
    from jaxrl.evaluation.meta_test import main as meta_test_main

    out = tmp_path / "report"
    with pytest.raises(SystemExit) as exit_info:
        meta_test_main(["ppo_clip", "--envs", "CartPole-v1,GridWorld-sparse", "--normalize", "table", "--out", str(out)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--normalize" in err[0] and "GridWorld-sparse" in err[0] and not out.exists()


def test_meta_test_trains_a_rule_with_the_agent_it_was_meta_trained_with(tmp_path):
    """On a grid world the saved agent settings come back as train.py flags; elsewhere only the rollout length
    (the trajectories the rule reads) with the deep agent's network and optimiser."""
    import dataclasses

    from jaxrl.evaluation.meta_test import method_flags
    from jaxrl.objectives import save_objective
    from jaxrl.programs.train import resolve

    rule = make_rule("lpg", hidden=4, y_dim=4)
    agent = dataclasses.replace(AGENT, num_envs=3, rollout_len=7, policy_lr=12.0)
    save_objective(tmp_path / "rule", rule, rule.init(jax.random.PRNGKey(0)), {"agent": dataclasses.asdict(agent)})
    grid = resolve([*method_flags(str(tmp_path / "rule"), "GridWorld-sparse"), "--env", "GridWorld-sparse"])
    assert (grid.algo.num_envs, grid.algo.rollout_len, grid.algo.policy_lr, grid.algo.y_dim) == (3, 7, 12.0, 4)
    deep = resolve([*method_flags(str(tmp_path / "rule"), "Breakout-MinAtar"), "--env", "Breakout-MinAtar"])
    assert deep.algo.rollout_len == 7 and deep.algo.hidden_sizes == (64, 64) and deep.algo.optimizer == "adam"


def test_maxmc_scores_are_the_best_return_seen_minus_the_rules():
    """ES with PLR scored by MaxMC: a new level's score is the better pair member's return minus the pair's mean."""
    levels = TINY.__class__(**{**TINY.__dict__, "curriculum": "plr_maxmc"})
    search = MetaConfig(population=4)
    meta, _ = make_lpg_meta_training(search, levels, AGENT, make_rule("lpg", hidden=8, y_dim=4), None, None,
                                     generations=1, eval_seeds=1)
    hp = lpg_meta_hparams(search, levels)
    state, m = jax.jit(meta.update)(jax.random.PRNGKey(1), meta.init(jax.random.PRNGKey(0), hp), None, hp)
    pop = np.asarray(m["population_returns"])
    pairs = np.stack([pop[:2], pop[2:]])
    np.testing.assert_allclose(float(m["level_score_mean"]), (pairs.max(0) - pairs.mean(0)).mean(), atol=1e-5)
    buffer = state.curriculum.buffer
    np.testing.assert_allclose(np.sort(np.asarray(buffer.max_returns)[np.asarray(buffer.filled)]), np.sort(pairs.max(0)),
                               atol=1e-5)
