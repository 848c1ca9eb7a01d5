"""Meta-test learned objectives against PPO and DPO on other environments and horizons:
``python experiments/meta_test.py runs/lpo/best --envs CartPole-v1,Acrobot-v1 --timesteps 50000,200000 --out reports/lpo``."""
import sys

from jaxrl.evaluation.meta_test import main

if __name__ == "__main__":
    sys.exit(main(prog="meta_test.py"))
