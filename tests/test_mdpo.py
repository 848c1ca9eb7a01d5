"""On-policy MDPO: the loss on hand-computed values, the objective inside PPO's agent on the
policy probes, and a short CartPole learning run with the KL coefficient swept in one program."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_probes import train_probe

from jaxrl.programs.train import train
from jaxrl.losses.mdpo import mdpo_loss, mdpo_step_size
from jaxrl.objectives import FIXED_OBJECTIVES, PolicyLossInputs, get_objective


def test_step_size_anneals_from_one():
    """t_k = 1 - k / K: 1 at the first update, 1/K at the last (K = 4 here)."""
    np.testing.assert_allclose(mdpo_step_size(jnp.array([0.0, 0.25, 0.5, 0.75])), [1.0, 0.75, 0.5, 0.25])


def test_loss_hand_computed():
    log_ratio = jnp.log(jnp.array([1.5, 0.5]))
    adv = jnp.array([2.0, -1.0])
    kl = jnp.array([0.1, 0.3])
    # mean(r A) = (3.0 - 0.5) / 2 = 1.25; mean KL = 0.2.
    # progress 0.5: t = 0.5, coefficient 1 / 0.5 = 2 -> -1.25 + 2 * 0.2 = -0.85
    assert float(mdpo_loss(log_ratio, adv, kl, 1.0, 0.5)) == pytest.approx(-0.85, rel=1e-6)
    # progress 0: t = 1; kl_coef 0.5 scales the paper's coefficient -> -1.25 + 0.5 * 0.2 = -1.15
    assert float(mdpo_loss(log_ratio, adv, kl, 0.5, 0.0)) == pytest.approx(-1.15, rel=1e-6)
    # progress 0.9: coefficient 10 -> -1.25 + 10 * 0.2 = 0.75
    assert float(mdpo_loss(log_ratio, adv, kl, 1.0, 0.9)) == pytest.approx(0.75, rel=1e-5)


def test_no_ratio_clipping():
    """d loss / d log_ratio (N = 1, KL held fixed) is -r A even far outside PPO's clip range,
    where PPO-clip's gradient is 0."""
    grad = jax.grad(lambda lr: mdpo_loss(lr, jnp.array([2.0]), jnp.array([0.0]), 1.0, 0.0))(jnp.log(jnp.array([1.5])))
    np.testing.assert_allclose(grad, [-3.0], rtol=1e-6)


def test_objective_registered_and_reads_its_inputs():
    assert get_objective("mdpo") is FIXED_OBJECTIVES["mdpo"]
    x = PolicyLossInputs(
        log_ratio=jnp.log(jnp.array([1.5, 0.5])),
        advantages=jnp.array([2.0, -1.0]),
        kl=jnp.array([0.1, 0.3]),
        clip_eps=jnp.float32(0.2),  # ignored by MDPO
        progress=jnp.float32(0.5),
        num_updates=jnp.float32(100.0),
        kl_coef=jnp.float32(1.0),
    )
    objective = FIXED_OBJECTIVES["mdpo"]
    assert float(objective.loss(objective.init(jax.random.PRNGKey(0)), x)) == pytest.approx(-0.85, rel=1e-6)
    assert float(objective.loss((), x._replace(clip_eps=jnp.float32(0.01)))) == pytest.approx(-0.85, rel=1e-6)
    # The default kl_coef of PolicyLossInputs is the paper's coefficient (1 / t_k).
    assert float(objective.loss((), PolicyLossInputs(*x[:6]))) == pytest.approx(-0.85, rel=1e-6)


# Probe environments: MDPO selected by name in the PPO agent learns the known optimal policies.
# (The objective only sees log-ratios, advantages and KLs, so the observation-conditioned discrete probe
# checks what ActionDependentReward would; the network's zero-observation path is test_probes.py's.)


def test_mdpo_observation_and_action_dependent_reward():
    apply, params = train_probe("ObservationAndActionDependentReward", 4096, objective="mdpo")
    for p in params:
        dist, v = apply(p, [[-1.0], [1.0]])
        probs = np.asarray(jax.nn.softmax(dist.logits))
        assert probs[0, 0] > 0.95 and probs[1, 1] > 0.95, probs
        np.testing.assert_allclose(v, [1.0, 1.0], atol=0.1)


def test_mdpo_continuous_action_reward():
    apply, params = train_probe("ContinuousActionReward", 8192, objective="mdpo")
    for p in params:
        dist, _ = apply(p, [[0.0]])
        mean, std = float(dist.mean[0, 0]), float(jnp.exp(dist.log_std[0, 0]))
        assert abs(mean - 0.5) < 0.1, mean
        assert std < 0.5, std


def test_mdpo_learns_cartpole_with_swept_kl_coef():
    """40k steps, 2 seeds x 2 KL coefficients in one program: a random policy scores about 22."""
    result = train(env="CartPole-v1", objective="mdpo", ent_coef=0.0, total_timesteps=40_960, num_seeds=2,
                   num_chunks=2, eval_episodes=4, sweep={"kl_coef": [1.0, 2.0]}, quiet=True)
    grid = result.summary["grid"]
    assert [g["hparams"] for g in grid] == [{"kl_coef": 1.0}, {"kl_coef": 2.0}]
    returns = np.asarray(result.summary["final_returns"])
    assert returns.shape == (4,)
    assert np.all(returns > 100.0), returns
    # The two coefficients trained different policies from the same seed keys.
    assert grid[0]["final_returns"] != grid[1]["final_returns"]
