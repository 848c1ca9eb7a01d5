"""Environment-design curricula: ``python experiments/ued.py --method robust_plr --env Maze --num-seeds 4``.

All options: ``python experiments/ued.py --help``. Flags override ``--config`` presets (configs/ued_*.yaml).
"""
import sys

from jaxrl.distributed import run_entry_point  # joins a multi-process run before JAX starts
from jaxrl.runtime import cpu_threads_for_argv  # sizes XLA:CPU's thread pool before JAX starts

if __name__ == "__main__":
    sys.exit(run_entry_point("jaxrl.programs.ued", "ued.py", cpu_threads=cpu_threads_for_argv))
