"""``experiments/evaluate_policy.py``: returns of a run's saved policies."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path



class OneLineErrorParser(argparse.ArgumentParser):
    """Bad flags: one line on stderr and exit code 2, no usage dump."""

    def error(self, message):
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def main(argv=None, prog: str = "evaluate_policy.py") -> int:
    parser = OneLineErrorParser(prog=prog, description="Evaluate the saved policy of every member of a run (newest intact checkpoint).")
    parser.add_argument("--run", required=True, help="run directory written by any program (train.py, evolve.py, ued.py)")
    parser.add_argument("--episodes", type=int, default=100, help="episodes per member (per held-out level for a curriculum run; default: 100)")
    parser.add_argument("--stochastic", action="store_true", help="training runs: sample actions instead of taking the mode (other programs evaluate as their run did)")
    parser.add_argument("--seed", type=int, default=0, help="evaluation seed (default: 0)")
    parser.add_argument("--out", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"--episodes: must be >= 1, got {args.episodes}")
    from jaxrl.config import ConfigError
    from jaxrl.io.checkpoint import CheckpointError
    from jaxrl.io.policy import evaluate_run

    try:
        run, returns = evaluate_run(args.run, args.episodes, deterministic=not args.stochastic, seed=args.seed)
    except (ConfigError, CheckpointError) as e:
        print(f"{prog}: error: --run: {e}", file=sys.stderr)
        return 2
    num_seeds = run.config.run.num_seeds
    names = run.extra.get("names")  # a curriculum run evaluates on its held-out levels
    per_level = returns.reshape(returns.shape[0], len(names), -1) if names is not None else None
    if run.program.name == "train":
        policy = "stochastic" if args.stochastic else "deterministic"
    else:
        policy = "as the run evaluates it" + (" (stochastic, on its held-out levels)" if names is not None else "")
    members = []
    for m, r in enumerate(returns):
        g, s = divmod(m, num_seeds)
        member = {"member": m, "grid_index": g, "seed": s, "hparams": run.grid[g],
                  "return_mean": float(r.mean()), "return_std": float(r.std()), "returns": [float(x) for x in r]}
        label = f"seed {s}" + (f" grid {g} {run.grid[g]}" if len(run.grid) > 1 else "")
        if per_level is not None:
            solved = (per_level[m] > run.extra["space"].solved_return).mean(-1)  # [L]
            member["solve_rates"] = {n: float(x) for n, x in zip(names, solved)}
            print(f"{label}: return {r.mean():.2f}, solve rate {solved.mean():.2f} over {args.episodes} episodes on each "
                  f"of {len(names)} held-out levels ({', '.join(f'{n} {x:.2f}' for n, x in zip(names, solved))})")
        else:
            print(f"{label}: return {r.mean():.2f} +- {r.std():.2f} over {args.episodes} episodes")
        members.append(member)
    print(f"all members: {returns.mean():.2f} (checkpoint after chunk {run.step}, policy {policy}, "
          f"env {run.config.value('env')})")
    if args.out:
        Path(args.out).write_text(json.dumps({"run": str(args.run), "checkpoint_step": run.step, "episodes": args.episodes,
                                              "policy": policy, "return_mean": float(returns.mean()), "members": members},
                                             indent=2))
    return 0
