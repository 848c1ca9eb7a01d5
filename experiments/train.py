"""Train an agent: ``python experiments/train.py --algo ppo --env CartPole-v1 --num-seeds 8``.

All options: ``python experiments/train.py --help``. Flags override ``--config`` presets.
"""
import sys

from jaxrl.experiment import main

if __name__ == "__main__":
    sys.exit(main(prog="train.py"))
