"""Evaluation: fixed-length rollouts inside the compiled program, aggregate statistics with
stratified bootstrap intervals (``stats``), score normalisation (``scores``) and reports (``report``)."""
from jaxrl.evaluation.rollout import evaluate_episodes, make_evaluate
from jaxrl.evaluation.scores import ScoreRef, load_score_table
from jaxrl.evaluation.stats import (
    AGGREGATES,
    Interval,
    aggregate_iqm,
    aggregate_mean,
    aggregate_median,
    aggregate_optimality_gap,
    all_aggregates,
    average_score_distribution,
    interval_estimate,
    iqm_and_mean,
    normalize_scores,
    probability_of_improvement,
    score_distribution,
)

__all__ = [
    "AGGREGATES", "Interval", "ScoreRef", "aggregate_iqm", "aggregate_mean", "aggregate_median",
    "aggregate_optimality_gap", "all_aggregates", "average_score_distribution", "evaluate_episodes",
    "interval_estimate", "iqm_and_mean", "load_score_table", "make_evaluate", "normalize_scores", "probability_of_improvement",
    "score_distribution",
]
