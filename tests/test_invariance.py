"""Seeds, sweeps and chunking do not change what a training run computes.

A short PPO run on CartPole (3 updates of 4 envs x 16 steps) is compiled once
un-vmapped and once vmapped over three members (seed 0 / lr a, seed 1 / lr a,
seed 0 / lr b), and once as a chunk of the runner:

* vmapped member i == the single run with member i's key and hyperparameters
  (the same key with another lr == the lr grid point; another key == another seed).
  Equality is to float32 rounding, not bitwise. (Found while writing this
  test:) the initial state, the first rollout and the first minibatch's loss
  and gradient norm are bitwise identical; the first difference is in the
  optimiser step: optax's ``clip_by_global_norm`` rescale
  ``g * (max_norm / norm)`` is fused differently by XLA when the per-member
  scalar becomes a batched one, giving 1-ulp differences in the clipped
  gradients (~1e-9) that Adam's moments then carry (params differ by ~1e-8
  after 3 updates).
* running the same compiled run twice is bitwise identical;
* three ``run_chunk`` calls of one update each == ``make_train`` with one chunk of three,
  bitwise (no evaluation between chunks: evaluation draws its key from the run's key).
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import envs
from jaxrl.agents.ppo import PPOConfig, hparams_from_config, make_ppo
from jaxrl.training.loop import make_runner, make_train

CFG = PPOConfig(num_envs=4, rollout_len=16, num_epochs=2, num_minibatches=2, hidden_sizes=(16, 16))
NUM_UPDATES = 3
LR_A, LR_B = 2.5e-4, 1e-3


def _member(tree, i):
    return jax.tree.map(lambda x: x[i], tree)


def _assert_trees_close(actual, desired, rtol=1e-5, atol=1e-6):
    leaves_a, tree_a = jax.tree.flatten(actual)
    leaves_d, tree_d = jax.tree.flatten(desired)
    assert tree_a == tree_d
    for a, d in zip(leaves_a, leaves_d):
        np.testing.assert_allclose(np.asarray(a), np.asarray(d), rtol=rtol, atol=atol)


def _assert_trees_equal(actual, desired):
    leaves_a, tree_a = jax.tree.flatten(actual)
    leaves_d, tree_d = jax.tree.flatten(desired)
    assert tree_a == tree_d
    for a, d in zip(leaves_a, leaves_d):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(d))


@pytest.fixture(scope="module")
def setup():
    env = envs.make("CartPole-v1")
    agent = make_ppo(CFG, env, NUM_UPDATES * CFG.num_envs * CFG.rollout_len)
    assert agent.num_updates == NUM_UPDATES
    hp = hparams_from_config(CFG)
    key0, key1 = jax.random.split(jax.random.PRNGKey(42))
    members = [(key0, hp._replace(lr=jnp.float32(LR_A))), (key1, hp._replace(lr=jnp.float32(LR_A))),
               (key0, hp._replace(lr=jnp.float32(LR_B)))]
    keys = jnp.stack([k for k, _ in members])
    hps = jax.tree.map(lambda *xs: jnp.stack(xs), *[h for _, h in members])
    train = make_train(agent, env.default_params)
    single = jax.jit(train)
    vmapped = jax.jit(jax.vmap(train))
    return dict(env=env, agent=agent, members=members, keys=keys, hps=hps, single=single, vmapped=vmapped)


@pytest.fixture(scope="module")
def runs(setup):
    singles = [setup["single"](k, h) for k, h in setup["members"]]
    batched = setup["vmapped"](setup["keys"], setup["hps"])
    return singles, batched


def test_vmapped_seeds_equal_single_runs(setup, runs):
    singles, (state, metrics) = runs
    for i in (0, 1):  # same lr, two seeds
        s_state, s_metrics = singles[i]
        _assert_trees_close(_member(state.agent_state.params, i), s_state.agent_state.params)
        _assert_trees_close(_member(state.agent_state.opt_state, i), s_state.agent_state.opt_state)
        _assert_trees_close(_member(metrics, i), s_metrics)
        # Integer / key parts of the state are exactly equal.
        np.testing.assert_array_equal(_member(state.key, i), s_state.key)
        np.testing.assert_array_equal(_member(state.agent_state.update_step, i), NUM_UPDATES)
    # The two seeds did learn different things (the comparison is not vacuous).
    p0, p1 = _member(state.agent_state.params, 0), _member(state.agent_state.params, 1)
    assert not np.allclose(jax.tree.leaves(p0)[0], jax.tree.leaves(p1)[0])


def test_vmapped_hyperparameter_grid_equals_single_runs(setup, runs):
    singles, (state, metrics) = runs
    s_state, s_metrics = singles[2]  # seed 0 with lr b
    _assert_trees_close(_member(state.agent_state.params, 2), s_state.agent_state.params)
    _assert_trees_close(_member(metrics, 2), s_metrics)
    np.testing.assert_allclose(metrics["learning_rate"][2, 0, 0], LR_B, rtol=1e-6)  # first update: no annealing yet
    np.testing.assert_allclose(metrics["learning_rate"][0, 0, 0], LR_A, rtol=1e-6)
    # Same seed, different lr: different parameters.
    assert not np.allclose(jax.tree.leaves(_member(state.agent_state.params, 0))[0],
                           jax.tree.leaves(_member(state.agent_state.params, 2))[0])


def test_same_run_twice_is_bitwise_identical(setup, runs):
    singles, batched = runs
    k, h = setup["members"][0]
    _assert_trees_equal(setup["single"](k, h), singles[0])
    _assert_trees_equal(setup["vmapped"](setup["keys"], setup["hps"]), batched)


@pytest.mark.parametrize("evaluate_each_chunk", [False, True])
def test_chunked_runner_equals_single_chunk_train(setup, runs, evaluate_each_chunk):
    """Training does not depend on the chunking, with or without the evaluation after each chunk
    (its randomness is folded out of the run's key, not drawn from its sequence)."""
    singles, _ = runs
    agent, env = setup["agent"], setup["env"]
    runner = make_runner(agent, env.default_params, NUM_UPDATES, evaluate_each_chunk=evaluate_each_chunk)
    assert (runner.chunk_len, runner.num_chunks) == (1, NUM_UPDATES)
    k, h = setup["members"][0]
    state = runner.init(k, h)
    run_chunk = jax.jit(runner.run_chunk)
    chunk_metrics = []
    for c in range(runner.num_chunks):
        state, m = run_chunk(state, h, jnp.int32(c * runner.chunk_len))
        chunk_metrics.append(m)
    s_state, s_metrics = singles[0]
    _assert_trees_equal(state, s_state)
    assert set(s_metrics) == set(chunk_metrics[0]) - {"eval_returns"}
    for name, values in s_metrics.items():
        if values.ndim == 2:  # per update: [1 chunk, 3 updates] vs 3 chunks of [1 update]
            np.testing.assert_array_equal(np.concatenate([m[name] for m in chunk_metrics]), values[0])
        else:  # per chunk (e.g. end-of-chunk checks): the single chunk ends where the last one does
            np.testing.assert_array_equal(chunk_metrics[-1][name], values[0])
