"""Cost of checkpointing every chunk, on the CartPole PPO benchmark configuration.

    python benchmarks/checkpoint_overhead.py [--seeds 1 16] [--repeats 3]

Runs the same experiment (classic reference hyperparameters, 500k steps per
seed, 20 chunks) with checkpoints off and after every chunk, alternating the
two so machine noise hits both alike, and reports env steps/s of the whole
chunk loop (compute, metrics files and checkpoint saves; compile excluded).
Writes benchmarks/results/checkpoint_overhead.md.
"""
from __future__ import annotations

import argparse
import platform
import tempfile
from pathlib import Path

import jax

from jaxrl.programs.train import resolve
from jaxrl.programs.train import run as run_experiment


def one_run(seeds: int, checkpoint_every: int, out_dir: str, total: int) -> float:
    cfg = resolve(["--env", "CartPole-v1", "--num-seeds", str(seeds), "--total-timesteps", str(total),
                   "--num-chunks", "20", "--checkpoint-every", str(checkpoint_every), "--quiet", "--out-dir", out_dir])
    return run_experiment(cfg).summary["env_steps_per_second"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--total-timesteps", type=int, default=500_000)
    args = parser.parse_args()
    lines = [
        f"CPU: {platform.processor() or platform.machine()}, {jax.device_count()} JAX device(s), jax {jax.__version__}",
        "",
        "| seeds | env steps/s, no checkpoints | env steps/s, checkpoint every chunk (20 saves) | overhead |",
        "|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for seeds in args.seeds:
            off, on = [], []
            for r in range(args.repeats):
                off.append(one_run(seeds, 0, f"{tmp}/off{seeds}_{r}", args.total_timesteps))
                on.append(one_run(seeds, 1, f"{tmp}/on{seeds}_{r}", args.total_timesteps))
            best_off, best_on = max(off), max(on)  # best of repeats: least disturbed by other load
            lines.append(f"| {seeds} | {best_off:,.0f} | {best_on:,.0f} | {100 * (1 - best_on / best_off):.1f}% |")
            print(lines[-1], flush=True)
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "checkpoint_overhead.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
