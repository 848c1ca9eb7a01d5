"""``experiments/meta_test.py``: a learned objective against PPO and DPO on environments and
training horizons it was not meta-trained on, reported as IQM with bootstrap intervals.

Every (objective, environment, horizon) is one ``train.py`` run of ``--num-seeds`` seeds
(seeds vmapped in one program) written under ``OUT/runs/``; for each horizon the runs go
through the report (:func:`jaxrl.evaluation.report.write_report`) into ``OUT/horizon_<steps>/``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from jaxrl.evaluation.policy_cli import OneLineErrorParser

BASELINES = ("ppo_clip", "dpo", "mdpo", "lpo", "ta_lpo")


def _csv_list(text: str, cast=str) -> list:
    return [cast(x) for x in text.split(",") if x.strip()]


def run_label(objective: str) -> str:
    """Method name of an ``--objective`` value: a saved directory is ``<kind> (learned: <dir>)``."""
    from jaxrl.objectives import is_saved_objective
    from jaxrl.objectives.store import read_spec

    if is_saved_objective(objective):
        return f"{read_spec(objective)['objective']} (learned: {Path(objective).parent.name or objective})"
    return objective


def main(argv=None, prog: str = "meta_test.py") -> int:
    parser = OneLineErrorParser(prog=prog, description=__doc__.split("\n\n")[0].replace("``", ""))
    parser.add_argument("objectives", nargs="+", help="saved objective directories (meta_train.py's best/) or objective names")
    parser.add_argument("--envs", required=True, help="comma-separated environments, e.g. CartPole-v1,Acrobot-v1")
    parser.add_argument("--timesteps", required=True, help="comma-separated training horizons (env steps per seed)")
    parser.add_argument("--baselines", default="ppo_clip,dpo", help="comma-separated fixed objectives to compare with (default: ppo_clip,dpo)")
    parser.add_argument("--num-seeds", type=int, default=8, help="seeds per run (default: 8)")
    parser.add_argument("--preset", action="append", default=[], metavar="ENV=YAML",
                        help="PPO preset of an environment's runs (repeatable; default: train.py's PPO defaults)")
    parser.add_argument("--normalize", choices=("auto", "table", "none"), default="auto", help="score normalisation of the report (default: auto)")
    parser.add_argument("--reps", type=int, default=2000, help="bootstrap replications (default: 2000)")
    parser.add_argument("--seed", type=int, default=0, help="base seed of every run (default: 0)")
    parser.add_argument("--out", required=True, help="output directory (runs/ and one report per horizon)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output directory's content")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    from jaxrl import envs
    from jaxrl.objectives import OBJECTIVES, is_saved_objective

    env_names = _csv_list(args.envs)
    for name in env_names:
        if name not in envs.registered_envs():
            parser.error(f"--envs: {envs.registry.unknown_env_message(name)}")
    try:
        horizons = _csv_list(args.timesteps, lambda x: int(float(x)))
    except ValueError:
        parser.error(f"--timesteps: expected comma-separated integers, got {args.timesteps!r}")
    if not horizons or min(horizons) < 1:
        parser.error(f"--timesteps: expected positive horizons, got {args.timesteps!r}")
    baselines = _csv_list(args.baselines)
    for b in baselines:
        if b not in BASELINES:
            parser.error(f"--baselines: {b!r} is not one of {', '.join(BASELINES)}")
    for o in args.objectives:
        if o not in OBJECTIVES and not is_saved_objective(o):
            parser.error(f"objectives: {o!r} is neither an objective name nor a saved objective directory")
    if args.num_seeds < 1:
        parser.error(f"--num-seeds: must be >= 1, got {args.num_seeds}")
    if args.reps < 100:
        parser.error(f"--reps: must be >= 100, got {args.reps}")
    presets = {}
    for item in args.preset:
        env, _, path = item.partition("=")
        if env not in env_names or not Path(path).is_file():
            parser.error(f"--preset: expected ENV=YAML with ENV in --envs and an existing file, got {item!r}")
        presets[env] = path
    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        parser.error(f"--out: {args.out!r} is not empty; pass --overwrite or choose another --out")

    from jaxrl.config import ConfigError
    from jaxrl.evaluation.report import ReportError, write_report
    from jaxrl.programs.train import main as train_main

    objectives = list(dict.fromkeys([*args.objectives, *baselines]))
    labels = {o: run_label(o) for o in objectives}
    results = {}
    for horizon in horizons:
        run_dirs, run_labels = [], {}
        for env_name in env_names:
            for i, objective in enumerate(objectives):
                run_dir = out / "runs" / f"h{horizon}_{env_name.replace('/', '_')}_{i}"
                flags = ["--algo", "ppo", "--env", env_name, "--objective", objective, "--total-timesteps", str(horizon),
                         "--num-seeds", str(args.num_seeds), "--seed", str(args.seed), "--checkpoint-every", "0",
                         "--quiet", "--overwrite", "--out-dir", str(run_dir)]
                if env_name in presets:
                    flags = ["--config", presets[env_name], *flags]
                print(f"training {labels[objective]} on {env_name} for {horizon} steps x {args.num_seeds} seeds", flush=True)
                try:
                    code = train_main(flags, prog=prog)
                except ConfigError as e:
                    print(f"{prog}: error: {e}", file=sys.stderr)
                    return 2
                if code != 0:
                    return code
                run_dirs.append(str(run_dir))
                run_labels[str(run_dir)] = labels[objective]
        try:
            report = write_report(run_dirs, out / f"horizon_{horizon}", labels=run_labels, normalize=args.normalize,
                                  reps=args.reps, log=lambda m: print(m, file=sys.stderr))
        except (ReportError, ValueError) as e:
            print(f"{prog}: error: {e}", file=sys.stderr)
            return 2
        results[horizon] = report
        for method, metrics in report["aggregates"].items():
            p, lo, hi = metrics["iqm"]
            print(f"horizon {horizon}: {method}: IQM {p:.3f} [{lo:.3f}, {hi:.3f}]")
    (out / "meta_test.json").write_text(json.dumps({"envs": env_names, "num_seeds": args.num_seeds,
                                                    "results": {str(h): r for h, r in results.items()}}, indent=2))
    print(f"reports written to {out}/horizon_*/report.md")
    return 0
