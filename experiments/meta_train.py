"""Meta-learn a policy objective: ``python experiments/meta_train.py --objective lpo --env Breakout-MinAtar
--population 64 --seeds-per-member 2 --generations 300 --out-dir runs/lpo``.

Fitness of a candidate objective is the final return of whole inner PPO runs; a generation
(population x seeds of full trainings) is one compiled program. All options: ``--help``.
Train with the result: ``python experiments/train.py --objective runs/lpo/best``.
"""
import sys

from jaxrl.distributed import run_entry_point  # joins a multi-process run before JAX starts
from jaxrl.runtime import cpu_threads_for_argv  # sizes XLA:CPU's thread pool before JAX starts

if __name__ == "__main__":
    sys.exit(run_entry_point("jaxrl.programs.meta_train", "meta_train.py", cpu_threads=cpu_threads_for_argv))
