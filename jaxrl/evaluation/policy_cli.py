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
    parser.add_argument("--episodes", type=int, default=100, help="episodes per member (default: 100)")
    parser.add_argument("--stochastic", action="store_true", help="sample actions instead of taking the mode")
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
    members = []
    for m, r in enumerate(returns):
        g, s = divmod(m, num_seeds)
        members.append({"member": m, "grid_index": g, "seed": s, "hparams": run.grid[g],
                        "return_mean": float(r.mean()), "return_std": float(r.std()), "returns": [float(x) for x in r]})
        label = f"seed {s}" + (f" grid {g} {run.grid[g]}" if len(run.grid) > 1 else "")
        print(f"{label}: return {r.mean():.2f} +- {r.std():.2f} over {args.episodes} episodes")
    print(f"all members: {returns.mean():.2f} (checkpoint after chunk {run.step}, "
          f"{'stochastic' if args.stochastic else 'deterministic'} policy, env {run.config.value('env')})")
    if args.out:
        Path(args.out).write_text(json.dumps({"run": str(args.run), "checkpoint_step": run.step, "episodes": args.episodes,
                                              "policy": "stochastic" if args.stochastic else "deterministic",
                                              "return_mean": float(returns.mean()), "members": members}, indent=2))
    return 0
