"""Evolve policies: ``python experiments/evolve.py --strategy openai_es --env CartPole-v1 --population 256``.

All options: ``python experiments/evolve.py --help``. Flags override ``--config`` presets.
"""
import sys

from jaxrl.evolution.experiment import main

if __name__ == "__main__":
    sys.exit(main(prog="evolve.py"))
