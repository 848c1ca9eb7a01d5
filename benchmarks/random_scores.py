"""Measures the random-policy column of jaxrl/evaluation/score_table.csv.

    python benchmarks/random_scores.py CartPole-v1 Acrobot-v1 ...

Prints ``env,random`` rows: the mean undiscounted return of a uniformly random
policy over ``--episodes`` episodes (key 0).
"""
from __future__ import annotations

import argparse

import jax
import numpy as np

from jaxrl.evaluation.scores import random_policy_returns


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("envs", nargs="+")
    p.add_argument("--episodes", type=int, default=1000)
    args = p.parse_args()
    print("env,random,episodes,std")
    for name in args.envs:
        returns = np.asarray(random_policy_returns(jax.random.PRNGKey(0), name, args.episodes))
        print(f"{name},{returns.mean():.4g},{args.episodes},{returns.std():.3g}", flush=True)


if __name__ == "__main__":
    main()
