"""Reward-function optimisation: ``python experiments/reward_opt.py --method barfi --env CartPole-v1 --heuristic misspecified``.

Methods: barfi (a learned reward and discount, implicit or unrolled outer gradient), primary_only, naive, pbrs.
Tasks: CartPole-v1, MountainCar-v0, GoalGrid-v0, each with a good and a misspecified heuristic. All options:
``python experiments/reward_opt.py --help``. Flags override ``--config`` presets (configs/reward_opt_*.yaml).
"""
import sys

from jaxrl.distributed import run_entry_point  # joins a multi-process run before JAX starts
from jaxrl.runtime import cpu_threads_for_argv  # sizes XLA:CPU's thread pool before JAX starts

if __name__ == "__main__":
    sys.exit(run_entry_point("jaxrl.programs.reward_opt", "reward_opt.py", cpu_threads=cpu_threads_for_argv))
