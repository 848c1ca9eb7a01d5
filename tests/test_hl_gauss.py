"""HL-Gauss target histograms, loss and categorical value against hand-computed values."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.losses import categorical_value, hl_gauss_loss, hl_gauss_sigma, hl_gauss_support, hl_gauss_target

# Support [0, 4] in 4 bins: edges 0, 1, 2, 3, 4; centres 0.5, 1.5, 2.5, 3.5; bin width 1; default sigma 0.75.
V_MIN, V_MAX, BINS, SIGMA = 0.0, 4.0, 4, 0.75


def phi(z):
    """Standard normal CDF by hand."""
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def hand_histogram(y, sigma=SIGMA):
    edges = [0.0, 1.0, 2.0, 3.0, 4.0]
    mass = [phi((hi - y) / sigma) - phi((lo - y) / sigma) for lo, hi in zip(edges[:-1], edges[1:])]
    inside = phi((4.0 - y) / sigma) - phi((0.0 - y) / sigma)
    return [m / inside for m in mass]


def test_support_edges_and_centres():
    edges, centers = hl_gauss_support(V_MIN, V_MAX, BINS)
    np.testing.assert_allclose(edges, [0.0, 1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(centers, [0.5, 1.5, 2.5, 3.5])
    edges, centers = hl_gauss_support(-1.0, 1.0, 2)
    np.testing.assert_allclose(edges, [-1.0, 0.0, 1.0])
    np.testing.assert_allclose(centers, [-0.5, 0.5])


@pytest.mark.parametrize(
    "target, expected",
    [
        # At the centre 1.5 of bin 1. Phi(-2) = .022750, Phi(-2/3) = .252493, Phi(2/3) = .747507,
        # Phi(2) = .977250, Phi(10/3) = .999571: masses .229743, .495015, .229743, .022321, inside .976821.
        (1.5, [0.235194, 0.506761, 0.235194, 0.022851]),
        # On the edge 2 between bins 1 and 2: symmetric. Phi(-8/3) = .003830, Phi(-4/3) = .091211:
        # masses .087381, .408789, .408789, .087381, inside .992339.
        (2.0, [0.088055, 0.411945, 0.411945, 0.088055]),
        # On the upper end of the support: only half the Gaussian is inside (inside = .5), so every
        # mass doubles: .000032, .003799, .087381, .408789 -> .000063, .007597, .174762, .817578.
        (4.0, [0.000063, 0.007597, 0.174762, 0.817578]),
    ],
)
def test_histogram_matches_hand_computed_values(target, expected):
    probs = hl_gauss_target(jnp.array(target), V_MIN, V_MAX, BINS)  # default sigma: 0.75 bin widths
    np.testing.assert_allclose(probs, expected, atol=2e-6)
    np.testing.assert_allclose(probs, hand_histogram(target), atol=2e-6)


def test_sigma_in_bin_widths():
    assert hl_gauss_sigma(V_MIN, V_MAX, BINS) == pytest.approx(SIGMA)  # default: 0.75 bin widths
    assert hl_gauss_sigma(-10.0, 10.0, 40, 0.5) == pytest.approx(0.25)


def test_explicit_sigma():
    probs = hl_gauss_target(jnp.array(2.5), V_MIN, V_MAX, BINS, sigma=0.3)
    np.testing.assert_allclose(probs, hand_histogram(2.5, sigma=0.3), atol=2e-6)
    # Narrow Gaussian: nearly all mass in the target's own bin (Phi(5/3) - Phi(-5/3) = .904419).
    assert float(probs[2]) == pytest.approx(0.904419 / (phi(2.5 / 0.3) - phi(-2.5 / 0.3)), abs=2e-6)


def test_targets_outside_the_support_are_clipped():
    probs = hl_gauss_target(jnp.array([-3.0, 0.0, 9.0, 4.0]), V_MIN, V_MAX, BINS)
    np.testing.assert_allclose(probs[0], probs[1], atol=1e-7)
    np.testing.assert_allclose(probs[2], probs[3], atol=1e-7)
    np.testing.assert_allclose(probs[3], [0.000063, 0.007597, 0.174762, 0.817578], atol=2e-6)


def test_histograms_are_normalised_and_batched():
    targets = jax.random.uniform(jax.random.PRNGKey(0), (5, 7), minval=-20.0, maxval=120.0)
    probs = hl_gauss_target(targets, 0.0, 100.0, 51)
    assert probs.shape == (5, 7, 51)
    assert np.all(np.asarray(probs) >= 0.0)
    np.testing.assert_allclose(jnp.sum(probs, axis=-1), np.ones((5, 7)), atol=1e-5)


def test_loss_is_cross_entropy_with_the_histogram():
    logits = jnp.array([[0.3, -1.0, 2.0, 0.5], [1.0, 1.0, 1.0, 1.0]])
    targets = jnp.array([1.5, 2.0])
    loss = hl_gauss_loss(logits, targets, V_MIN, V_MAX)
    assert loss.shape == (2,)
    for i, y in enumerate((1.5, 2.0)):
        row = np.asarray(logits[i], np.float64)
        log_softmax = row - np.log(np.sum(np.exp(row)))
        expected = -float(np.dot(hand_histogram(y), log_softmax))
        assert float(loss[i]) == pytest.approx(expected, rel=1e-5)
    # Uniform logits: cross-entropy log(4) whatever the target.
    assert float(loss[1]) == pytest.approx(math.log(4.0), rel=1e-6)


def test_loss_is_minimal_at_the_target_histogram():
    """Cross-entropy >= entropy of the target, with equality at logits = log(target histogram)."""
    target = jnp.array(1.2)
    probs = hl_gauss_target(target, V_MIN, V_MAX, BINS)
    entropy = -float(jnp.sum(probs * jnp.log(probs)))
    assert float(hl_gauss_loss(jnp.log(probs), target, V_MIN, V_MAX)) == pytest.approx(entropy, rel=1e-5)
    assert float(hl_gauss_loss(jnp.log(probs) + jnp.array([0.1, 0.0, 0.0, 0.0]), target, V_MIN, V_MAX)) > entropy


def test_categorical_value_is_expected_centre():
    logits = jnp.log(jnp.array([0.1, 0.2, 0.3, 0.4]))
    # 0.1 * 0.5 + 0.2 * 1.5 + 0.3 * 2.5 + 0.4 * 3.5 = 2.5
    assert float(categorical_value(logits, V_MIN, V_MAX)) == pytest.approx(2.5, rel=1e-6)
    assert float(categorical_value(jnp.zeros(4), V_MIN, V_MAX)) == pytest.approx(2.0, rel=1e-6)


@pytest.mark.parametrize("target", [-7.3, -2.0, 0.0, 0.41, 3.0, 6.66])
def test_value_recovery_within_a_bin_width(target):
    """The prediction of a head that matches the target histogram is the target to within a bin
    width for targets inside the support (away from its ends, where truncation biases it)."""
    v_min, v_max, bins = -10.0, 10.0, 21
    width = (v_max - v_min) / bins
    logits = jnp.log(hl_gauss_target(jnp.array(target), v_min, v_max, bins))
    value = float(categorical_value(logits, v_min, v_max))
    assert abs(value - target) < width, (value, target)
    # Interior targets are recovered much better than that (the Gaussian is symmetric).
    assert abs(value - target) < 1e-3, (value, target)


def test_gradient_flows_into_logits_only():
    logits = jnp.array([0.2, -0.1, 0.4, 0.0])
    g_logits, g_target = jax.grad(lambda lg, y: hl_gauss_loss(lg, y, V_MIN, V_MAX), argnums=(0, 1))(logits, jnp.array(1.7))
    assert float(g_target) == 0.0
    # d CE / d logits = softmax(logits) - target histogram
    expected = jax.nn.softmax(logits) - jnp.array(hand_histogram(1.7))
    np.testing.assert_allclose(g_logits, expected, atol=1e-6)
    # Through a traced sigma as well: no gradient into the target side.
    g_sigma = jax.grad(lambda s: hl_gauss_loss(logits, jnp.array(1.7), V_MIN, V_MAX, s))(jnp.float32(0.75))
    assert float(g_sigma) == 0.0
