"""Train an agent: ``python experiments/train.py --algo ppo --env CartPole-v1 --num-seeds 8``.

All options: ``python experiments/train.py --help``. Flags override ``--config`` presets.
"""
import sys

from jaxrl.distributed import run_entry_point  # joins a multi-process run before JAX starts
from jaxrl.runtime import cpu_threads_for_argv  # sizes XLA:CPU's thread pool before JAX starts

if __name__ == "__main__":
    sys.exit(run_entry_point("jaxrl.programs.train", "train.py", cpu_threads=cpu_threads_for_argv))
