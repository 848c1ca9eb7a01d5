"""Work moved out of sequential loops gives what the per-step computation gave.

- Rollout log-probabilities, computed after the scan in one batched call, equal
  each step's ``dist.log_prob(action)`` (bit for bit).
- Evaluation stops once every episode has finished; its returns equal the
  full-length scan's (bit for bit).
- PPO's values of the observations and true final observations, computed for the
  whole trajectory at once, equal the per-step critic values (float rounding).
- The epoch x minibatch update on flattened parameters and Adam moments equals
  the per-leaf optax update (float rounding) and keeps the state's structure.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxrl import envs
from jaxrl.agents.ppo import PPOConfig, build_ppo, hparams_from_config
from jaxrl.envs import make_vec_env
from jaxrl.evaluation import evaluate_episodes
from jaxrl.networks import ActorCritic, Categorical, EpsilonGreedy
from jaxrl.training.epochs import minibatch_epochs
from jaxrl.training.optim import make_optimizer
from jaxrl.training.rollout import collect_rollout


def _cartpole_actor_critic():
    env = envs.make("CartPole-v1")
    net = ActorCritic(action_dim=2, discrete=True, hidden_sizes=(16,), activation="tanh")
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, 4)))
    return env, net, params


def test_rollout_log_probs_equal_each_steps_log_prob():
    env, net, params = _cartpole_actor_critic()
    vec = make_vec_env(env, 3)
    state, obs = vec.reset(jax.random.PRNGKey(1), env.default_params)
    policy = lambda o: net.apply(params, o, method=ActorCritic.policy)  # noqa: E731
    _, _, traj, dists = jax.jit(collect_rollout, static_argnums=(1, 2, 6))(
        jax.random.PRNGKey(2), policy, vec, env.default_params, state, obs, 20)
    per_step = np.stack([np.asarray(Categorical(dists.logits[t]).log_prob(traj.action[t])) for t in range(20)])
    np.testing.assert_array_equal(np.asarray(traj.log_prob), per_step)


def test_rollout_log_probs_with_a_per_step_scalar_epsilon():
    """A distribution with a per-step scalar leaf (epsilon) is evaluated step by step, not broadcast over time."""
    env = envs.make("CartPole-v1")
    vec = make_vec_env(env, 4)
    state, obs = vec.reset(jax.random.PRNGKey(1), env.default_params)
    policy = lambda o: EpsilonGreedy(o[:, :2], jnp.asarray(0.3))  # noqa: E731
    _, _, traj, dists = collect_rollout(jax.random.PRNGKey(2), policy, vec, env.default_params, state, obs, 4)
    per_step = np.stack([np.asarray(EpsilonGreedy(dists.q_values[t], dists.epsilon[t]).log_prob(traj.action[t])) for t in range(4)])
    assert traj.log_prob.shape == (4, 4)
    np.testing.assert_array_equal(np.asarray(traj.log_prob), per_step)


def test_evaluation_stops_early_with_the_full_scans_returns():
    env, net, params = _cartpole_actor_critic()
    vec = make_vec_env(env, 5)
    act = lambda o, k: net.apply(params, o, method=ActorCritic.policy).sample(k)  # noqa: E731
    limit = env.max_episode_steps(env.default_params)
    for seed in range(3):
        key = jax.random.PRNGKey(seed)
        early = jax.jit(lambda k: evaluate_episodes(k, act, vec, env.default_params, limit))(key)
        full, _, playing = jax.jit(lambda k: evaluate_episodes(k, act, vec, env.default_params, limit, record=True))(key)
        np.testing.assert_array_equal(np.asarray(early), np.asarray(full))
        assert int(np.asarray(playing).any(axis=1).sum()) < limit  # the random policy's episodes end early: fewer steps run
    # Under vmap (seeds) the loop runs until every member's episodes have ended; each member's returns are unchanged.
    keys = jax.random.split(jax.random.PRNGKey(7), 3)
    batched = jax.jit(jax.vmap(lambda k: evaluate_episodes(k, act, vec, env.default_params, limit)))(keys)
    for i in range(3):
        full = evaluate_episodes(keys[i], act, vec, env.default_params, limit, record=True)[0]
        np.testing.assert_array_equal(np.asarray(batched[i]), np.asarray(full))


def test_ppo_batched_values_equal_per_step_values():
    cfg = PPOConfig(num_envs=3, rollout_len=16, hidden_sizes=(16,))
    env = envs.make("CartPole-v1")
    agent, pieces = build_ppo(cfg, env, 10_000)
    hp = hparams_from_config(cfg)
    state = agent.init(jax.random.PRNGKey(0), hp)
    rollout = jax.jit(pieces.collect)(jax.random.PRNGKey(1), state, env.default_params, hp)
    net = ActorCritic(action_dim=2, discrete=True, hidden_sizes=(16,), activation="tanh")
    value = jax.jit(lambda o: net.apply(state.params, o, method=ActorCritic.value))
    traj = rollout.traj
    per_step = np.stack([np.asarray(value(traj.obs[t])) for t in range(16)])
    np.testing.assert_allclose(np.asarray(rollout.batch["values"]), per_step, rtol=1e-6, atol=1e-6)
    # GAE's bootstrap at a truncation uses V(final_obs), at a termination nothing: recompute one step by hand.
    next_per_step = np.stack([np.asarray(value(traj.final_obs[t])) for t in range(16)])
    t, b = 15, 0
    delta = float(traj.reward[t, b]) + 0.99 * next_per_step[t, b] * (1.0 - float(traj.terminated[t, b])) - per_step[t, b]
    np.testing.assert_allclose(float(rollout.batch["advantages"][t, b]), delta, rtol=1e-5, atol=1e-5)


def _per_leaf_epochs(key, params, opt_state, batch, loss_fn, num_epochs, num_minibatches, lr, max_grad_norm):
    """The update written leaf by leaf with optax, as before flattening (reference)."""
    tx = make_optimizer(max_grad_norm)
    n = jax.tree.leaves(batch)[0].shape[0]
    for epoch_key in jax.random.split(key, num_epochs):
        perm = jax.random.permutation(epoch_key, n)
        shuffled = jax.tree.map(lambda x: jnp.take(x, perm, axis=0).reshape((num_minibatches, -1) + x.shape[1:]), batch)
        for i in range(num_minibatches):
            grads, _ = jax.grad(loss_fn, has_aux=True)(params, jax.tree.map(lambda x: x[i], shuffled))
            updates, opt_state = tx.update(grads, opt_state, params)
            params = jax.tree.map(lambda p, u: p - lr * u, params, updates)
    return params, opt_state


def test_flat_optimizer_update_equals_per_leaf_adam():
    _, net, params = _cartpole_actor_critic()
    obs = jax.random.normal(jax.random.PRNGKey(3), (32, 4))
    batch = {"obs": obs, "target": jnp.sin(obs[:, 0]), "action": (obs[:, 1] > 0).astype(jnp.int32)}

    def loss_fn(p, mb):
        dist, v = net.apply(p, mb["obs"])
        loss = jnp.mean((v - mb["target"]) ** 2) - jnp.mean(dist.log_prob(mb["action"]))
        return loss, {"loss": loss}

    opt_state = make_optimizer(0.5).init(params)
    new_params, new_opt, metrics = jax.jit(lambda p, o: minibatch_epochs(jax.random.PRNGKey(4), p, o, batch, loss_fn, 3, 4, 1e-2, 0.5))(params, opt_state)
    ref_params, ref_opt = _per_leaf_epochs(jax.random.PRNGKey(4), params, opt_state, batch, loss_fn, 3, 4, 1e-2, 0.5)
    assert jax.tree.structure(new_params) == jax.tree.structure(params)
    assert jax.tree.structure(new_opt) == jax.tree.structure(opt_state)
    for a, b in zip(jax.tree.leaves((new_params, new_opt)), jax.tree.leaves((ref_params, ref_opt))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=2e-6)
    assert metrics["grad_norm"].shape == (3, 4)
    assert not np.allclose(np.asarray(new_params["params"]["critic_head"]["kernel"]),
                           np.asarray(params["params"]["critic_head"]["kernel"]))  # it did learn
    assert isinstance(new_opt[1], optax.ScaleByAdamState)
