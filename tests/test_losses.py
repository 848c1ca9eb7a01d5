"""PPO loss pieces and action distributions against hand-computed values and scipy."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxrl.losses import clipped_surrogate_loss, normalize, value_loss
from jaxrl.networks.distributions import Categorical, DiagGaussian

EPS = 0.2


def _surrogate(ratio, adv):
    return float(clipped_surrogate_loss(jnp.log(jnp.asarray(ratio, jnp.float32)), jnp.asarray(adv, jnp.float32), EPS))


@pytest.mark.parametrize(
    "ratio, adv, objective",
    [
        (1.5, 2.0, 1.2 * 2.0),  # above 1+eps, A>0: clipped to (1+eps) A = 2.4
        (0.5, -1.0, 0.8 * -1.0),  # below 1-eps, A<0: clipped to (1-eps) A = -0.8
        (1.1, 3.0, 1.1 * 3.0),  # inside the range: r A = 3.3
        (0.5, 1.0, 0.5 * 1.0),  # below 1-eps, A>0: pessimistic min keeps r A = 0.5
        (1.5, -1.0, 1.5 * -1.0),  # above 1+eps, A<0: pessimistic min keeps r A = -1.5
    ],
)
def test_clipped_surrogate_single_samples(ratio, adv, objective):
    assert _surrogate([ratio], [adv]) == pytest.approx(-objective, rel=1e-6)


def test_clipped_surrogate_is_negative_mean_over_batch():
    ratios = [1.5, 0.5, 1.1, 0.5, 1.5]
    advs = [2.0, -1.0, 3.0, 1.0, -1.0]
    # mean of [2.4, -0.8, 3.3, 0.5, -1.5] = 3.9 / 5 = 0.78
    assert _surrogate(ratios, advs) == pytest.approx(-0.78, rel=1e-6)


def test_clipped_surrogate_gradient_vanishes_when_clipped():
    """d loss / d log_ratio (N=1) is -r A inside the trust region and 0 where the clip is active."""
    grad = jax.grad(lambda lr, a: clipped_surrogate_loss(lr, a, EPS))
    g_clipped = grad(jnp.log(jnp.array([1.5])), jnp.array([2.0]))
    g_inside = grad(jnp.log(jnp.array([1.1])), jnp.array([3.0]))
    g_low_neg = grad(jnp.log(jnp.array([0.5])), jnp.array([-1.0]))
    np.testing.assert_allclose(g_clipped, [0.0], atol=1e-7)
    np.testing.assert_allclose(g_low_neg, [0.0], atol=1e-7)
    np.testing.assert_allclose(g_inside, [-3.3], rtol=1e-6)


def test_value_loss_unclipped_and_clipped():
    values = jnp.array([1.0, 2.0, 0.0])
    old = jnp.array([0.0, 2.0, 0.5])
    targets = jnp.array([2.0, 1.0, 0.0])
    # unclipped squared errors: (1-2)^2 = 1, (2-1)^2 = 1, 0 -> 0.5 * 2/3
    assert float(value_loss(values, old, targets, EPS, clip=False)) == pytest.approx(1.0 / 3.0, rel=1e-6)
    # clipped predictions: 0 + clip(1, .2) = .2; 2 + 0 = 2; .5 + clip(-.5, .2) = .3
    # clipped squared errors: (.2-2)^2 = 3.24, 1, (.3-0)^2 = .09; max with unclipped: 3.24, 1, .09
    expected = 0.5 * (3.24 + 1.0 + 0.09) / 3.0
    assert float(value_loss(values, old, targets, EPS, clip=True)) == pytest.approx(expected, rel=1e-6)


def test_value_loss_clipping_inside_range_equals_unclipped():
    values = jnp.array([1.1, -0.05])
    old = jnp.array([1.0, 0.0])
    targets = jnp.array([3.0, 1.0])
    expected = 0.5 * ((1.1 - 3.0) ** 2 + (-0.05 - 1.0) ** 2) / 2
    assert float(value_loss(values, old, targets, EPS, clip=True)) == pytest.approx(expected, rel=1e-6)
    assert float(value_loss(values, old, targets, EPS, clip=False)) == pytest.approx(expected, rel=1e-6)


def test_normalize():
    x = jnp.array([1.0, 2.0, 3.0, 4.0])
    # mean 2.5, population std sqrt(1.25)
    s = np.sqrt(1.25)
    np.testing.assert_allclose(normalize(x), [-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s], rtol=1e-6)
    y = normalize(jnp.array([[3.0, -1.0], [7.0, 2.0]]))
    assert float(jnp.mean(y)) == pytest.approx(0.0, abs=1e-6)
    assert float(jnp.std(y)) == pytest.approx(1.0, rel=1e-5)
    # A constant input does not divide by zero.
    np.testing.assert_array_equal(normalize(jnp.full((3,), 5.0)), np.zeros(3))


# ---------------------------------------------------------------- Categorical

LOGITS = jnp.log(jnp.array([1.0, 2.0, 3.0]))  # probs 1/6, 1/3, 1/2
PROBS = np.array([1.0, 2.0, 3.0]) / 6.0


def test_categorical_log_prob_entropy_mode():
    d = Categorical(LOGITS + 7.0)  # logits are shift invariant
    for a in range(3):
        assert float(d.log_prob(jnp.array(a))) == pytest.approx(np.log(PROBS[a]), rel=1e-6)
    expected_entropy = -(1 / 6 * np.log(1 / 6) + 1 / 3 * np.log(1 / 3) + 1 / 2 * np.log(1 / 2))
    assert float(d.entropy()) == pytest.approx(expected_entropy, rel=1e-6)
    assert float(d.entropy()) == pytest.approx(stats.entropy(PROBS), rel=1e-6)
    assert int(d.mode()) == 2


def test_categorical_batched_log_prob():
    logits = jnp.array([[0.0, 0.0], [0.0, jnp.log(3.0)]])
    d = Categorical(logits)
    np.testing.assert_allclose(d.log_prob(jnp.array([1, 1])), np.log([0.5, 0.75]), rtol=1e-6)
    np.testing.assert_allclose(d.entropy(), [np.log(2.0), stats.entropy([0.25, 0.75])], rtol=1e-6)


def test_categorical_kl():
    p = Categorical(LOGITS)
    q = Categorical(jnp.zeros(3))  # uniform
    # KL(p || uniform) = sum p log(3 p)
    expected = float(np.sum(PROBS * np.log(3 * PROBS)))
    assert float(p.kl(q)) == pytest.approx(expected, rel=1e-5)
    assert float(p.kl(q)) == pytest.approx(stats.entropy(PROBS, np.full(3, 1 / 3)), rel=1e-5)
    assert float(p.kl(p)) == pytest.approx(0.0, abs=1e-7)
    # Asymmetric: KL(uniform || p) = sum 1/3 log(1/(3p))
    assert float(q.kl(p)) == pytest.approx(float(np.sum(np.log(1 / (3 * PROBS)) / 3)), rel=1e-5)


def test_categorical_gumbel_sampling_matches_softmax():
    """argmax(logits + Gumbel) is an exact categorical sample. With N = 200_000 samples the
    standard error of each frequency is sqrt(p (1-p) / N) <= 0.0012; allow 5 standard errors."""
    n = 200_000
    d = Categorical(jnp.broadcast_to(LOGITS, (n, 3)))
    noise = Categorical.draw_noise(jax.random.PRNGKey(0), d.noise_shape())
    samples = np.asarray(d.sample_from_noise(noise))
    freqs = np.bincount(samples, minlength=3) / n
    tol = 5 * np.sqrt(PROBS * (1 - PROBS) / n)
    assert np.all(np.abs(freqs - PROBS) < tol), (freqs, PROBS, tol)
    # sample(key) is the same construction.
    np.testing.assert_array_equal(d.sample(jax.random.PRNGKey(0)), samples)


# ---------------------------------------------------------------- DiagGaussian


def test_diag_gaussian_log_prob_and_entropy_against_scipy():
    mean = np.array([0.5, -1.0], np.float32)
    log_std = np.array([0.0, np.log(2.0)], np.float32)
    d = DiagGaussian(jnp.asarray(mean), jnp.asarray(log_std))
    a = np.array([1.5, 0.0], np.float32)
    expected = stats.norm.logpdf(a, mean, np.exp(log_std)).sum()
    assert float(d.log_prob(jnp.asarray(a))) == pytest.approx(expected, rel=1e-6)
    # Hand: dim 0: -0.5 - 0.5 log 2pi; dim 1: -0.5 (1/2)^2 - log 2 - 0.5 log 2pi
    hand = -0.5 - 0.5 * np.log(2 * np.pi) + (-0.125 - np.log(2.0) - 0.5 * np.log(2 * np.pi))
    assert float(d.log_prob(jnp.asarray(a))) == pytest.approx(hand, rel=1e-6)
    expected_entropy = stats.norm.entropy(mean, np.exp(log_std)).sum()  # sum 0.5 log(2 pi e sigma^2)
    assert float(d.entropy()) == pytest.approx(expected_entropy, rel=1e-6)
    np.testing.assert_array_equal(d.mode(), mean)


def test_diag_gaussian_kl():
    # KL(N(0,1) || N(1,2^2)) = log 2 + (1 + 1) / 8 - 1/2 = log 2 - 0.25
    p = DiagGaussian(jnp.array([0.0]), jnp.array([0.0]))
    q = DiagGaussian(jnp.array([1.0]), jnp.array([np.log(2.0)], np.float32))
    assert float(p.kl(q)) == pytest.approx(np.log(2.0) - 0.25, rel=1e-6)
    # KL(N(1,4) || N(0,1)) = log(1/2) + (4 + 1) / 2 - 1/2 = 2 - log 2
    assert float(q.kl(p)) == pytest.approx(2.0 - np.log(2.0), rel=1e-6)
    # Sums over dimensions, zero against itself.
    pq2 = DiagGaussian(jnp.array([0.0, 1.0]), jnp.array([0.0, np.log(2.0)], np.float32)).kl(
        DiagGaussian(jnp.array([1.0, 0.0]), jnp.array([np.log(2.0), 0.0], np.float32))
    )
    assert float(pq2) == pytest.approx(np.log(2.0) - 0.25 + 2.0 - np.log(2.0), rel=1e-6)
    assert float(p.kl(p)) == pytest.approx(0.0, abs=1e-7)


def test_diag_gaussian_sample_from_noise():
    d = DiagGaussian(jnp.array([[1.0, -2.0]]), jnp.array([[np.log(3.0), 0.0]], np.float32))
    noise = jnp.array([[0.5, -1.0]])
    np.testing.assert_allclose(d.sample_from_noise(noise), [[1.0 + 3.0 * 0.5, -2.0 - 1.0]], rtol=1e-6)
    # Log-prob of the sample is log N(noise; 0, 1) - sum log_std.
    expected = stats.norm.logpdf([0.5, -1.0]).sum() - np.log(3.0)
    assert float(d.log_prob(d.sample_from_noise(noise))[0]) == pytest.approx(expected, rel=1e-6)
