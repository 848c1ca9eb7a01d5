"""Evolution: the maximising adapter, each strategy on a known quadratic, the Deep-GA's selection,
rollout fitness, novelty, the deceptive maze, the CLI and a whole run (resume, saved policy)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import envs
from jaxrl.envs import RunningMeanStd
from jaxrl.envs.deceptive_maze import GOAL, HORIZONTAL_WALLS, VERTICAL_WALLS, crosses
from jaxrl.evolution import (
    EvolutionConfig,
    EvolutionHParams,
    archive_init,
    archive_insert,
    centered_ranks,
    episode_rollout,
    evosax_fitness,
    knn_novelty,
    make_population_fitness,
    make_strategy,
    z_score,
)
from jaxrl.programs.evolve import evolve, main, resolve
from jaxrl.evolution.fitness import update_obs_stats
from jaxrl.evolution.strategies import deep_ga_ask, deep_ga_init, deep_ga_tell
from jaxrl.io import load_policy
from jaxrl.io.policy import evaluate_run

ROOT = Path(__file__).resolve().parents[1]
EVOLVE = [sys.executable, str(ROOT / "experiments" / "evolve.py")]
TARGET = jnp.linspace(-1.0, 1.0, 8)


def test_returns_become_negated_fitness_in_one_place():
    np.testing.assert_array_equal(evosax_fitness(jnp.array([1.0, -2.0, 3.0])), [-1.0, 2.0, -3.0])


def test_fitness_shapings():
    np.testing.assert_allclose(centered_ranks(jnp.array([3.0, 1.0, 2.0, 10.0])), [1 / 6, -0.5, -1 / 6, 0.5], atol=1e-6)
    z = z_score(jnp.array([1.0, 2.0, 3.0, 6.0]))
    np.testing.assert_allclose([z.mean(), z.std()], [0.0, 1.0], atol=1e-5)


def _search_quadratic(name, shaping="auto", generations=80):
    """Maximises ``-||x - TARGET||^2`` from x = 0; returns the squared distance before and after."""
    strategy = make_strategy(name, TARGET.shape[0], 32, fitness_shaping=shaping, num_parents=5)
    hp = EvolutionHParams(sigma=jnp.float32(0.3), lr=jnp.float32(0.05))
    state = strategy.init(jax.random.PRNGKey(0), jnp.zeros_like(TARGET), hp)

    def generation(state, key):
        key_ask, key_tell = jax.random.split(key)
        population, state = strategy.ask(key_ask, state, hp)
        returns = -jnp.sum((population - TARGET) ** 2, axis=-1)  # a return: higher is better
        return strategy.tell(key_tell, population, returns, state, hp), None

    before = float(jnp.sum((strategy.solution(state) - TARGET) ** 2))
    state, _ = jax.jit(lambda s: jax.lax.scan(generation, s, jax.random.split(jax.random.PRNGKey(1), generations)))(state)
    return before, float(jnp.sum((strategy.solution(state) - TARGET) ** 2))


@pytest.mark.parametrize("name,shaping", [("openai_es", "auto"), ("openai_es", "z_score"), ("snes", "auto"),
                                          ("cma_es", "auto"), ("ga", "auto")])
def test_every_strategy_maximises_a_known_quadratic(name, shaping):
    before, after = _search_quadratic(name, shaping)
    # The GA starts from sigma-noise around 0 (its ``solution`` before any tell is individual 0).
    assert after < 0.1 * max(before, 2.0), (name, before, after)


def test_deep_ga_truncation_elitism_and_mutation():
    population = jnp.arange(12.0).reshape(6, 2)
    returns = jnp.array([0.0, 5.0, 1.0, 9.0, 2.0, 3.0])  # best: row 3, then rows 1, 5
    state = deep_ga_tell(population, evosax_fitness(returns), evosax_fitness(returns), deep_ga_init(None, population))
    # sigma 0: offspring are exact copies of the top-3 parents; the elite comes first, unchanged.
    nxt = deep_ga_ask(jax.random.PRNGKey(0), state, num_parents=3, sigma=0.0)
    np.testing.assert_array_equal(nxt[0], population[3])
    top = {tuple(np.asarray(population[i])) for i in (3, 1, 5)}
    assert {tuple(r) for r in np.asarray(nxt)} <= top
    mutated = deep_ga_ask(jax.random.PRNGKey(0), state, num_parents=3, sigma=0.5)
    np.testing.assert_array_equal(mutated[0], population[3])
    assert not np.any(np.all(np.asarray(mutated[1:])[:, None] == np.asarray(population)[None], -1))
    np.testing.assert_array_equal(state.best_solution, population[3])


def test_maze_walls_goal_and_rewards():
    p = jnp.array([0.0, -0.1])
    assert crosses(p, jnp.array([0.0, 0.1]), jnp.asarray(HORIZONTAL_WALLS), 1)
    assert not crosses(p, jnp.array([0.0, -0.05]), jnp.asarray(HORIZONTAL_WALLS), 1)
    assert not crosses(jnp.array([0.7, -0.1]), jnp.array([0.7, 0.1]), jnp.asarray(HORIZONTAL_WALLS), 1)
    assert crosses(jnp.array([0.55, -0.3]), jnp.array([0.65, -0.3]), jnp.asarray(VERTICAL_WALLS), 0)
    env = envs.make("DeceptiveMaze-v0", max_steps=200)
    params = env.default_params
    key = jax.random.PRNGKey(0)
    # Straight up: stuck under the bar, the deceptive optimum (return -0.65 at y = -0.05).
    ret, final, *_ = episode_rollout(key, lambda o: jnp.array([0.0, 1.0]), env, params, 200, None)
    np.testing.assert_allclose(final, [0.0, -0.05], atol=1e-5)
    np.testing.assert_allclose(ret, -0.65, atol=1e-5)
    # Out through the bottom, round the right wall, up and left: reaches the goal (return 0, early end).
    def around(o):
        x, y = o[0], o[1]
        go_down = (jnp.abs(x) < 0.75) & (y < 0.05)
        return jnp.where(go_down & (y > -0.8), jnp.array([0.0, -1.0]),
                         jnp.where(go_down, jnp.array([1.0, 0.0]),
                                   jnp.where(y < 0.6, jnp.array([0.0, 1.0]), jnp.array([-1.0, 0.0]))))
    ret, final, _, _, count = episode_rollout(key, around, env, params, 200, None)
    assert float(ret) == 0.0 and float(jnp.linalg.norm(final - GOAL)) < 0.1 and float(count) < 200


def test_population_fitness_is_mean_first_episode_return_and_pools_observations():
    env = envs.make("DeceptiveMaze-v0", max_steps=10)
    actions = jnp.array([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]])  # one "parameter" per individual: its action
    fitness = make_population_fitness(env, lambda a, obs: a, num_episodes=2, num_steps=25, behaviour_fn=lambda o: o[:1])
    r = fitness(jax.random.PRNGKey(0), actions, None, env.default_params)
    single = [episode_rollout(jax.random.PRNGKey(1), lambda o, a=a: a, env, env.default_params, 25, None) for a in actions]
    np.testing.assert_allclose(r.returns, [float(s[0]) for s in single], atol=1e-6)  # deterministic: every episode alike
    np.testing.assert_allclose(r.behaviour[:, 0], [float(s[1][0]) for s in single], atol=1e-6)
    assert r.episode_returns.shape == (3, 2) and float(r.obs_count) == 3 * 2 * 10  # only steps of the first episode
    # Observations the population acted on, pooled: the shared statistics' update equals a direct one.
    def observations(a):  # what each individual acted on: 10 steps of its deterministic path
        def step(carry, _):
            state, o = carry
            state, ts = env.step(jax.random.PRNGKey(0), state, a, None)
            return (state, ts.obs), o
        return jax.lax.scan(step, env.reset(jax.random.PRNGKey(0), None), None, length=10)[1]

    obs = np.asarray(jax.jit(jax.vmap(observations))(actions)).reshape(-1, 2)
    obs = np.concatenate([obs, obs])
    direct = RunningMeanStd.create((2,)).update(jnp.asarray(obs))
    pooled = update_obs_stats(RunningMeanStd.create((2,)), r)
    np.testing.assert_allclose(pooled.mean, direct.mean, atol=1e-5)
    np.testing.assert_allclose(pooled.var, direct.var, atol=1e-5)


def test_knn_novelty_and_ring_archive():
    behaviours = jnp.array([[0.0], [1.0], [3.0]])
    archive = archive_init(2, 1)
    np.testing.assert_allclose(knn_novelty(behaviours, archive, 1), [1.0, 1.0, 2.0])
    np.testing.assert_allclose(knn_novelty(behaviours, archive, 2), [2.0, 1.5, 2.5])
    archive = archive_insert(archive, jnp.array([[3.5]]))
    np.testing.assert_allclose(knn_novelty(behaviours, archive, 1), [1.0, 1.0, 0.5])
    archive = archive_insert(archive, jnp.array([[7.0], [8.0]]))  # wraps: 3.5 is overwritten by 8.0
    assert int(archive.size) == 2
    np.testing.assert_allclose(np.sort(np.asarray(archive.behaviours[:, 0])), [7.0, 8.0])


def test_novelty_search_escapes_the_deceptive_maze_where_fitness_ga_does_not():
    common = dict(strategy="ga", env="DeceptiveMaze-v0", population=128, generations=60, episodes=1, sigma=0.1,
                  num_seeds=2, num_chunks=1, eval_episodes=1, quiet=True)
    fitness_only = evolve(**common)
    novelty = evolve(novelty=True, **common)
    assert max(fitness_only.summary["final_returns"]) < -0.5  # every seed trapped under the bar
    assert min(novelty.summary["final_returns"]) > -0.1  # every seed reached the goal


def test_openai_es_and_ga_improve_cartpole_return():
    for strategy in ("openai_es", "ga"):
        result = evolve(strategy=strategy, env="CartPole-v1", population=64, generations=12, episodes=1,
                        episode_len=200, sigma=0.1 if strategy == "openai_es" else 0.05, num_chunks=1,
                        eval_episodes=1, quiet=True)
        pop = result.curves["population_returns"][:, 0, 0]  # [G, N]
        assert pop[-3:].mean() > 2 * pop[:3].mean() + 20, (strategy, pop.mean(-1))


def test_presets_resolve():
    presets = [p for p in sorted((ROOT / "configs").glob("*.yaml")) if "strategy" in p.read_text()]
    assert {"es_openai_cartpole.yaml", "ga_cartpole.yaml", "cmaes_pendulum.yaml", "snes_pendulum.yaml"} <= {p.name for p in presets}
    for preset in presets:
        resolve(["--config", str(preset)])


BAD = [
    (["--strategy", "pso"], "--strategy", "openai_es, snes, cma_es, ga"),
    (["--population", "255"], "--population", "even"),
    (["--population", "1"], "--population", ">= 2"),
    (["--strategy", "cma_es", "--novelty"], "--novelty", "--strategy ga"),
    (["--strategy", "snes", "--fitness-shaping", "z_score"], "--fitness-shaping", "auto"),
    (["--fitness-shaping", "ranks"], "--fitness-shaping", "centered_rank"),
    (["--strategy", "ga", "--num-parents", "300"], "--num-parents", "<= --population"),
    (["--env", "CartPol-v1"], "--env", "CartPole-v1"),
    (["--sigma", "0"], "--sigma", "> 0"),
    (["--generations", "x"], "--generations", "expected int"),
]


@pytest.mark.parametrize("argv,flag,hint", BAD)
def test_bad_flags_are_one_line_exit_2(argv, flag, hint, capsys, tmp_path):
    out = tmp_path / "run"
    assert main([*argv, "--out-dir", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and flag in err and hint in err, err
    assert not out.exists()


def test_cli_refuses_to_overwrite_without_traceback(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    proc = subprocess.run([*EVOLVE, "--out-dir", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "--out-dir" in proc.stderr and "--overwrite" in proc.stderr
    assert (out / "summary.json").read_text() == "{}"


def _leaves(run_dir):
    from flax import serialization

    ckpt = sorted(int(p.name) for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit())[-1]
    payload = (run_dir / "checkpoints" / str(ckpt) / "state" / "state.msgpack").read_bytes()
    return jax.tree.leaves(serialization.msgpack_restore(payload)["state"])


def test_run_directory_resume_bit_exact_and_saved_policy(tmp_path):
    ref, resumed = tmp_path / "ref", tmp_path / "resumed"
    args = ["--strategy", "openai_es", "--env", "DeceptiveMaze-v0", "--population", "8", "--generations", "6",
            "--episodes", "2", "--episode-len", "30", "--num-seeds", "2", "--num-chunks", "3", "--eval-episodes", "3",
            "--normalize-obs", "--quiet"]
    assert main([*args, "--out-dir", str(ref)]) == 0
    summary = json.loads((ref / "summary.json").read_text())
    for key in ("final_return_mean", "final_returns", "generations_per_second", "env_steps_per_second"):
        assert key in summary
    assert len(summary["final_returns"]) == 2 and summary["env_steps_per_generation"] == 8 * 2 * 30
    for name in ("config.yaml", "metrics.jsonl", "curves.npz", "fitness_curve.png", "reproducibility.json"):
        assert (ref / name).is_file(), name
    assert np.load(ref / "curves.npz")["population_returns"].shape == (6, 1, 2, 8)  # [generations, grid, seeds, population]

    # An interrupted run: the newest checkpoint and the rows after the previous one are lost.
    shutil.copytree(ref, resumed)
    shutil.rmtree(resumed / "checkpoints" / "3")
    (resumed / "summary.json").unlink()
    rows = (resumed / "metrics.jsonl").read_text().splitlines()
    (resumed / "metrics.jsonl").write_text("\n".join(rows[:5]) + "\n")
    assert main(["--resume", str(resumed), "--quiet"]) == 0
    for a, b in zip(_leaves(ref), _leaves(resumed)):
        np.testing.assert_array_equal(a, b)
    strip = lambda r: {k: v for k, v in json.loads(r).items() if "per_second" not in k}  # noqa: E731
    assert [strip(r) for r in (resumed / "metrics.jsonl").read_text().splitlines()] == [strip(r) for r in rows]

    policy = load_policy(ref, member=1)
    assert policy.obs_stats is not None  # the population's shared statistics travel with the policy
    _, obs = policy.env.reset(jax.random.PRNGKey(0), policy.env.default_params)
    action = np.asarray(policy(obs))
    assert action.shape == (2,) and np.all(np.abs(action) <= 1)
    _, returns = evaluate_run(ref, episodes=3)
    assert returns.shape == (2, 3)


def test_vmapped_seeds_equal_single_runs():
    from jaxrl.programs.evolve import build

    cfg = resolve(["--strategy", "snes", "--env", "DeceptiveMaze-v0", "--population", "6", "--generations", "3",
                   "--episodes", "1", "--episode-len", "10", "--num-chunks", "1", "--eval-episodes", "1", "--num-seeds", "2"])
    built = build(cfg)
    runner, hparams = built.runner, built.hparams
    keys = jax.random.split(jax.random.PRNGKey(cfg.run.seed), cfg.run.num_seeds)
    def run_both(keys):
        return jax.vmap(lambda k: runner.run_chunk(runner.init(k, hparams), hparams, 0))(keys)

    both, both_metrics = jax.jit(run_both)(keys)
    single, metrics = jax.jit(lambda k: runner.run_chunk(runner.init(k, hparams), hparams, 0))(keys[1])
    np.testing.assert_allclose(both_metrics["population_returns"][1], metrics["population_returns"], rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(jax.tree.map(lambda x: x[1], both)), jax.tree.leaves(single)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
