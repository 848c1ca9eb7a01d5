"""Aggregate statistics: hand-computed cases and agreement with the reference rliable package."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.evaluation import stats


def test_iqm_on_a_hand_computed_array():
    # 8 scores: int(0.25 * 8) = 2 dropped at each end -> mean(3, 4, 5, 6) = 4.5.
    scores = np.array([[10.0, 1.0], [3.0, 0.0], [4.0, 6.0], [5.0, 100.0]])
    assert float(stats.aggregate_iqm(scores)) == pytest.approx(4.5)
    # 10 scores: int(2.5) = 2 dropped at each end -> mean of the middle six of 0..9 = 4.5.
    assert float(stats.aggregate_iqm(np.arange(10.0).reshape(5, 2))) == pytest.approx(4.5)


def test_optimality_gap_mean_median_on_hand_computed_arrays():
    scores = np.array([[0.5, 1.5], [1.0, 0.0]])
    # min(score, 1) = 0.5, 1, 1, 0 -> mean 0.625 -> gap 0.375
    assert float(stats.aggregate_optimality_gap(scores)) == pytest.approx(0.375)
    assert float(stats.aggregate_optimality_gap(scores, gamma=2.0)) == pytest.approx(2.0 - 0.75)
    # per-task means 0.75 and 0.75
    assert float(stats.aggregate_mean(scores)) == pytest.approx(0.75)
    scores3 = np.array([[0.0, 1.0, 4.0], [2.0, 3.0, 8.0]])  # task means 1, 2, 6 -> median 2
    assert float(stats.aggregate_median(scores3)) == pytest.approx(2.0)


def test_probability_of_improvement_counts_pairs_and_ties():
    x = np.array([[1.0, 5.0], [3.0, 5.0]])
    y = np.array([[2.0, 5.0], [0.0, 5.0], [4.0, 5.0]])
    # task 0: x=1 beats 0; x=3 beats 2, 0 -> 3 wins of 6 pairs; task 1: all ties -> 0.5.
    assert float(stats.probability_of_improvement(x, y)) == pytest.approx((3 / 6 + 0.5) / 2)


def test_score_distribution_is_the_fraction_above_each_threshold():
    scores = np.array([[0.1, 0.9], [0.5, 0.7]])
    np.testing.assert_allclose(stats.score_distribution(scores, [0.0, 0.5, 0.8, 1.0]), [1.0, 0.5, 0.25, 0.0])
    np.testing.assert_allclose(stats.average_score_distribution(scores, [0.2, 0.5, 0.9]), [1.0, 0.5, 0.0])


def test_bootstrap_interval_brackets_the_point_and_shrinks_with_more_runs():
    rng = np.random.default_rng(0)
    key = jax.random.PRNGKey(0)
    small = stats.interval_estimate(key, stats.aggregate_iqm, rng.normal(size=(5, 3)))
    large = stats.interval_estimate(key, stats.aggregate_iqm, rng.normal(size=(200, 3)))
    for est in (small, large):
        assert est.low <= est.point <= est.high
    assert (large.high - large.low) < (small.high - small.low) / 3


def test_stratified_resample_keeps_each_task_within_its_own_runs():
    scores = np.stack([np.arange(6.0), 100 + np.arange(6.0)], axis=1)  # task 1 values >= 100
    sample = np.asarray(stats.stratified_resample(jax.random.PRNGKey(3), jnp.asarray(scores)))
    assert np.all(sample[:, 0] < 6) and np.all(sample[:, 1] >= 100)


rly = pytest.importorskip("rliable.library", reason="the reference rliable package (dev extra)")
rmetrics = pytest.importorskip("rliable.metrics")


def _random_scores(seed, runs, tasks):
    rng = np.random.default_rng(seed)
    return rng.gamma(2.0, 0.5, size=(runs, tasks))  # skewed, like normalised returns


@pytest.mark.parametrize("runs,tasks", [(10, 1), (7, 5), (33, 3)])
def test_point_estimates_equal_rliable(runs, tasks):
    a, b = _random_scores(runs, runs, tasks), _random_scores(runs + 100, runs + 3, tasks)
    np.testing.assert_allclose(stats.aggregate_mean(a), rmetrics.aggregate_mean(a), rtol=1e-5)
    np.testing.assert_allclose(stats.aggregate_median(a), rmetrics.aggregate_median(a), rtol=1e-5)
    np.testing.assert_allclose(stats.aggregate_iqm(a), rmetrics.aggregate_iqm(a), rtol=1e-5)
    np.testing.assert_allclose(stats.aggregate_optimality_gap(a), rmetrics.aggregate_optimality_gap(a), rtol=1e-5)
    np.testing.assert_allclose(stats.probability_of_improvement(a, b), rmetrics.probability_of_improvement(a, b), rtol=1e-5)
    taus = np.linspace(0, 3, 13)
    ref_profiles, _ = rly.create_performance_profile({"m": a}, taus, reps=10)
    np.testing.assert_allclose(stats.score_distribution(a, taus), ref_profiles["m"], atol=1e-6)


def test_bootstrap_intervals_agree_with_rliable():
    """Both resample with independent random streams, so the interval ends differ by
    Monte-Carlo error only: with 5k replications each, the ends of a 95% interval of
    the IQM of 12 runs x 4 tasks agree to within 5% of the interval's width (measured
    over 3 x 8 pairs of random streams: at most 3%)."""
    scores = _random_scores(1, 12, 4)
    np.random.seed(0)
    ref_points, ref_cis = rly.get_interval_estimates(
        {"m": scores}, lambda s: np.array([rmetrics.aggregate_iqm(s), rmetrics.aggregate_optimality_gap(s)]), reps=5000
    )
    ours = stats.interval_estimate(
        jax.random.PRNGKey(0), lambda s: jnp.stack([stats.aggregate_iqm(s), stats.aggregate_optimality_gap(s)]), scores, reps=5000
    )
    np.testing.assert_allclose(ours.point, ref_points["m"], rtol=1e-5)
    width = ref_cis["m"][1] - ref_cis["m"][0]
    np.testing.assert_allclose(ours.low, ref_cis["m"][0], atol=0.05 * width.max())
    np.testing.assert_allclose(ours.high, ref_cis["m"][1], atol=0.05 * width.max())


def test_probability_of_improvement_interval_agrees_with_rliable():
    """2k replications each (rliable's pairwise comparison is the slow side): the interval ends agree
    to within 8% of the width (measured over 3 x 8 pairs of random streams: at most 5.6%, std 1.6%)."""
    x, y = _random_scores(2, 10, 3), _random_scores(3, 8, 3) * 0.8
    np.random.seed(1)
    ref_point, ref_ci = rly.get_interval_estimates({"x,y": [x, y]}, rmetrics.probability_of_improvement, reps=2000)
    ours = stats.interval_estimate(jax.random.PRNGKey(1), stats.probability_of_improvement, x, y, reps=2000)
    np.testing.assert_allclose(ours.point, ref_point["x,y"], rtol=1e-5)
    ref_low, ref_high = np.ravel(ref_ci["x,y"])
    width = ref_high - ref_low
    assert abs(float(ours.low) - ref_low) < 0.08 * width
    assert abs(float(ours.high) - ref_high) < 0.08 * width
