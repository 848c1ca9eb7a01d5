"""Figures of a learned objective's drift, like those of the LPO and TA-LPO papers."""
from __future__ import annotations

import numpy as np

from jaxrl.objectives import DPO, PPO_CLIP, drift_curve

RATIOS = np.linspace(0.02, 2.5, 250)
TA_PROGRESS = (0.0, 0.25, 0.5, 0.75, 0.99)


def drift_table(objective, meta_params, advantages=(1.0, -1.0), progress=TA_PROGRESS, ratios=RATIOS,
                num_updates: float = 1000.0) -> dict:
    """``{label: {advantage: drift [K]}}``: one curve per training progress for ``ta_lpo``
    (the objective can change over the agent's lifetime), one for ``lpo``."""
    points = progress if objective.name == "ta_lpo" else (0.0,)
    table = {}
    for p in points:
        label = f"{objective.name}, n/N = {p:g}" if objective.name == "ta_lpo" else objective.name
        table[label] = {a: np.asarray(drift_curve(objective, meta_params, ratios, a, p, num_updates)) for a in advantages}
    return table


def reference_table(advantages=(1.0, -1.0), ratios=RATIOS) -> dict:
    """PPO-clip (eps = 0.2) and DPO (alpha = 2, beta = 0.6) drifts for comparison."""
    return {name: {a: np.asarray(drift_curve(o, (), ratios, a)) for a in advantages}
            for name, o in (("PPO-clip", PPO_CLIP), ("DPO", DPO))}


def write_drift_figure(path, objective, meta_params, title: str | None = None, num_updates: float = 1000.0) -> None:
    """Draws the drift of ``objective`` against r for A = +1 and A = -1 with PPO and DPO."""
    from jaxrl.io.plots import plot_drift

    plot_drift(path, RATIOS, drift_table(objective, meta_params, num_updates=num_updates), reference_table(),
               title or f"learned drift ({objective.name})")


def main(argv=None, prog: str = "inspect_objective.py") -> int:
    """Entry point of ``experiments/inspect_objective.py``; exit 2 on bad input (one line)."""
    import sys
    from pathlib import Path

    from jaxrl.evaluation.policy_cli import OneLineErrorParser
    from jaxrl.objectives import is_saved_objective, load_objective

    parser = OneLineErrorParser(prog=prog, description="Draw a saved objective's drift function.")
    parser.add_argument("objective", help="saved objective directory (meta_train.py's best/ or final/)")
    parser.add_argument("--out", default="", help="PNG path (default: OBJECTIVE/drift.png)")
    parser.add_argument("--num-updates", type=float, default=1000.0, help="training horizon N shown to ta_lpo with log N (default: 1000)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if not is_saved_objective(args.objective):
        parser.error(f"objective: {args.objective!r} is not a saved objective directory (objective.json + params.msgpack)")
    out = Path(args.out or Path(args.objective) / "drift.png")
    if out.exists() and args.out and not args.overwrite:
        parser.error(f"--out: {str(out)!r} exists; pass --overwrite to replace it")
    if args.num_updates < 1:
        parser.error(f"--num-updates: must be >= 1, got {args.num_updates}")
    objective, params = load_objective(args.objective)
    write_drift_figure(out, objective, params, f"{objective.name}: {args.objective}", args.num_updates)
    print(f"drift figure written to {out}")
    return 0
