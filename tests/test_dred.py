"""DRED: the level VAE round-trips dataset levels, interpolations are valid levels, the buffer is seeded
with the dataset and never evicts it, the grounded score and the mixing schedule by hand, and a run."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.curricula import CurriculumConfig, LevelScores, curriculum_hparams, make_curriculum
from jaxrl.curricula.buffer import empty_buffer, insert_level
from jaxrl.curricula.dred import mixing_coefficient
from jaxrl.curricula.level_model import (LevelModelConfig, decode_level, fit_level_model, levels_to_tensor, make_interpolator,
                                         make_vae, slerp)
from jaxrl.envs.levels import mutate_level
from jaxrl.envs.levels.procedural import level_set


@pytest.fixture(scope="module")
def small_model():
    dataset, held_out = level_set("cave", 64, 0, 9, 9), level_set("cave", 16, 1, 9, 9)
    cfg, params, info = fit_level_model(dataset, held_out, steps=600, cfg=LevelModelConfig(latent=16, hidden=(128,), beta=0.1))
    return cfg, params, info, dataset


def test_vae_round_trips_dataset_levels(small_model):
    cfg, params, info, dataset = small_model
    rec = info["reconstruction_dataset"]
    # 600 steps on 64 caves of 9 x 9: the posterior mean decodes nearly every wall and most goals and starts.
    assert rec["wall_cells"] > 0.97 and rec["goal"] > 0.8 and rec["start"] > 0.8, rec
    assert info["loss_last_100"] < 0.5 * info["loss_first_100"]


def test_interpolated_levels_are_valid_levels(small_model):
    cfg, params, _, dataset = small_model
    levels = jax.jit(jax.vmap(make_interpolator(make_vae(cfg), params, dataset)))(jax.random.split(jax.random.PRNGKey(0), 64))
    walls, goal, start = (np.asarray(x) for x in (levels.wall_map, levels.goal_pos, levels.agent_pos))
    assert walls.shape == (64, 9, 9) and walls.dtype == bool
    rows = np.arange(64)
    assert not walls[rows, goal[:, 1], goal[:, 0]].any() and not walls[rows, start[:, 1], start[:, 0]].any()
    assert (goal != start).any(axis=1).all() and ((goal >= 0) & (goal < 9)).all() and ((start >= 0) & (start < 9)).all()
    assert set(np.asarray(levels.agent_dir).tolist()) <= {0, 1, 2, 3}


def test_decoding_clears_the_goal_and_start_cells():
    cfg = LevelModelConfig(height=5, width=5, latent=4, hidden=(8,))
    vae = make_vae(cfg)
    params = vae.init(jax.random.PRNGKey(0), jnp.zeros((1, 5, 5, 3)), jax.random.PRNGKey(0))
    params["params"]["to_cells"]["bias"] = params["params"]["to_cells"]["bias"].at[0::3].set(100.0)  # every cell a wall
    level = decode_level(vae, params, jnp.zeros(4), jnp.asarray(1))
    walls = np.asarray(level.wall_map)
    assert walls.sum() == 23 and not walls[level.goal_pos[1], level.goal_pos[0]] and not walls[level.agent_pos[1], level.agent_pos[0]]


def test_slerp_endpoints_and_parallel_fallback():
    a, b = jnp.array([1.0, 0.0]), jnp.array([0.0, 2.0])
    np.testing.assert_allclose(slerp(a, b, 0.0), a, atol=1e-6)
    np.testing.assert_allclose(slerp(a, b, 1.0), b, atol=1e-6)
    np.testing.assert_allclose(slerp(a, 2 * a, 0.5), 1.5 * a, atol=1e-6)  # parallel: linear


def test_levels_to_tensor_one_hot_channels():
    levels = level_set("perfect", 2, 0, 7, 7)
    x = np.asarray(levels_to_tensor(levels))
    assert x.shape == (2, 7, 7, 3)
    np.testing.assert_array_equal(x[..., 0], np.asarray(levels.wall_map))
    assert (x[..., 1].sum((1, 2)) == 1).all() and (x[..., 2].sum((1, 2)) == 1).all()
    gx, gy = np.asarray(levels.goal_pos[0])
    assert x[0, gy, gx, 1] == 1


def test_protected_slots_are_never_replaced():
    buffer = empty_buffer(jnp.zeros(()), 2)
    buffer = insert_level(buffer, jnp.asarray(1.0), jnp.asarray(0.0), jnp.asarray(0.0))
    buffer = insert_level(buffer, jnp.asarray(2.0), jnp.asarray(0.5), jnp.asarray(0.0))
    protected = jnp.array([True, False])
    buffer = insert_level(buffer, jnp.asarray(3.0), jnp.asarray(9.0), jnp.asarray(0.0), protected=protected)
    np.testing.assert_array_equal(buffer.levels, [1.0, 3.0])  # the lowest (slot 0) is protected: slot 1 goes
    buffer = insert_level(buffer, jnp.asarray(4.0), jnp.asarray(99.0), jnp.asarray(0.0), protected=jnp.array([True, True]))
    np.testing.assert_array_equal(buffer.levels, [1.0, 3.0])


def test_mixing_coefficient_anneals_from_zero_to_one():
    np.testing.assert_allclose([mixing_coefficient(jnp.asarray(i), 5) for i in range(6)], [0, 0.25, 0.5, 0.75, 1, 1])


def test_grounded_score_counts_only_solved_levels():
    from jaxrl.curricula.ued import level_scores
    from jaxrl.agents.ppo import PPORollout
    from types import SimpleNamespace

    returns = jnp.array([[1.0, 1.0], [0.5, 0.5]])  # [T=2, B=2]
    values = jnp.array([[0.0, 0.0], [1.0, 1.0]])
    done = jnp.array([[False, False], [True, True]])
    info = {"episode_return": jnp.array([[0.0, 0.0], [0.8, 0.0]]), "episode_done": done}
    rollout = PPORollout(None, {"returns": returns, "values": values, "advantages": returns - values},
                         SimpleNamespace(info=info))
    scores = level_scores("grounded_l1", rollout, jnp.array([-jnp.inf, -jnp.inf]))
    # level 0 solved (return 0.8 > 0): mean |G - V| = (1 + 0.5) / 2; level 1 never solved: 0.
    np.testing.assert_allclose(scores.score, [0.75, 0.0])


def make_dred(method, dataset, num_iterations=10, **overrides):
    cfg = CurriculumConfig(method=method, **{**dict(num_levels=4, capacity=12, dataset_size=6, replay_prob=0.5, min_fill=0.0,
                                                    num_edits=2), **overrides})
    interpolate = lambda k: jax.tree.map(lambda x: x[0], level_set("perfect", 1, 3, 7, 7))  # noqa: E731  (a stand-in model)
    return make_curriculum(cfg, lambda k: None, lambda k, lv: mutate_level(k, lv, 2), dataset=dataset,
                           interpolate=interpolate, num_iterations=num_iterations)


@pytest.mark.parametrize("method", ["dred", "dred_edit"])
def test_dred_seeds_the_buffer_and_never_evicts_the_dataset(method):
    dataset = level_set("cave", 6, 0, 7, 7)
    curriculum = make_dred(method, dataset)
    state = curriculum.init(jax.random.PRNGKey(0))
    np.testing.assert_array_equal(state.buffer.filled, [True] * 6 + [False] * 6)
    hp = curriculum_hparams(curriculum.config)

    @jax.jit
    def cycle(state, key):
        state, levels, info = curriculum.sample(key, state, hp)
        score = jax.random.uniform(key, (4,)) - 0.3  # some non-positive: those new levels must stay out
        return curriculum.update(state, levels, LevelScores(score, score), info), (info, score)

    state, (info, scores) = jax.lax.scan(cycle, state, jax.random.split(jax.random.PRNGKey(1), 40))
    np.testing.assert_array_equal(state.buffer.levels.wall_map[:6], dataset.wall_map)  # dataset slots untouched
    kind = np.asarray(info.kind)
    np.testing.assert_array_equal(np.asarray(info.train), kind == 1)  # gradient steps on replays only
    assert (kind == 1).any() and (kind != 1).any() and int(state.iteration) == 40
    assert np.asarray(state.buffer.filled).sum() > 6  # positive-scored generated levels were admitted


def test_dred_replays_only_dataset_levels_at_the_start():
    dataset = level_set("cave", 6, 0, 7, 7)
    curriculum = make_dred("dred", dataset, num_iterations=1000, replay_prob=1.0)
    state = curriculum.init(jax.random.PRNGKey(0))
    # Fill the non-dataset slots with high-scoring levels: at c = 0 they must still never be drawn.
    state = state._replace(buffer=state.buffer._replace(filled=jnp.ones(12, bool), scores=jnp.arange(12.0)))
    _, _, info = curriculum.sample(jax.random.PRNGKey(3), state, curriculum_hparams(curriculum.config))
    assert (np.asarray(info.indices) < 6).all()


def test_dred_entry_point_builds_the_level_model_then_loads_it(tmp_path, capsys):
    from jaxrl.programs.ued import main

    model = tmp_path / "model"
    argv = ["--method", "dred", "--num-seeds", "2", "--total-timesteps", str(4 * 16 * 4), "--num-levels", "4",
            "--rollout-len", "16", "--num-minibatches", "2", "--num-epochs", "1", "--hidden-sizes", "16", "--capacity", "40",
            "--dataset-size", "32", "--level-model", str(model), "--level-model-steps", "50", "--num-chunks", "2",
            "--eval-episodes", "1", "--max-steps", "16", "--quiet", "--out-dir", str(tmp_path / "run")]
    assert main(argv) == 0
    assert (model / "model.json").is_file() and (tmp_path / "run" / "buffer_levels.png").is_file()
    assert main(argv[:-1] + [str(tmp_path / "run2")]) == 0  # loads the saved model
    # A model trained on another dataset size is refused with one line.
    bad = argv[:-1] + [str(tmp_path / "bad")]
    bad[bad.index("--dataset-size") + 1] = "16"
    assert main(bad) == 2 and "--level-model" in capsys.readouterr().err and not (tmp_path / "bad").exists()
