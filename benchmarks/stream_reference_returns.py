"""Fidelity check: the reference PyTorch stream AC(lambda) (github.com/mohmdelsayed/streaming-drl, unmodified) against
jaxrl's on the same MinAtar game, same steps, read the same way.

The reference runs ``stream_ac_discrete_minatar.py`` (or ``--script``) for ``--steps`` steps per seed, one process per
seed, ``--parallel`` at a time, through ``reference/streaming_drl_runner.py``; its pickled training returns become a
per-step curve of the last finished episode's return, as jaxrl's ``train_return``. Per seed, the online return is
that curve's mean over the last 20% of the steps (``stream_barrier.py``'s measure), read from a jaxrl run directory
given with ``--jaxrl-run`` (e.g. the stream barrier's ``stream_ac/stream_x`` run at the same steps). Both sides: IQM
and mean with 95% stratified-bootstrap intervals (``jaxrl.evaluation``).

Usage::

    python benchmarks/stream_reference_returns.py --reference-python /path/venv/bin/python \\
        --reference-dir /path/streaming-drl --env MinAtar/SpaceInvaders-v1 --steps 60000 --seeds 4 \\
        --jaxrl-run runs/stream_barrier/SpaceInvaders-MinAtar/stream_ac/stream_x --out-name stream_ac_reference_spaceinvaders
"""
from __future__ import annotations

import argparse
import glob
import json
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench_common import RESULTS, machine_info  # noqa: E402
from stream_barrier import online_returns  # noqa: E402


def step_curve(returns, end_steps, total: int) -> np.ndarray:
    """``[total]``: at each step, the return of the last episode finished at or before it (0 before the first)."""
    curve = np.zeros(total)
    for ret, end in zip(returns, end_steps):
        curve[int(end) - 1:] = ret
    return curve


def run_reference(args, work: Path) -> list[float]:
    cmd = [args.reference_python, str(HERE / "reference" / "streaming_drl_runner.py"), "--reference-dir",
           args.reference_dir, "--script", args.script, "--env", args.env, "--steps", str(args.steps),
           "--torch-threads", "1"]
    online = []
    for first in range(0, args.seeds, args.parallel):
        seeds = range(first, min(first + args.parallel, args.seeds))
        procs = [subprocess.Popen(cmd + ["--seed", str(s), "--work-dir", str(work / f"seed{s}")],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for s in seeds]
        for proc in procs:
            _, err = proc.communicate()
            if proc.returncode != 0:
                raise SystemExit(f"reference run failed:\n{err[-2000:]}")
    for s in range(args.seeds):
        (path,) = glob.glob(str(work / f"seed{s}" / "data_*" / "**" / "*.pkl"), recursive=True)  # env ids hold a "/"
        with open(path, "rb") as f:
            returns, end_steps, _ = pickle.load(f)
        online.append(float(online_returns(step_curve(returns, end_steps, args.steps)[:, None])[0]))
    return online


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference-python", required=True)
    parser.add_argument("--reference-dir", required=True)
    parser.add_argument("--script", default="stream_ac_discrete_minatar.py")
    parser.add_argument("--env", default="MinAtar/SpaceInvaders-v1")
    parser.add_argument("--steps", type=int, default=60_000)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--parallel", type=int, default=2, help="reference processes at a time")
    parser.add_argument("--jaxrl-run", required=True, help="a jaxrl run directory at the same steps per seed")
    parser.add_argument("--out-name", default="stream_ac_reference_returns")
    args = parser.parse_args()
    from jaxrl.evaluation import iqm_and_mean

    with tempfile.TemporaryDirectory() as work:
        reference = run_reference(args, Path(work))
    curves = np.load(Path(args.jaxrl_run) / "curves.npz")
    train = curves["train_return"][:, 0]  # [steps, seeds]
    if train.shape[0] != args.steps:
        raise SystemExit(f"--jaxrl-run has {train.shape[0]} steps per seed, not --steps {args.steps}")
    jaxrl = [float(x) for x in online_returns(train)]
    result = {"machine": machine_info(), "command": " ".join(sys.argv), "env": args.env, "steps": args.steps,
              "reference_online_per_seed": reference, "jaxrl_online_per_seed": jaxrl,
              "reference": iqm_and_mean(np.asarray(reference)[:, None]), "jaxrl": iqm_and_mean(np.asarray(jaxrl)[:, None])}
    (RESULTS / f"{args.out_name}.json").write_text(json.dumps(result, indent=2))
    fmt = lambda x: f"{x[0]:.1f} [{x[1]:.1f}, {x[2]:.1f}]"  # noqa: E731
    md = (f"# {args.script} vs jaxrl on {args.env}, {args.steps} steps per seed\n\n`{result['command']}`\n\n"
          "| implementation | seeds | online return IQM [95% CI] | mean [95% CI] | per seed |\n|---|---|---|---|---|\n"
          f"| reference (PyTorch) | {len(reference)} | {fmt(result['reference']['iqm'])} | {fmt(result['reference']['mean'])} | "
          f"{', '.join(f'{x:.1f}' for x in reference)} |\n"
          f"| jaxrl | {len(jaxrl)} | {fmt(result['jaxrl']['iqm'])} | {fmt(result['jaxrl']['mean'])} | "
          f"{', '.join(f'{x:.1f}' for x in jaxrl)} |\n")
    (RESULTS / f"{args.out_name}.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
