"""``experiments/meta_test.py``: learned objectives and update rules against fixed algorithms on environments
and training horizons they were not meta-trained on, reported as IQM with bootstrap intervals.

Every (method, environment, horizon) is one ``train.py`` run of ``--num-seeds`` seeds
(seeds vmapped in one program) written under ``OUT/runs/``; for each horizon the runs go
through the report (:func:`jaxrl.evaluation.report.write_report`) into ``OUT/horizon_<steps>/`` (with
``--normalize auto`` and an environment the score table lacks, one report per environment,
``OUT/horizon_<steps>/<env>/``: raw returns of different environments do not aggregate).
A saved objective (LPO, TA-LPO) trains PPO with it; a saved update rule (LPG, TA-LPG) trains a fresh
LPG agent with it (``train.py --algo lpg``: on a grid world the agent it was meta-trained with,
environments and rollout length included, elsewhere two hidden layers and Adam on the same rollout
length). Baselines: the fixed objectives, and ``a2c`` (PPO with one epoch of one minibatch: the
only gradient step of the clipped surrogate, at ratio 1, is A2C's policy gradient). Every run's
config is resolved, and refused with one line and exit 2, before anything compiles.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from jaxrl.evaluation.policy_cli import OneLineErrorParser

BASELINES = ("ppo_clip", "dpo", "mdpo", "lpo", "ta_lpo", "a2c")
# The LPG agent off the grid worlds (the LPG paper's Atari agents also learn with Adam).
DEEP_LPG_AGENT = ["--hidden-sizes", "64,64", "--optimizer", "adam", "--policy-lr", "5e-4", "--y-lr", "5e-4"]


def is_saved_rule(path: str) -> bool:
    """Whether ``path`` holds an update rule saved by ``meta_train.py --objective lpg|ta_lpg``."""
    from jaxrl.objectives import is_saved_objective
    from jaxrl.objectives.store import read_spec

    return is_saved_objective(path) and "rule" in read_spec(path)


# Settings of the agent a rule was meta-trained with that its fresh agents keep: on a grid world all of them,
# elsewhere the trajectory length and prediction size the rule reads (the deep agent brings its own network
# and optimiser).
GRID_AGENT_KEYS = ("num_envs", "rollout_len", "hidden_sizes", "y_dim", "optimizer", "policy_lr", "y_lr", "y_coef", "gamma",
                   "max_grad_norm")
DEEP_AGENT_KEYS = ("rollout_len", "y_dim", "y_coef", "gamma")


def rule_agent_flags(method: str, env_name: str) -> list[str]:
    """``train.py --algo lpg`` flags of the agent a saved rule was meta-trained with (``info.agent``)."""
    from jaxrl.objectives.store import read_spec

    on_grid = env_name.startswith("GridWorld")
    saved = read_spec(method).get("info", {}).get("agent", {})
    flags = []
    for key in GRID_AGENT_KEYS if on_grid else DEEP_AGENT_KEYS:
        if key in saved:
            value = saved[key]
            value = ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else value
            flags += [f"--{key.replace('_', '-')}", str(value)] if value != "" else []
    return flags if on_grid else [*flags, *DEEP_LPG_AGENT]


def method_flags(method: str, env_name: str) -> list[str]:
    """``train.py`` flags that select one method: a saved rule, ``a2c``, or a (saved) objective with PPO."""
    if is_saved_rule(method):
        return ["--algo", "lpg", "--rule", method, "--eval-stochastic", *rule_agent_flags(method, env_name)]
    if method == "a2c":
        return ["--algo", "ppo", "--num-epochs", "1", "--num-minibatches", "1"]
    return ["--algo", "ppo", "--objective", method]


def _csv_list(text: str, cast=str) -> list:
    return [cast(x) for x in text.split(",") if x.strip()]


def run_label(objective: str) -> str:
    """Method name of an ``--objective`` value: a saved directory is ``<kind> (learned: <dir>)``."""
    from jaxrl.objectives import is_saved_objective
    from jaxrl.objectives.store import read_spec

    if is_saved_objective(objective):
        spec = read_spec(objective)
        kind = spec.get("rule") or spec.get("objective")
        return f"{kind} (learned: {Path(objective).parent.name or objective})"
    return objective


def main(argv=None, prog: str = "meta_test.py") -> int:
    parser = OneLineErrorParser(prog=prog, description=__doc__.split("\n\n")[0].replace("``", ""))
    parser.add_argument("objectives", nargs="+", help="saved objectives or update rules (meta_train.py's best/) or objective names")
    parser.add_argument("--envs", required=True, help="comma-separated environments, e.g. CartPole-v1,Acrobot-v1")
    parser.add_argument("--timesteps", default="1000000", help="comma-separated training horizons (env steps per seed; default: 1e6)")
    parser.add_argument("--baselines", default="auto", help=f"comma-separated baselines from {','.join(BASELINES)} (default auto: "
                        "a2c,ppo_clip for update rules, ppo_clip,dpo for objectives)")
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
    rules = [o for o in args.objectives if is_saved_rule(o)]
    if args.baselines == "auto":
        args.baselines = "a2c,ppo_clip" if rules else "ppo_clip,dpo"
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
    from jaxrl.evaluation.scores import load_score_table

    unscored = [e for e in env_names if e not in load_score_table()]
    if args.normalize == "table" and unscored:
        parser.error(f"--normalize: no random/reference score for {', '.join(unscored)}; pass --normalize auto or none")
    # Scores of different environments only aggregate once normalised: without a score for every one, each
    # environment gets its own report (raw returns where the table has no score).
    per_env = args.normalize == "auto" and len(env_names) > 1 and bool(unscored)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        parser.error(f"--out: {args.out!r} is not empty; pass --overwrite or choose another --out")

    from jaxrl.config import ConfigError
    from jaxrl.evaluation.report import ReportError, write_report
    from jaxrl.programs import train as training

    objectives = list(dict.fromkeys([*args.objectives, *baselines]))
    labels = {o: run_label(o) for o in objectives}
    plan = {}  # horizon -> [(config, label)]: every run resolved before anything compiles
    for horizon in horizons:
        plan[horizon] = []
        for env_name in env_names:
            for i, objective in enumerate(objectives):
                run_dir = out / "runs" / f"h{horizon}_{env_name.replace('/', '_')}_{i}"
                # A rule's agent is evaluated on its sampled policy (as LPG and GROOVE do): so is every method beside it.
                same_policy = ["--eval-stochastic"] if rules and not is_saved_rule(objective) else []
                flags = [*method_flags(objective, env_name), *same_policy, "--env", env_name, "--total-timesteps", str(horizon),
                         "--num-seeds", str(args.num_seeds), "--seed", str(args.seed), "--checkpoint-every", "0",
                         "--quiet", "--overwrite", "--out-dir", str(run_dir)]
                if env_name in presets and not is_saved_rule(objective):
                    flags = ["--config", presets[env_name], *flags]
                try:
                    plan[horizon].append((training.resolve(flags, prog=prog), labels[objective]))
                except ConfigError as e:
                    print(f"{prog}: error: {labels[objective]} on {env_name}: {e}", file=sys.stderr)
                    return 2
    results = {}
    for horizon in horizons:
        run_dirs, run_labels, run_envs = [], {}, {}
        for cfg, label in plan[horizon]:
            print(f"training {label} on {cfg.experiment.env} for {horizon} steps x {args.num_seeds} seeds", flush=True)
            result = training.run(cfg)
            if result.diverged:
                print(f"{prog}: error: {label} on {cfg.experiment.env} diverged (see {cfg.run.out_dir})", file=sys.stderr)
                return 3
            run_dirs.append(str(cfg.run.out_dir))
            run_labels[str(cfg.run.out_dir)] = label
            run_envs[str(cfg.run.out_dir)] = cfg.experiment.env
        groups = {env: [d for d in run_dirs if run_envs[d] == env] for env in env_names} if per_env else {"": run_dirs}
        results[horizon] = {}
        for env, dirs in groups.items():
            try:
                report = write_report(dirs, out / f"horizon_{horizon}" / env, labels=run_labels, normalize=args.normalize,
                                      reps=args.reps, log=lambda m: print(m, file=sys.stderr))
            except (ReportError, ValueError) as e:
                print(f"{prog}: error: {e}", file=sys.stderr)
                return 2
            results[horizon][env] = report
            for method, metrics in report["aggregates"].items():
                p, lo, hi = metrics["iqm"]
                print(f"horizon {horizon}{' ' + env if env else ''}: {method}: IQM {p:.3f} [{lo:.3f}, {hi:.3f}]")
    layout = {str(h): (r if per_env else r[""]) for h, r in results.items()}
    (out / "meta_test.json").write_text(json.dumps({"envs": env_names, "num_seeds": args.num_seeds,
                                                    "per_environment": per_env, "results": layout}, indent=2))
    where = "horizon_*/<env>/report.md (no score-table entry for " + ", ".join(unscored) + ")" if per_env else "horizon_*/report.md"
    print(f"reports written to {out}/{where}")
    return 0
