"""Compare runs: ``python experiments/evaluate.py runs/ppo_* runs/lpo_* --out reports/cmp``."""
import sys

from jaxrl.evaluation.report_cli import main

if __name__ == "__main__":
    sys.exit(main())
