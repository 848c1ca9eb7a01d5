"""Quality-diversity search: ``python experiments/qd.py --emitter dcg_me --task DeceptiveMaze-v0 --iterations 20``.

All options: ``python experiments/qd.py --help``. Flags override ``--config`` presets (configs/qd_*.yaml).
"""
import sys

from jaxrl.distributed import run_entry_point  # joins a multi-process run before JAX starts
from jaxrl.runtime import cpu_threads_for_argv  # sizes XLA:CPU's thread pool before JAX starts

if __name__ == "__main__":
    sys.exit(run_entry_point("jaxrl.programs.qd", "qd.py", cpu_threads=cpu_threads_for_argv))
