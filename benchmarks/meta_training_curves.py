"""Meta-training curves of several update-rule (or objective) runs in one figure: the held-out evaluation
of the current rule after every chunk (mean and 95% interval over its held-out agents) and the
population's mean fitness per generation.

``python benchmarks/meta_training_curves.py RUN_DIR [RUN_DIR ...] --labels dr,groove --out curves.png``
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="meta_train.py run directories (curves.npz)")
    parser.add_argument("--labels", default="", help="comma-separated labels (default: directory names)")
    parser.add_argument("--title", default="meta-training", help="figure title")
    parser.add_argument("--out", required=True, help="PNG path")
    args = parser.parse_args()
    labels = args.labels.split(",") if args.labels else [Path(r).name for r in args.runs]
    if len(labels) != len(args.runs):
        parser.error("--labels: one label per run directory")

    from matplotlib.figure import Figure

    from jaxrl.io.plots import mean_and_ci95

    fig = Figure(figsize=(11, 4))
    held_out, population = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for run, label in zip(args.runs, labels):
        curves = np.load(Path(run) / "curves.npz")
        evals = curves["eval_returns"].reshape(curves["eval_returns"].shape[0], -1)  # [C, seeds x agents]
        mean, half = mean_and_ci95(evals, axis=-1)
        line, = held_out.plot(curves["eval_generations"], mean, marker="o", label=label)
        held_out.fill_between(curves["eval_generations"], mean - half, mean + half, color=line.get_color(), alpha=0.2)
        pop = curves["population_returns"].reshape(curves["population_returns"].shape[0], -1).mean(-1)
        population.plot(curves["generation"], pop, color=line.get_color(), alpha=0.8, label=label)
    held_out.set_xlabel("generation")
    held_out.set_ylabel("held-out return of fresh agents (95% CI)")
    population.set_xlabel("generation")
    population.set_ylabel("population mean return (its own levels)")
    held_out.legend(fontsize=8)
    fig.suptitle(args.title)
    fig.savefig(args.out, dpi=100, bbox_inches="tight")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
