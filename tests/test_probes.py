"""PPO learns every probe environment to its known answer.

Each probe isolates one piece of the agent (value regression, conditioning on
observations, discounting/bootstrapping, policy gradient, Gaussian policy,
bootstrapping through time-limit truncation). Each is compiled once and
trained for two seeds, and the learned values / policies are read back from
the network. (ConstantReward's check, V = 1 at a zero observation, is made in the
ActionDependentReward probe, whose learned policy earns reward 1.)
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import envs
from jaxrl.agents.ppo import PPOConfig, hparams_from_config, make_network, make_ppo
from jaxrl.training.loop import make_train

SEEDS = 2
BASE = dict(
    num_envs=8,
    rollout_len=16,
    num_epochs=4,
    num_minibatches=4,
    hidden_sizes=(16, 16),
    lr=3e-3,
    ent_coef=0.0,  # an entropy bonus would pull the policy probes away from the deterministic optimum
    anneal_lr=False,
)


def train_probe(name, total_timesteps, **overrides):
    """Trains PPO on ``probe/name`` for ``SEEDS`` seeds; returns ``(apply(obs) -> (dist, value), seeds' params)``."""
    cfg = PPOConfig(**{**BASE, **overrides})
    env = envs.make("probe/" + name)
    agent = make_ppo(cfg, env, total_timesteps)
    # One compiled program, run once per seed (cheaper to compile than a vmapped one).
    train = jax.jit(make_train(agent, env.default_params))
    params = []
    for key in jax.random.split(jax.random.PRNGKey(0), SEEDS):
        runner_state, metrics = train(key, hparams_from_config(cfg))
        assert np.all(np.isfinite(np.asarray(metrics["value_loss"])))
        params.append(runner_state.agent_state.params)
    net = make_network(cfg, env, env.default_params)
    return (lambda p, obs: net.apply(p, jnp.asarray(obs, jnp.float32))), params


def test_observation_dependent_reward_value_follows_obs():
    apply, params = train_probe("ObservationDependentReward", 4096)
    for p in params:
        _, v = apply(p, [[-1.0], [1.0]])
        np.testing.assert_allclose(v, [-1.0, 1.0], atol=0.05)


def test_one_step_discount_values():
    """V(obs 1) = 1 (last step, reward 1); V(obs 0) = gamma * 1 = 0.9 only via bootstrapping
    (the first step's reward is 0). Tolerance 0.03 keeps the two answers apart (0.1)."""
    apply, params = train_probe("OneStepDiscount", 4096, gamma=0.9)
    for p in params:
        _, v = apply(p, [[0.0], [1.0]])
        np.testing.assert_allclose(v, [0.9, 1.0], atol=0.03)


def test_action_dependent_reward_policy_picks_action_one():
    """The policy picks action 1 (reward 1), and the critic regresses the one-step return at a zero
    observation (biases only): V = 1 under the learned policy, to ConstantReward's tolerance of 0.05
    (8 seeds: P(action 1) >= 0.9997, |V - 1| <= 0.004)."""
    apply, params = train_probe("ActionDependentReward", 4096)
    for p in params:
        dist, v = apply(p, [[0.0]])
        prob1 = float(jax.nn.softmax(dist.logits)[0, 1])
        assert prob1 > 0.95, prob1
        assert abs(float(v[0]) - 1.0) < 0.05, float(v[0])  # V under the learned (near-optimal) policy


def test_observation_and_action_dependent_reward_conditional_policy():
    apply, params = train_probe("ObservationAndActionDependentReward", 4096)
    for p in params:
        dist, v = apply(p, [[-1.0], [1.0]])
        probs = np.asarray(jax.nn.softmax(dist.logits))
        assert probs[0, 0] > 0.95, probs  # obs -1 -> action 0
        assert probs[1, 1] > 0.95, probs  # obs +1 -> action 1
        np.testing.assert_allclose(v, [1.0, 1.0], atol=0.1)


def test_continuous_action_reward_gaussian_mean():
    """reward = -(a - 0.5)^2: the Gaussian mean goes to 0.5 and the std shrinks (no entropy bonus)."""
    apply, params = train_probe("ContinuousActionReward", 8192)
    for p in params:
        dist, v = apply(p, [[0.0]])
        mean, std = float(dist.mean[0, 0]), float(jnp.exp(dist.log_std[0, 0]))
        assert abs(mean - 0.5) < 0.1, mean
        assert std < 0.5, std  # initial std is 1
        # V under N(mean, std^2) (clipping is negligible once std is small): -((mean - 0.5)^2 + std^2)
        assert abs(float(v[0]) + (mean - 0.5) ** 2 + std**2) < 0.01, (float(v[0]), mean, std)


def test_truncated_constant_reward_bootstraps_through_time_limit():
    """Reward 1 forever, cut every 5 steps by a truncation: V = 1 / (1 - 0.9) = 10.
    Treating the limit as terminal would give at most sum_{k<5} 0.9^k = 4.1."""
    # Without value clipping the value can move more than vf_clip_eps per update.
    apply, params = train_probe("TruncatedConstantReward", 16384, gamma=0.9, clip_value=False)
    for p in params:
        _, v = apply(p, [[0.0]])
        assert abs(float(v[0]) - 10.0) < 0.3, float(v[0])
