"""Mirror-learning objectives: DPO's closed form on hand values, the learned drift's two
conditions (zero at r = 1, non-negative), PPO-clip as a drift, saving and loading."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.programs.train import main as train_main
from jaxrl.losses.drift import dpo_drift, drift_policy_loss, lpo_features, ppo_clip_drift, ta_lpo_features
from jaxrl.losses.ppo import clipped_surrogate_loss
from jaxrl.objectives import DPO, PPO_CLIP, PolicyLossInputs, load_objective, make_objective, save_objective


def _inputs(ratio, advantages, progress=0.3, num_updates=100.0):
    ratio, advantages = jnp.asarray(ratio, jnp.float32), jnp.asarray(advantages, jnp.float32)
    return PolicyLossInputs(jnp.log(ratio), advantages, jnp.zeros_like(ratio), jnp.float32(0.2),
                            jnp.float32(progress), jnp.float32(num_updates))


def test_dpo_drift_hand_computed():
    # A >= 0: (r - 1) A = 0.5 -> 0.5 - 2 tanh(0.25)
    assert float(dpo_drift(jnp.array([1.5]), jnp.array([1.0]), 2.0, 0.6)[0]) == pytest.approx(0.5 - 2 * math.tanh(0.25), rel=1e-5)
    # A < 0: log(r) A = log(0.5) * -1 = 0.6931 -> 0.6931 - 0.6 tanh(0.6931 / 0.6)
    x = math.log(2.0)
    assert float(dpo_drift(jnp.array([0.5]), jnp.array([-1.0]), 2.0, 0.6)[0]) == pytest.approx(x - 0.6 * math.tanh(x / 0.6), rel=1e-5)
    # (r - 1) A < 0 with A > 0: u - alpha tanh(u / alpha) < 0 there, so the ReLU gives 0.
    assert float(dpo_drift(jnp.array([0.7]), jnp.array([2.0]), 2.0, 0.6)[0]) == 0.0
    # zero at r = 1 whatever the advantage
    np.testing.assert_array_equal(dpo_drift(jnp.ones(3), jnp.array([-2.0, 0.0, 3.0]), 2.0, 0.6), 0.0)
    # the objective reads its constants from the inputs (traced hyperparameters)
    x_in = _inputs([1.5], [1.0])._replace(dpo_alpha=jnp.float32(1.0))
    assert float(DPO.drift((), x_in)[0]) == pytest.approx(0.5 - math.tanh(0.5), rel=1e-5)
    assert float(DPO.loss((), x_in)) == pytest.approx(-(1.5 - (0.5 - math.tanh(0.5))), rel=1e-5)


def test_ppo_clip_is_a_drift():
    ratio = jnp.array([0.5, 0.9, 1.0, 1.1, 1.5, 0.5, 1.5])
    adv = jnp.array([1.0, -1.0, 2.0, 1.0, 1.0, -1.0, -1.0])
    drift = ppo_clip_drift(ratio, adv, 0.2)
    # only r = 1.5 with A > 0 (above 1 + eps) and r = 0.5 with A < 0 (below 1 - eps) are penalised
    np.testing.assert_allclose(drift, [0.0, 0.0, 0.0, 0.0, 0.3, 0.3, 0.0], atol=1e-6)
    np.testing.assert_allclose(drift_policy_loss(ratio, adv, drift), clipped_surrogate_loss(jnp.log(ratio), adv, 0.2), rtol=1e-6)
    x = _inputs(ratio, adv)
    np.testing.assert_allclose(PPO_CLIP.loss((), x), clipped_surrogate_loss(x.log_ratio, adv, 0.2), rtol=1e-6)


def test_features_vanish_at_ratio_one():
    adv = jnp.array([-1.5, 0.0, 2.0])
    np.testing.assert_array_equal(lpo_features(jnp.ones(3), adv), 0.0)
    np.testing.assert_array_equal(ta_lpo_features(jnp.ones(3), adv, 0.7, jnp.log(100.0)), 0.0)
    f = ta_lpo_features(jnp.array([1.2]), jnp.array([1.0]), 0.5)
    assert f.shape == (1, 16)
    np.testing.assert_allclose(f[:, 8:], 0.5 * f[:, :8])  # the progress-scaled copy
    assert ta_lpo_features(jnp.array([1.2]), jnp.array([1.0]), 0.5, jnp.log(10.0)).shape == (1, 24)


@pytest.mark.parametrize("name", ["lpo", "ta_lpo"])
@pytest.mark.parametrize("init", ["random", "ppo"])
def test_learned_drift_is_zero_at_one_and_non_negative(name, init):
    objective = make_objective(name, drift_hidden=32, drift_init=init)
    key = jax.random.PRNGKey(3)
    params = objective.init(key)
    # perturbed parameters too: the conditions hold for any parameters, as ES will produce
    noisy = jax.tree.map(lambda p: p + 0.5 * jax.random.normal(key, p.shape), params)
    adv = jax.random.normal(jax.random.PRNGKey(1), (256,)) * 2.0
    ratio = jnp.exp(jax.random.normal(jax.random.PRNGKey(2), (256,)) * 0.5)
    for p in (params, noisy):
        for progress in (0.0, 0.5, 0.99):
            np.testing.assert_array_equal(objective.drift(p, _inputs(jnp.ones(256), adv, progress)), 0.0)
            assert float(jnp.min(objective.drift(p, _inputs(ratio, adv, progress)))) >= 0.0
        # zero gradient of the drift at r = 1: the loss's gradient there is the policy gradient, -A / N
        grad = jax.grad(lambda lr: p_loss(objective, p, lr, adv))(jnp.zeros(256))
        np.testing.assert_allclose(grad, -adv / 256, rtol=1e-5, atol=1e-7)


def p_loss(objective, params, log_ratio, adv):
    return objective.loss(params, _inputs(jnp.exp(log_ratio), adv))


def test_ppo_initialisation_approximates_the_clip_drift():
    """Meta-training starts at PPO: the fitted drift is close to PPO-clip's on PPO's usual range.

    A smooth tanh network cannot reproduce the clip's kinks exactly: measured on this grid the
    mean absolute error is 0.006 and the largest 0.065 (at |A| = 2 next to a kink), against
    drift values up to 0.8."""
    objective = make_objective("lpo")
    params = objective.init(jax.random.PRNGKey(0))
    ratio, adv = jnp.meshgrid(jnp.linspace(0.6, 1.4, 41), jnp.linspace(-2.0, 2.0, 41))
    x = _inputs(ratio.ravel(), adv.ravel())
    err = jnp.abs(objective.drift(params, x) - ppo_clip_drift(jnp.exp(x.log_ratio), x.advantages, 0.2))
    assert float(jnp.mean(err)) < 0.01, float(jnp.mean(err))
    assert float(jnp.max(err)) < 0.08, float(jnp.max(err))


@pytest.mark.parametrize("name", ["lpo", "ta_lpo"])
def test_saved_objective_gives_identical_losses(name, tmp_path):
    objective = make_objective(name, drift_hidden=16, drift_init="random", ta_log_horizon=True)
    params = jax.tree.map(lambda p: p * 1.7, objective.init(jax.random.PRNGKey(5)))
    save_objective(tmp_path / "best", objective, params, info={"fitness": 1.0})
    loaded, loaded_params = load_objective(tmp_path / "best")
    assert loaded.spec == objective.spec
    x = _inputs(jnp.exp(jax.random.normal(jax.random.PRNGKey(0), (64,)) * 0.3), jax.random.normal(jax.random.PRNGKey(1), (64,)), 0.4, 50.0)
    assert float(loaded.loss(loaded_params, x)) == float(objective.loss(params, x))
    np.testing.assert_array_equal(loaded.drift(loaded_params, x), objective.drift(params, x))


def test_train_with_a_saved_objective_and_bad_objective_flag(tmp_path, capsys):
    objective = make_objective("lpo", drift_hidden=8, drift_init="random")
    save_objective(tmp_path / "best", objective, objective.init(jax.random.PRNGKey(0)))
    tiny = ["--env", "CartPole-v1", "--total-timesteps", "1024", "--num-envs", "4", "--rollout-len", "32", "--num-chunks", "1",
            "--eval-episodes", "2", "--hidden-sizes", "8", "--checkpoint-every", "0", "--quiet"]
    assert train_main([*tiny, "--objective", str(tmp_path / "best"), "--out-dir", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "summary.json").is_file()
    assert train_main([*tiny, "--objective", str(tmp_path / "missing"), "--out-dir", str(tmp_path / "run2")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--objective" in err and "\n" not in err and not (tmp_path / "run2").exists()
