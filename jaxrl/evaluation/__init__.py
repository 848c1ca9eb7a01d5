"""Evaluation: fixed-length rollouts inside the compiled program."""
from jaxrl.evaluation.rollout import evaluate_episodes, make_evaluate

__all__ = ["evaluate_episodes", "make_evaluate"]
