"""Meta-training an objective: a generation of whole PPO runs in one program improves the objective."""
import jax
import numpy as np
import pytest

from jaxrl import envs
from jaxrl.agents.ppo import PPOConfig, hparams_from_config, make_ppo
from jaxrl.evolution import evolution_hparams
from jaxrl.training.loop import make_runner
from jaxrl.objectives.meta import MetaConfig, make_inner_fitness, make_meta_training, population_fitness


def _probe_problem():
    """A contextual bandit whose stochastic evaluation return is the probability of the right
    action after 6 PPO updates: fitness measures how fast an objective learns."""
    env = envs.make("probe/ObservationAndActionDependentReward")
    cfg = PPOConfig(objective="lpo", drift_hidden=8, drift_init="random", num_envs=8, rollout_len=4, hidden_sizes=(8,),
                    num_minibatches=1, num_epochs=4, lr=1e-2, anneal_lr=False, ent_coef=0.0)
    inner = make_ppo(cfg, env, total_timesteps=8 * 4 * 6, num_eval_episodes=64, deterministic_eval=False)
    return env, inner, hparams_from_config(cfg)


def test_population_fitness_is_the_inner_run_per_member_and_seed():
    env, inner, hp = _probe_problem()
    run = make_inner_fitness(inner, env.default_params, hp)
    members = jax.tree.map(lambda p: np.stack([p, 2.0 * p]), hp.objective_params)
    key = jax.random.PRNGKey(4)
    table = jax.jit(lambda k, m: population_fitness(run, k, m, 3))(key, members)
    assert table.shape == (2, 3)
    seed_keys = jax.random.split(key, 3)
    one = jax.jit(run)(seed_keys[2], jax.tree.map(lambda m: m[1], members))
    np.testing.assert_allclose(table[1, 2], one, rtol=1e-5)


def test_traced_horizon_trains_that_many_updates_with_its_schedule():
    """A PPO built for 6 updates, run with a traced horizon of 3: updates 0-2 anneal the learning rate and
    advance n / N over 3 (what a 3-update run does), and later updates leave the parameters unchanged."""
    from jaxrl.objectives.meta import draw_horizon

    env = envs.make("probe/ObservationAndActionDependentReward")
    cfg = PPOConfig(num_envs=4, rollout_len=4, hidden_sizes=(8,), num_minibatches=1, num_epochs=1, lr=1e-2, anneal_lr=True)
    inner = make_ppo(cfg, env, total_timesteps=4 * 4 * 6)
    hp = hparams_from_config(cfg)._replace(horizon=np.float32(3.0))
    state = inner.init(jax.random.PRNGKey(0), hp)
    update = jax.jit(inner.update)
    params = []
    for i in range(6):
        state, m = update(jax.random.PRNGKey(i), state, env.default_params, hp)
        if i < 3:
            np.testing.assert_allclose(float(m["learning_rate"]), 1e-2 * (1 - i / 3), rtol=1e-5)
        params.append(jax.tree.leaves(state.params))
    for later in params[3:]:
        for a, b in zip(later, params[2]):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert any(float(np.abs(a - b).max()) > 0 for a, b in zip(params[1], params[0]))
    assert float(draw_horizon(jax.random.PRNGKey(0), None)) == -1.0
    drawn = np.asarray(jax.vmap(lambda k: draw_horizon(k, (4, 64)))(jax.random.split(jax.random.PRNGKey(1), 2000)))
    assert drawn.min() >= 4 and drawn.max() <= 64 and (drawn == np.round(drawn)).all()
    assert abs(np.median(drawn) - 16) <= 2  # log-uniform: the median is the geometric mean


def test_meta_training_increases_fitness():
    """Fixed seeds: starting from an objective that learns slowly (a random drift network,
    scaled up), 15 generations of OpenAI-ES raise the population's mean fitness and the
    search mean's fitness on 64 held-fixed inner seeds (measured: 0.55 -> 0.85)."""
    env, inner, hp = _probe_problem()
    start = jax.tree.map(lambda x: 3.0 * x, hp.objective_params)
    generations = 15
    meta_cfg = MetaConfig(population=16, seeds_per_member=4, sigma=0.1, lr=0.05)
    agent = make_meta_training(meta_cfg, inner, env.default_params, hp, start, generations, eval_seeds=4)
    runner = make_runner(agent, env.default_params, generations, evaluate_each_chunk=False)
    outer_hp = evolution_hparams(meta_cfg)
    state = jax.jit(runner.init)(jax.random.PRNGKey(0), outer_hp)
    chunk = jax.jit(runner.run_chunk)
    means = []
    for g in range(generations):
        state, metrics = chunk(state, outer_hp, np.int32(g))
        means.append(float(metrics["return_mean"][0]))
    assert np.mean(means[-3:]) > np.mean(means[:3]) + 0.15, means

    held_out = jax.jit(jax.vmap(make_inner_fitness(inner, env.default_params, hp), in_axes=(0, None)))
    keys = jax.random.split(jax.random.PRNGKey(123), 64)
    before, after = float(held_out(keys, start).mean()), float(held_out(keys, state.agent_state.params).mean())
    assert after > before + 0.15, (before, after)


def test_meta_presets_resolve():
    from pathlib import Path

    from jaxrl.programs.meta_train import resolve

    root = Path(__file__).resolve().parents[1]
    presets = sorted((root / "configs").glob("meta_*.yaml"))
    assert {"meta_lpo_cartpole.yaml", "meta_ta_lpo_cartpole.yaml", "meta_lpo_breakout_minatar.yaml"} <= {p.name for p in presets}
    import os

    cwd = os.getcwd()
    os.chdir(root)  # presets name inner PPO presets relative to the repository root
    try:
        for preset in presets:
            cfg = resolve(["--config", str(preset)])
            assert cfg.search.objective in ("lpo", "ta_lpo", "lpg", "ta_lpg")
            assert (cfg.search.levels == "gridworld") == (cfg.search.objective in ("lpg", "ta_lpg"))
    finally:
        os.chdir(cwd)


def test_meta_train_command_writes_objectives_and_refuses_bad_input(tmp_path, capsys):
    """End to end on a tiny setting: the run directory, best/ and final/ objectives with their
    drift figure, summary fields; a saved objective then trains with train.py; bad flags exit 2."""
    import json

    from jaxrl.programs.train import main as train_main
    from jaxrl.objectives import is_saved_objective
    from jaxrl.programs.meta_train import main

    out = tmp_path / "meta"
    args = ["--objective", "ta_lpo", "--env", "probe/ObservationAndActionDependentReward", "--population", "4",
            "--seeds-per-member", "1", "--generations", "2", "--num-chunks", "2", "--inner-timesteps", "512",
            "--inner-eval-episodes", "8", "--eval-episodes", "2", "--drift-hidden", "4", "--drift-init", "random",
            "--quiet", "--out-dir", str(out)]
    assert main(args) == 0
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "fitness_curve.png", "curves.npz", "best/drift.png"):
        assert (out / name).is_file(), name
    assert is_saved_objective(out / "best") and is_saved_objective(out / "final")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["objective"] == "ta_lpo" and summary["generations"] == 2 and len(summary["final_returns"]) == 1
    assert summary["best_eval_fitness"] is not None and summary["best_eval_fitness"] >= summary["final_return_mean"] - 1e-9

    tiny = ["--env", "CartPole-v1", "--total-timesteps", "512", "--num-envs", "4", "--rollout-len", "32", "--num-chunks", "1",
            "--eval-episodes", "2", "--hidden-sizes", "8", "--checkpoint-every", "0", "--quiet"]
    assert train_main([*tiny, "--objective", str(out / "best"), "--out-dir", str(tmp_path / "train")]) == 0

    capsys.readouterr()
    for bad, flag in ((["--objective", "mdpo"], "--objective"), (["--population", "5"], "--population"),
                      (["--inner-timesteps", "100"], "--inner-timesteps"), (["--env", "NoSuchEnv-v0"], "--env")):
        assert main([*bad, "--out-dir", str(tmp_path / "bad")]) == 2
        err = capsys.readouterr().err.strip()
        assert flag in err and "\n" not in err, err
        assert not (tmp_path / "bad").exists()
    assert main(args) == 2  # the run directory exists: no overwrite without --overwrite
    assert "--out-dir" in capsys.readouterr().err


@pytest.mark.slow
def test_meta_test_command_compares_objectives_per_horizon(tmp_path, capsys):
    """A saved objective against PPO on one environment and horizon: both trained, one report
    with both methods; bad input exits 2 with one line before anything is trained."""
    import json

    import jax

    from jaxrl.evaluation.meta_test import main
    from jaxrl.objectives import make_objective, save_objective

    objective = make_objective("lpo", drift_hidden=4, drift_init="random")
    save_objective(tmp_path / "best", objective, objective.init(jax.random.PRNGKey(0)))
    preset = tmp_path / "tiny.yaml"
    preset.write_text("num_envs: 4\nrollout_len: 16\nhidden_sizes: [8]\nnum_chunks: 1\neval_episodes: 2\n")
    out = tmp_path / "test"
    args = [str(tmp_path / "best"), "--envs", "CartPole-v1", "--timesteps", "256", "--baselines", "ppo_clip",
            "--num-seeds", "3", "--reps", "200", "--preset", f"CartPole-v1={preset}", "--out", str(out)]
    assert main(args) == 0
    result = json.loads((out / "meta_test.json").read_text())["results"]["256"]
    methods = sorted(result["aggregates"])
    assert len(methods) == 2 and methods[0].startswith("lpo (learned: ") and methods[1] == "ppo_clip", methods
    assert (out / "horizon_256" / "report.md").is_file()

    capsys.readouterr()
    for bad, flag in ((["--timesteps", "x"], "--timesteps"), (["--baselines", "sgd"], "--baselines"),
                      (["--envs", "NoSuchEnv-v0"], "--envs"), (["--num-seeds", "0"], "--num-seeds")):
        with_bad = [*args[:1], "--envs", "CartPole-v1", "--timesteps", "256", *bad, "--out", str(tmp_path / "bad")]
        try:
            code = main(with_bad)
        except SystemExit as e:
            code = e.code
        assert code == 2
        err = capsys.readouterr().err.strip()
        assert flag in err and "\n" not in err, err
        assert not (tmp_path / "bad").exists()
