"""Sampling For Learnability: p (1 - p) on hand-set success rates, the kept set, the batch mix, and a run."""
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.curricula import CurriculumConfig, curriculum_hparams, make_curriculum
from jaxrl.curricula.sfl import learnability, most_learnable
from jaxrl.envs.levels import generate_level


def test_learnability_on_hand_set_success_rates():
    p = jnp.array([0.0, 1.0, 0.5, 0.1, 0.9, 0.25])
    np.testing.assert_allclose(learnability(p), [0.0, 0.0, 0.25, 0.09, 0.09, 0.1875], rtol=1e-6)


def test_most_learnable_keeps_the_levels_solved_sometimes():
    levels = jnp.arange(6)
    kept = most_learnable(levels, jnp.array([0.0, 1.0, 0.5, 0.1, 0.8, 0.3]), 3, 7)
    assert set(np.asarray(kept.levels).tolist()) == {2, 4, 5}  # p = 0.5, 0.8 (0.16), 0.3 (0.21); not 0, 1 or 0.1 (0.09)
    assert np.asarray(kept.filled).all() and int(kept.time) == 7


def test_sfl_refresh_and_batch_mix():
    cfg = CurriculumConfig(method="sfl", num_levels=8, sfl_sample_levels=32, sfl_keep=4, sfl_buffer_fraction=0.5)
    curriculum = make_curriculum(cfg, lambda k: generate_level(k, 7, 7, num_walls=5))
    state = curriculum.init(jax.random.PRNGKey(0))

    def success_rates(key, levels):  # a stand-in policy: p in {0, 1/4, 1/2, 3/4, 1} by the goal's column
        return (levels.goal_pos[:, 0] % 5).astype(jnp.float32) / 4

    state = curriculum.refresh(jax.random.PRNGKey(1), state, success_rates)
    kept = state.buffer.scores
    assert kept.shape == (4,) and np.all(np.asarray(kept) >= 0.1875)  # p in {1/4, 1/2, 3/4}, never 0 or 1
    state, levels, info = curriculum.sample(jax.random.PRNGKey(2), state, curriculum_hparams(cfg))
    kept_maps = np.asarray(state.buffer.levels.wall_map)
    from_set = [any((m == k).all() for k in kept_maps) for m in np.asarray(levels.wall_map)]
    assert all(from_set[:4]) and bool(info.train)  # the first half of the batch comes from the learnable set


def test_sfl_entry_point_runs(tmp_path):
    from jaxrl.programs.ued import main

    run = tmp_path / "sfl"
    argv = ["--method", "sfl", "--num-seeds", "2", "--total-timesteps", str(2 * 4 * 16 * 8), "--num-levels", "4",
            "--rollout-len", "16", "--num-minibatches", "2", "--num-epochs", "1", "--hidden-sizes", "16", "--sfl-period", "4",
            "--sfl-sample-levels", "16", "--sfl-keep", "4", "--sfl-episodes", "2", "--num-chunks", "2", "--eval-episodes", "1",
            "--max-steps", "16", "--quiet", "--out-dir", str(run)]
    assert main(argv) == 0
    assert (run / "buffer_levels.png").is_file() and (run / "summary.json").is_file()


def test_sweeping_buffer_settings_of_sfl_is_refused(tmp_path, capsys):
    from jaxrl.programs.ued import main

    assert main(["--method", "sfl", "--sweep", "replay_prob=0.5,0.8", "--out-dir", str(tmp_path / "x")]) == 2
    assert "--sweep" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_a_budget_below_one_sfl_block_is_refused(tmp_path, capsys):
    from jaxrl.programs.ued import main

    argv = ["--method", "sfl", "--num-levels", "4", "--rollout-len", "16", "--sfl-period", "4", "--total-timesteps", "200",
            "--out-dir", str(tmp_path / "x")]
    assert main(argv) == 2
    assert "--total-timesteps" in capsys.readouterr().err and not (tmp_path / "x").exists()
