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
