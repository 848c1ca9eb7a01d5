"""DRED's level dataset and VAE: ``python experiments/level_model.py --env Maze --out runs/level_models/maze_caves``."""
import sys

from jaxrl.programs.level_model import main

if __name__ == "__main__":
    sys.exit(main())
