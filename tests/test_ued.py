"""The UED iteration (curriculum + PPO in one compiled update): robust PLR and ACCEL take no
gradient step on new or mutated levels, the level buffer fills, seeds vmap, and short CPU runs
of DR, PLR and ACCEL learn to solve simple mazes."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.agents.base import policy_parts
from jaxrl.agents.ppo import PPOConfig
from jaxrl.curricula import CurriculumConfig
from jaxrl.envs import FlattenObservation
from jaxrl.envs.levels.maze import Maze, generate_level, level_from_strings, mutate_level
from jaxrl.training.loop import make_train
from jaxrl.curricula.ued import make_ued, ued_hparams

SIZE = 5
EVAL_MAZES = ((">....", ".....", ".....", ".....", "....G"), ("....G", ".....", "..#..", ".....", "^...."))


def build(method, total_timesteps, max_steps=20, num_walls=3, **ppo_overrides):
    env = FlattenObservation(Maze(SIZE, SIZE, max_steps=max_steps))
    levels = [level_from_strings(rows, SIZE, SIZE) for rows in EVAL_MAZES]
    eval_levels = jax.tree.map(lambda *x: jnp.stack(x), *levels)
    ppo = PPOConfig(**{**dict(rollout_len=32, num_epochs=4, num_minibatches=4, lr=1e-3, hidden_sizes=(64, 64), anneal_lr=False,
                              gamma=0.95), **ppo_overrides})
    curriculum = CurriculumConfig(method=method, num_levels=16, capacity=256, replay_prob=0.5, min_fill=0.25, num_edits=2)
    agent = make_ued(ppo, curriculum, env, total_timesteps, lambda k: generate_level(k, SIZE, SIZE, num_walls),
                     lambda k, lv: mutate_level(k, lv, curriculum.num_edits), eval_levels, num_eval_episodes=8)
    return agent, ued_hparams(ppo, curriculum)


def test_no_gradient_step_on_new_or_mutated_levels():
    agent, hp = build("accel", 16 * 4 * 12, max_steps=4, rollout_len=4, num_epochs=1, num_minibatches=1, hidden_sizes=(8,), anneal_lr=True)

    @jax.jit
    def run(key):
        def body(state, key):
            new_state, metrics = agent.update(key, state, None, hp)
            unchanged = jnp.all(jnp.stack([jnp.array_equal(a, b) for a, b in zip(jax.tree.leaves(policy_parts(agent, state)[0]),
                                                                                 jax.tree.leaves(policy_parts(agent, new_state)[0]))]))
            return new_state, (unchanged, metrics, new_state.agent.update_step)

        return jax.lax.scan(body, agent.init(key, hp), jax.random.split(key, 12))

    state, (unchanged, metrics, steps) = jax.device_get(run(jax.random.PRNGKey(0)))
    trained, replayed, mutated = (np.asarray(metrics[k]) == 1.0 for k in ("trained", "replayed", "mutated"))
    np.testing.assert_array_equal(trained, replayed)  # accel is robust: only replayed batches are learned from
    np.testing.assert_array_equal(unchanged, ~trained)
    # The optimiser's step count (which drives the learning-rate schedule) advances on gradient steps only.
    np.testing.assert_array_equal(steps, np.cumsum(trained))
    np.testing.assert_array_equal(np.asarray(metrics["gradient_updates"]), np.cumsum(trained))
    lr = np.asarray(metrics["learning_rate"])[trained]  # the annealed rate of the k-th gradient step: lr (1 - k / 12)
    np.testing.assert_allclose(lr, 1e-3 * (1 - np.arange(trained.sum()) / 12), rtol=1e-6)
    assert replayed.any() and mutated.any() and (~replayed & ~mutated).any()  # new, replayed and mutated batches
    np.testing.assert_array_equal(mutated[1:], replayed[:-1])  # a mutated batch follows every replay
    assert np.asarray(state.curriculum.buffer.filled).any()


def solve_rates(method, seeds):
    """Held-out solve rates ``[S, L]`` after a short run, and the training levels' solve rate over its last 10 updates."""
    agent, hp = build(method, 16 * 32 * 300, max_steps=32)
    train = jax.jit(jax.vmap(make_train(agent, None, num_chunks=1, evaluate_each_chunk=True), in_axes=(0, None)))
    _, metrics = train(jax.random.split(jax.random.PRNGKey(0), seeds), hp)
    returns = np.asarray(metrics["eval_returns"])[:, -1].reshape(seeds, len(EVAL_MAZES), -1)  # last chunk: [S, L, E]
    return (returns > 0).mean(axis=2), np.asarray(metrics["train_solve_rate"])[:, -1, -10:].mean()


@pytest.mark.slow
@pytest.mark.parametrize("method", ["dr", "plr", "accel"])
def test_short_runs_learn_to_solve_simple_mazes(method):
    # The initial policy solves neither held-out maze within the time limit (solve rate 0). Single seeds
    # range from 0 to 1 on the held-out mazes at this budget (and move with the CPU's floating-point
    # kernels), so the bar is on the mean of 8 vmapped seeds.
    held_out, training = solve_rates(method, seeds=8)
    assert held_out.mean() >= 0.4 and training >= 0.7, (held_out, training)


def test_entry_point_writes_the_run_and_resumes_bit_exactly(tmp_path, capsys):
    from jaxrl.programs.ued import main

    run = tmp_path / "run"
    argv = ["--method", "robust_plr", "--num-seeds", "2", "--total-timesteps", str(4 * 16 * 4), "--num-levels", "4",
            "--rollout-len", "16", "--num-minibatches", "2", "--num-epochs", "1", "--hidden-sizes", "16", "--capacity", "8",
            "--min-fill", "0.25", "--num-chunks", "2", "--eval-episodes", "1", "--max-steps", "16", "--quiet", "--out-dir", str(run)]
    assert main(argv) == 0
    import json

    summary = json.loads((run / "summary.json").read_text())
    assert set(summary["held_out_solve_rate"]) >= {"OpenRoom", "FourRooms", "Labyrinth"}
    assert len(summary["final_returns"]) == 2
    for name in ("config.yaml", "metrics.jsonl", "curves.npz", "solve_rate_curve.png", "held_out_levels.png", "buffer_levels.png",
                 "held_out_trajectories.png", "buffer_levels/chunk_001.png", "buffer_levels/chunk_002.png"):
        assert (run / name).is_file(), name
    # Resume from the first of two chunks: the same second chunk (level buffer included in the checkpoint).
    import shutil

    shutil.rmtree(run / "checkpoints" / "2")
    before = np.load(run / "curves.npz")["eval_returns"]
    def rows():  # every metric but the wall-clock speed
        return [{k: v for k, v in json.loads(line).items() if not k.endswith("_per_second")}
                for line in (run / "metrics.jsonl").read_text().splitlines()]

    metrics = rows()
    assert main(["--resume", str(run), "--quiet"]) == 0
    np.testing.assert_array_equal(np.load(run / "curves.npz")["eval_returns"], before)
    assert rows() == metrics
    # Bad input: one line, exit 2, nothing written.
    for bad, flag in ((["--method", "paird"], "--method"), (["--normalize-obs"], "--normalize-obs")):
        assert main(bad + ["--out-dir", str(tmp_path / "bad")]) == 2
        assert flag in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_every_ued_preset_resolves():
    from pathlib import Path

    from jaxrl.programs.ued import resolve

    presets = sorted((Path(__file__).resolve().parents[1] / "configs").glob("ued_*.yaml"))
    assert len(presets) >= 4
    for preset in presets:
        cfg = resolve(["--config", str(preset)])
        assert cfg.ppo.num_envs == cfg.curriculum.num_levels and preset.stem.endswith(cfg.curriculum.method)


def test_entry_point_runs_cartpole_physics_levels(tmp_path, capsys):
    """The same driver on another level space: CartPole whose physics is the level (solved above 475)."""
    import json

    from jaxrl.programs.ued import main
    from jaxrl.envs.levels.classic import CARTPOLE_HELD_OUT

    run = tmp_path / "run"
    argv = ["--method", "accel", "--env", "CartPole-v1", "--num-seeds", "2", "--total-timesteps", str(4 * 16 * 4),
            "--num-levels", "4", "--rollout-len", "16", "--num-minibatches", "2", "--num-epochs", "1", "--hidden-sizes", "16",
            "--capacity", "8", "--min-fill", "0.25", "--num-edits", "1", "--num-chunks", "2", "--eval-episodes", "1", "--quiet",
            "--out-dir", str(run)]
    assert main(argv) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert list(summary["held_out_solve_rate"]) == list(CARTPOLE_HELD_OUT)
    returns = np.load(run / "curves.npz")["eval_returns"]  # [C, G, S, L, E]
    assert returns.shape == (2, 1, 2, len(CARTPOLE_HELD_OUT), 1)
    solved = (returns[-1, 0] > 475.0).mean(-1)  # [S, L]
    assert summary["held_out_solve_rates"]["Default"] == [float(x) for x in solved[:, 0]]
    for name in ("held_out_levels.png", "buffer_levels.png", "solve_rate_curve.png"):
        assert (run / name).is_file(), name
    # PAIRED's adversary builds mazes only: refused in one line, nothing written.
    assert main(["--method", "paired", "--env", "CartPole-v1", "--out-dir", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "--method" in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "bad").exists()
