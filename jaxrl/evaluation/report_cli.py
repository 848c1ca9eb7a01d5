"""``experiments/evaluate.py``: a comparison report from run directories."""
from __future__ import annotations

import glob
import sys
from pathlib import Path

from jaxrl.evaluation.policy_cli import OneLineErrorParser


def _expand(patterns) -> list[str]:
    """Run directories from paths or (unexpanded, e.g. quoted) glob patterns, in order, without repeats."""
    out = []
    for p in patterns:
        matches = sorted(glob.glob(p)) if any(c in p for c in "*?[") else [p]
        out += [m for m in matches if m not in out]
    return out


def main(argv=None, prog: str = "evaluate.py") -> int:
    from jaxrl.evaluation.report import REPORT_FILES

    parser = OneLineErrorParser(
        prog=prog,
        description="Aggregate training runs into a report: IQM, mean, median and optimality gap with stratified "
        "bootstrap intervals, probability of improvement, performance profiles and sample-efficiency curves "
        "(markdown, CSV and PNG). Runs are grouped by method and environment; a sweep gives one group per grid point.",
    )
    parser.add_argument("runs", nargs="+", help="run directories written by train.py (globs allowed)")
    parser.add_argument("--out", required=True, help="report directory")
    parser.add_argument("--method-from", choices=("config", "dirname"), default="config",
                        help="method name: the run's algorithm (+objective), or its directory name (default: config)")
    parser.add_argument("--label", action="append", default=[], metavar="RUN_DIR=NAME", help="name the method of one run directory (repeatable)")
    parser.add_argument("--normalize", choices=("auto", "table", "none"), default="auto",
                        help="normalise scores per environment with the score table: auto = whenever every environment is in it "
                        "(required to aggregate several environments) (default: auto)")
    parser.add_argument("--score-table", action="append", default=[], metavar="CSV",
                        help="extra random/reference scores (columns env,random,reference,source), overriding the built-in table")
    parser.add_argument("--reps", type=int, default=2000, help="bootstrap replications (default: 2000)")
    parser.add_argument("--confidence", type=float, default=0.95, help="interval coverage (default: 0.95)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing report in --out")
    args = parser.parse_args(argv)

    if args.reps < 100:
        parser.error(f"--reps: must be >= 100, got {args.reps}")
    if not 0.0 < args.confidence < 1.0:
        parser.error(f"--confidence: must be between 0 and 1, got {args.confidence}")
    runs = _expand(args.runs)
    if not runs:
        parser.error(f"runs: no directory matches {' '.join(args.runs)}")
    for r in runs:
        if not Path(r).is_dir():
            parser.error(f"runs: {r!r} is not a directory")
    labels = {}
    for item in args.label:
        if "=" not in item:
            parser.error(f"--label: expected RUN_DIR=NAME, got {item!r}")
        run, name = item.split("=", 1)
        if run not in runs:
            parser.error(f"--label: {run!r} is not one of the run directories given")
        labels[run] = name
    for table in args.score_table:
        if not Path(table).is_file():
            parser.error(f"--score-table: {table!r} is not a file")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        parser.error(f"--out: {args.out!r} exists and is not a directory")
    if out.is_dir() and any((out / f).exists() for f in REPORT_FILES) and not args.overwrite:
        parser.error(f"--out: {args.out!r} already holds a report; pass --overwrite to replace it or choose another --out")

    from jaxrl.evaluation.report import ReportError, write_report

    try:
        result = write_report(runs, out, args.method_from, labels, args.normalize, args.score_table, args.reps,
                              args.confidence, args.seed, log=lambda msg: print(msg, file=sys.stderr))
    except (ReportError, ValueError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    for method, metrics in result["aggregates"].items():
        iqm = metrics["iqm"]
        print(f"{method}: IQM {iqm[0]:.3f} [{iqm[1]:.3f}, {iqm[2]:.3f}]")
    print(f"report written to {out / 'report.md'}")
    return 0
