"""Robust adversarial RL: ``python experiments/adversarial.py --method qarl --env CartPole-v1 --num-seeds 2``.

Methods: qarl, rarl, none, fixed_temperature, linear_schedule. All options: ``python experiments/adversarial.py
--help``. Flags override ``--config`` presets (configs/adversarial_*.yaml).
"""
import sys

from jaxrl.distributed import run_entry_point  # joins a multi-process run before JAX starts
from jaxrl.runtime import cpu_threads_for_argv  # sizes XLA:CPU's thread pool before JAX starts

if __name__ == "__main__":
    sys.exit(run_entry_point("jaxrl.programs.adversarial", "adversarial.py", cpu_threads=cpu_threads_for_argv))
