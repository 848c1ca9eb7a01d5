"""Draw a saved objective's drift against r for A = +1 and A = -1, with PPO-clip and DPO:
``python experiments/inspect_objective.py runs/lpo/best --out drift.png``."""
import sys

from jaxrl.objectives.inspect import main

if __name__ == "__main__":
    sys.exit(main(prog="inspect_objective.py"))
