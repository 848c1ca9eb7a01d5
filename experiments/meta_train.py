"""Meta-learn a policy objective: ``python experiments/meta_train.py --objective lpo --env Breakout-MinAtar
--population 64 --seeds-per-member 2 --generations 300 --out-dir runs/lpo``.

Fitness of a candidate objective is the final return of whole inner PPO runs; a generation
(population x seeds of full trainings) is one compiled program. All options: ``--help``.
Train with the result: ``python experiments/train.py --objective runs/lpo/best``.
"""
import sys

from jaxrl.training.meta_experiment import main

if __name__ == "__main__":
    sys.exit(main(prog="meta_train.py"))
