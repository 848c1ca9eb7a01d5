"""jaxrl PPO against a reference JAX PPO's learning curves, same hyperparameters.

    python benchmarks/reference_curves.py            # CartPole-v1 (16 seeds) and Acrobot-v1 (8 seeds)

Writes benchmarks/results/reference_curves.png and .md. Both curves are the
training return of the stochastic policy (mean over the rollout of the last
finished episode's return per env), so like is compared with like.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from jaxrl import train
from jaxrl.io.plots import plt

HERE = Path(__file__).resolve().parent
CASES = {"CartPole-v1": ("ppo_cartpole_reference_curve.csv", 16), "Acrobot-v1": ("ppo_acrobot_reference_curve.csv", 8)}


def read_reference(name: str):
    with open(HERE / "reference" / name) as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total-timesteps", type=int, default=500_000)
    args = parser.parse_args()
    fig, axes = plt.subplots(1, len(CASES), figsize=(11, 4), constrained_layout=True)
    lines = ["| env | seeds | jaxrl last-10-update mean | reference last-10-update mean | jaxrl per-seed range | reference min to max across seeds (averaged over the last 10 updates) |", "|---|---|---|---|---|---|"]
    for ax, (env, (ref_file, seeds)) in zip(axes, CASES.items()):
        ref = read_reference(ref_file)
        result = train(env=env, num_seeds=seeds, total_timesteps=args.total_timesteps, quiet=True)
        ours = result.curves["train_return"][:, 0, :]  # [U, S]
        steps = result.env_steps
        ax.plot(ref["env_steps"], ref["mean"], label="reference JAX PPO", color="gray")
        ax.fill_between(ref["env_steps"], ref["p25"], ref["p75"], color="gray", alpha=0.25)
        mean = ours.mean(-1)
        ax.plot(steps, mean, label="jaxrl PPO", color="C0")
        ax.fill_between(steps, np.percentile(ours, 25, -1), np.percentile(ours, 75, -1), color="C0", alpha=0.25)
        ax.set_title(f"{env} ({seeds} seeds; mean, 25-75th percentile)")
        ax.set_xlabel("env steps per seed")
        ax.set_ylabel("training return")
        ax.grid(alpha=0.3)
        ax.legend()
        n_ref = min(len(ref["mean"]), len(mean))
        last_ours = ours[n_ref - 10:n_ref].mean(0)
        lines.append(
            f"| {env} | {seeds} | {last_ours.mean():.1f} | {ref['mean'][n_ref - 10:n_ref].mean():.1f} | "
            f"{last_ours.min():.1f} to {last_ours.max():.1f} | {ref['min'][n_ref - 10:n_ref].mean():.1f} to {ref['max'][n_ref - 10:n_ref].mean():.1f} |"
        )
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    fig.savefig(out / "reference_curves.png", dpi=110)
    (out / "reference_curves.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
