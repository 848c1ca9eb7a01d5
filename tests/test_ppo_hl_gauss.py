"""PPO with the HL-Gauss categorical critic (``--value-loss hl_gauss``): the value probes reach their
known values through ``categorical_value`` of the critic's logits, a short CartPole run learns, and
bad supports are refused before anything is compiled."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_probes import train_probe

from jaxrl import envs
from jaxrl.agents.ppo import PPOConfig, make_network, value_from_critic
from jaxrl.programs.train import main, train

HL = dict(value_loss="hl_gauss", clip_value=False)


def _values(name, total_timesteps, obs, **overrides):
    """Trains the probe (2 seeds) and returns each seed's scalar values at ``obs``."""
    cfg = PPOConfig(**{**HL, **overrides})
    apply, params = train_probe(name, total_timesteps, **HL, **overrides)
    out = []
    for p in params:
        _, logits = apply(p, obs)
        assert logits.shape == (len(obs), cfg.value_bins)
        out.append(np.asarray(value_from_critic(cfg, logits)))
    return out


def test_categorical_critic_shapes():
    env = envs.make("CartPole-v1")
    obs = jnp.zeros((3, 4))
    for cfg, shape in ((PPOConfig(), (3,)), (PPOConfig(value_loss="hl_gauss", value_bins=21), (3, 21))):
        net = make_network(cfg, env, env.default_params)
        params = jax.eval_shape(net.init, jax.random.PRNGKey(0), obs)  # shapes only: nothing to compile
        _, value = jax.eval_shape(net.apply, params, obs)
        assert value.shape == shape
    # The scalar value of a categorical critic lies inside its support.
    cfg = PPOConfig(value_loss="hl_gauss", value_min=-3.0, value_max=5.0)
    v = value_from_critic(cfg, jax.random.normal(jax.random.PRNGKey(1), (100, cfg.value_bins)) * 10)
    assert np.all((np.asarray(v) > -3.0) & (np.asarray(v) < 5.0))


def test_hl_gauss_observation_dependent_value():
    for v in _values("ObservationDependentReward", 4096, [[-1.0], [1.0]], value_min=-2.0, value_max=2.0, value_bins=41):
        np.testing.assert_allclose(v, [-1.0, 1.0], atol=0.05)


def test_hl_gauss_one_step_discount_bootstraps():
    """V(obs 0) = gamma * V(obs 1) = 0.9 only through bootstrapping from the categorical value; V(obs 1) = 1,
    the terminal step's reward alone (what the ConstantReward probe checks, here too)."""
    for v in _values("OneStepDiscount", 4096, [[0.0], [1.0]], gamma=0.9, value_min=-2.0, value_max=2.0, value_bins=41):
        np.testing.assert_allclose(v, [0.9, 1.0], atol=0.03)


def test_hl_gauss_bootstraps_through_truncation():
    """Reward 1 forever, truncated every 5 steps: V = 1 / (1 - 0.9) = 10 (4.1 if truncation were terminal)."""
    for v in _values("TruncatedConstantReward", 16384, [[0.0]], gamma=0.9, value_min=0.0, value_max=20.0, value_bins=41):
        assert abs(float(v[0]) - 10.0) < 0.3, v


def test_hl_gauss_ppo_learns_cartpole():
    """40k steps, 2 seeds; returns are at most 100 with gamma 0.99, so the support [0, 100] covers them."""
    result = train(env="CartPole-v1", value_loss="hl_gauss", value_min=0.0, value_max=100.0, clip_value=False,
                   total_timesteps=40_960, num_seeds=2, num_chunks=2, eval_episodes=4, quiet=True)
    returns = np.asarray(result.summary["final_returns"])
    assert np.all(returns > 100.0), returns
    assert np.all(np.isfinite(result.curves["train_return"]))


@pytest.mark.parametrize(
    "argv, flag, hint",
    [
        (["--value-min", "5", "--value-max", "5"], "--value-max", "value_min < value_max"),
        (["--value-min", "10", "--value-max", "-10"], "--value-max", "value_min < value_max"),
        (["--value-bins", "1"], "--value-bins", ">= 2"),
        (["--value-sigma-ratio", "0"], "--value-sigma-ratio", "> 0"),
        (["--value-loss", "huber"], "--value-loss", "choose from"),
    ],
)
def test_bad_value_support_is_one_clear_line(argv, flag, hint, capsys, tmp_path):
    code = main(["--value-loss", "hl_gauss", *argv, "--out-dir", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert flag in err and hint in err, err
    assert not (tmp_path / "x").exists()
