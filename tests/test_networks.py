"""Network initialisation: orthogonality, and no LAPACK custom calls in vmapped programs."""
from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.programs.train import resolve
from jaxrl.programs.driver import members
from jaxrl.programs.train import build
from jaxrl.networks.init import gram_schmidt, orthogonal


@pytest.mark.parametrize("shape", [(4, 64), (64, 64), (64, 2), (400, 64), (3, 5), (2, 3, 4)])
def test_orthogonal_rows_or_columns(shape):
    w = np.asarray(orthogonal(2.0)(jax.random.PRNGKey(0), shape)).reshape(-1, shape[-1])
    gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
    np.testing.assert_allclose(gram, 4.0 * np.eye(gram.shape[0]), atol=2e-5)


def test_gram_schmidt_matches_qr_with_positive_diagonal():
    a = jax.random.normal(jax.random.PRNGKey(1), (7, 5))
    q, r = np.linalg.qr(np.asarray(a, np.float64))
    q = q * np.sign(np.diag(r))
    np.testing.assert_allclose(gram_schmidt(a), q, atol=1e-5)


def test_vmapped_programs_have_no_lapack_custom_calls():
    """Batched LAPACK QR (flax's orthogonal init) deadlocks XLA:CPU's small thread pool; keep it out."""
    cfg = resolve(["--env", "CartPole-v1", "--num-seeds", "2", "--total-timesteps", "1024"])
    built = build(cfg)
    runner = built.runner
    _, keys, hparams = members(cfg, built)
    init_text = jax.jit(jax.vmap(runner.init)).lower(keys, hparams).as_text()
    state = jax.eval_shape(jax.vmap(runner.init), keys, hparams)
    chunk_text = jax.jit(jax.vmap(runner.run_chunk, in_axes=(0, 0, None))).lower(state, hparams, 0).as_text()
    assert not re.search(r"custom_call", init_text + chunk_text)


def test_epsilon_greedy_samples_and_log_probs():
    import numpy as np
    from jaxrl.networks.distributions import EpsilonGreedy

    q = jnp.array([[0.0, 2.0, 1.0]])
    dist = EpsilonGreedy(q, jnp.float32(0.3))
    # log-probs: greedy action 1 gets 0.7 + 0.1, the others 0.1 each.
    np.testing.assert_allclose(np.exp(dist.log_prob(jnp.array([0, 1, 2]))), [0.1, 0.8, 0.1], rtol=1e-6)
    keys = jax.random.split(jax.random.PRNGKey(0), 20_000)
    actions = np.asarray(jax.vmap(lambda k: dist.sample(k)[0])(keys))
    np.testing.assert_allclose(np.bincount(actions, minlength=3) / len(actions), [0.1, 0.8, 0.1], atol=0.01)
    assert int(EpsilonGreedy(q, jnp.float32(0.0)).sample(keys[0])[0]) == 1


def test_q_network_shapes():
    from jaxrl.networks.q import QNetwork

    obs = jnp.zeros((5, 4))

    def out_shape(net):  # shapes only: nothing to compile
        return jax.eval_shape(net.apply, jax.eval_shape(net.init, jax.random.PRNGKey(0), obs), obs).shape

    assert out_shape(QNetwork(action_dim=3, hidden_sizes=(16,), layer_norm=True)) == (5, 3)
    assert out_shape(QNetwork(action_dim=3, hidden_sizes=(16,), num_bins=11)) == (5, 3, 11)


def test_maze_conv_encoder_sees_the_egocentric_view_as_an_image():
    # The encoder un-flattens observe()'s [v, v, 2] view: its features equal a 3x3 valid convolution of that image
    # (computed here with lax.conv on the image built from view_cells), then the direction embedding.
    from jaxrl.envs.levels.maze import is_wall, level_from_strings, observe, view_cells
    from jaxrl.networks.encoders import MazeConvEncoder

    level = level_from_strings(("#....", ".#..G", "..#..", ".....", "^...#"), 5, 5)
    pos, direction = jnp.asarray([1, 3]), jnp.asarray(3)
    obs = observe(level, pos, direction, 5)
    encoder = MazeConvEncoder()
    params = encoder.init(jax.random.PRNGKey(0), obs[None])
    features = encoder.apply(params, obs[None])[0]
    cells = view_cells(pos, direction, 5)
    image = jnp.stack([is_wall(level.wall_map, cells), jnp.all(cells == level.goal_pos, -1)], -1).astype(jnp.float32)
    conv = params["params"]["Conv_0"]
    expected = jax.lax.conv_general_dilated(image[None], conv["kernel"], (1, 1), "VALID",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))[0] + conv["bias"]
    np.testing.assert_allclose(features[:144], jax.nn.relu(expected).reshape(-1), rtol=1e-5, atol=1e-6)
    dense = params["params"]["Dense_0"]
    np.testing.assert_allclose(features[144:], jax.nn.one_hot(3, 4) @ dense["kernel"] + dense["bias"], rtol=1e-5, atol=1e-6)
    assert features.shape == (16 * 3 * 3 + 5,)


def test_maze_conv_encoder_refuses_observations_that_are_not_mazes():
    from jaxrl.agents.ppo import PPOConfig, validate_ppo
    from jaxrl import envs

    assert validate_ppo(PPOConfig(encoder="maze_conv"), envs.make("Maze"), 10_000) is None
    assert "--encoder maze_conv" in validate_ppo(PPOConfig(encoder="maze_conv"), envs.make("CartPole-v1"), 10_000)
