"""Environment-design curricula: ``python experiments/ued.py --method robust_plr --env Maze --num-seeds 4``.

All options: ``python experiments/ued.py --help``. Flags override ``--config`` presets (configs/ued_*.yaml).
"""
import sys

from jaxrl.curricula.experiment import main

if __name__ == "__main__":
    sys.exit(main(prog="ued.py"))
