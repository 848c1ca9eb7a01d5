"""Evaluate a saved run: ``python experiments/evaluate_policy.py --run runs/x --episodes 100``."""
import sys

from jaxrl.evaluation.policy_cli import main

if __name__ == "__main__":
    sys.exit(main())
