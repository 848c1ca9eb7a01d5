"""The stream barrier (Elsayed et al. 2024, Figures 1 and 5): stream-x agents against their ablations and batch agents.

For every environment, stream AC(lambda) and (discrete actions) stream Q(lambda) run from their presets
(``configs/stream_{ac,q}_minatar.yaml``, ``configs/stream_ac_pendulum.yaml``) as the full stream-x agent and with one
piece taken away at a time:

* ``sgd`` / ``adam``: the classic trace updates instead of ObGD (no overshooting bound; ``--lr 1e-3`` and ``1e-4``,
  one untuned value each),
* ``no_sparse_init``: dense LeCun-uniform initialisation (``--sparsity 0``),
* ``no_layer_norm``: no LayerNorm,
* ``no_normalization``: neither observation normalisation nor reward scaling,
* ``classic``: all of them at once (Adam, dense init, no LayerNorm, no normalisation): the classic streaming agent of
  the paper's Figure 1.

The batch agents run their jaxrl presets (PPO and DQN on MinAtar, PPO and SAC on Pendulum) at the same number of
environment steps per seed. Every run is ``experiments/train.py`` in its own process, seeds vmapped in one program;
per seed the score is the final greedy evaluation (16 episodes) and the online return (the mean over the last 20% of
steps of the last finished training episode's return, the paper's measure). Tables give IQM and mean with 95%
stratified-bootstrap intervals (``jaxrl.evaluation``); the figure shows the evaluation curves (mean over seeds and
its interval) per environment and agent.

Usage::

    python benchmarks/stream_barrier.py --out benchmarks/results/stream_barrier_cpu --seeds 5 --steps 60000
    python benchmarks/stream_barrier.py --out /tmp/smoke --envs Breakout-MinAtar --seeds 2 --steps 4000 --agents stream_q
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from bench_common import machine_info  # noqa: E402

ABLATIONS = {
    "stream_x": [],
    "sgd": ["--optimizer", "sgd", "--lr", "1e-3"],
    "adam": ["--optimizer", "adam", "--lr", "1e-4"],
    "no_sparse_init": ["--sparsity", "0"],
    "no_layer_norm": ["--no-layer-norm"],
    "no_normalization": ["--no-normalize-obs", "--no-scale-reward"],
    # The classic streaming agent: the off-the-shelf deep RL pieces (Adam, dense init, no LayerNorm, raw observations
    # and rewards) with the same eligibility traces.
    "classic": ["--optimizer", "adam", "--lr", "1e-4", "--sparsity", "0", "--no-layer-norm", "--no-normalize-obs",
                "--no-scale-reward"],
}
BATCH_PRESETS = {"minatar": {"ppo": "ppo_breakout_minatar.yaml", "dqn": "dqn_breakout_minatar.yaml"},
                 "continuous": {"ppo": "ppo_pendulum.yaml", "sac": "sac_pendulum.yaml"}}
# SAC's learner step per env step costs ~100x a stream step on CPU: it runs to this many steps only (fewer than the
# stream agents, so the comparison favours the stream agents).
STEPS_CAP = {"batch/sac": 20_000}
ONLINE_TAIL = 0.2  # the online return is averaged over this last fraction of the steps


def family(env: str) -> str:
    return "minatar" if env.endswith("-MinAtar") else "continuous"


def stream_preset(agent: str, env: str) -> Path:
    return ROOT / "configs" / f"{agent}_{'minatar' if family(env) == 'minatar' else 'pendulum'}.yaml"


def runs_of(env: str, agents: list[str], ablations: list[str], batch: bool) -> dict[str, tuple[Path, list[str]]]:
    """``label -> (preset, extra flags)`` for one environment: stream agents x ablations, then the batch agents."""
    runs = {}
    for agent in agents:
        if agent == "stream_q" and family(env) == "continuous":
            continue  # discrete actions only
        for ablation in ablations:
            # One row of metrics per transition: the online return is read per step.
            # A diverged seed is masked and the others go on: divergence is a result here (the stream barrier).
            runs[f"{agent}/{ablation}"] = (stream_preset(agent, env),
                                           ["--log-interval", "1", "--nan-policy", "mask", *ABLATIONS[ablation]])
    if batch:
        for algo, preset in BATCH_PRESETS[family(env)].items():
            runs[f"batch/{algo}"] = (ROOT / "configs" / preset, [])
    return runs


def run(label: str, preset: Path, extra: list[str], env: str, args, out: Path) -> None:
    """``experiments/train.py`` from ``preset`` on ``env`` at the study's seeds and steps; skipped when done."""
    if (out / "summary.json").exists():
        print(f"{env} {label}: done before, kept", flush=True)
        return
    steps = min(args.continuous_steps if family(env) == "continuous" else args.steps, STEPS_CAP.get(label, 1 << 62))
    cmd = [sys.executable, str(ROOT / "experiments" / "train.py"), "--config", str(preset), "--env", env,
           "--num-seeds", str(args.seeds), "--total-timesteps", str(steps), "--num-chunks", str(args.chunks),
           "--out-dir", str(out), "--checkpoint-every", "0", "--overwrite", "--quiet", *extra]
    print(" ".join(cmd[1:]), flush=True)
    t = time.time()
    subprocess.run(cmd, check=True)
    print(f"{env} {label}: {time.time() - t:.0f} s", flush=True)


def online_returns(train: np.ndarray) -> np.ndarray:
    """``[S]``: the mean of ``train [T, S]`` (the last finished episode's return at every step) over the last
    ``ONLINE_TAIL`` of the steps."""
    tail = max(1, int(round(ONLINE_TAIL * train.shape[0])))
    return train[-tail:].mean(0).astype(float)


def scores(out: Path) -> dict:
    """Per seed: the final greedy evaluation return and the online return over the last steps (NaN for a seed that
    diverged), plus the curves and the diverged seeds."""
    curves = np.load(out / "curves.npz")
    summary = json.loads((out / "summary.json").read_text())
    evals = curves["eval_returns"][:, 0].mean(-1)  # [chunks, seeds]
    train = curves["train_return"][:, 0]  # [steps or updates, seeds]
    diverged = sorted(m["seed"] for m in summary.get("diverged_members", []))
    final_eval, online = evals[-1].astype(float), online_returns(train)
    final_eval[diverged], online[diverged] = np.nan, np.nan
    evals = evals.astype(float)
    for m in summary.get("diverged_members", []):  # its curve stops at the first evaluation after the divergence
        evals[int(np.searchsorted(curves["eval_env_steps"], m["update"])) + 1:, m["seed"]] = np.nan
    return {"final_eval": final_eval, "online": online, "eval_curve": evals, "diverged": diverged,
            "eval_env_steps": curves["eval_env_steps"], "env_steps_per_second": summary["env_steps_per_second"],
            "run_seconds": summary["run_seconds"], "compile_seconds": summary["compile_seconds"]}


def stats_of_finite(values: np.ndarray) -> dict | None:
    """IQM and mean with intervals over the seeds that did not diverge (None when fewer than two are left)."""
    from jaxrl.evaluation import iqm_and_mean

    finite = values[np.isfinite(values)]
    return iqm_and_mean(finite[:, None]) if finite.size >= 2 else None


def row(out: Path) -> dict:
    s = scores(out)
    return {"final_eval": stats_of_finite(s["final_eval"]),
            "final_eval_per_seed": [None if not np.isfinite(x) else round(float(x), 2) for x in s["final_eval"]],
            "online": stats_of_finite(s["online"]),
            "online_per_seed": [None if not np.isfinite(x) else round(float(x), 2) for x in s["online"]],
            "diverged_seeds": s["diverged"],
            "env_steps_per_second": s["env_steps_per_second"], "run_seconds": s["run_seconds"],
            "compile_seconds": s["compile_seconds"]}


def mean_curve(values: np.ndarray):
    """Mean over seeds of ``values [T, S]`` at each point and its 95% stratified-bootstrap interval; the seeds that
    diverged (NaN) leave the mean from their divergence on, and the curve stops when fewer than two are left."""
    import jax
    import jax.numpy as jnp

    from jaxrl.evaluation import interval_estimate

    values = np.asarray(values, float)
    mean, low, high = (np.full(values.shape[0], np.nan) for _ in range(3))
    for t, row_t in enumerate(values):
        finite = row_t[np.isfinite(row_t)]
        if finite.size >= 2:
            estimate = interval_estimate(jax.random.PRNGKey(t), lambda x: jnp.mean(x, axis=0), finite[:, None])
            mean[t], low[t], high[t] = (float(np.ravel(v)[0]) for v in (estimate.point, estimate.low, estimate.high))
    return mean, low, high


def figure(runs_dir: Path, envs: list[str], table: dict, path: Path) -> None:
    """One panel per (environment, stream agent): its ablations and the batch agents, evaluation return vs steps."""
    from matplotlib.figure import Figure

    panels = [(env, agent) for env in envs for agent in sorted({k.split("/")[0] for k in table[env]} - {"batch"})]
    fig = Figure(figsize=(4.2 * len(panels), 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (env, agent) in zip(axes, panels):
        for label in table[env]:
            if label.split("/")[0] not in (agent, "batch"):
                continue
            s = scores(runs_dir / env / label)
            mean, low, high = mean_curve(s["eval_curve"])
            (line,) = ax.plot(s["eval_env_steps"], mean, label=label.split("/")[1] if label.startswith(agent) else label,
                              linestyle="--" if label.startswith("batch") else "-",
                              linewidth=2.2 if label.endswith("stream_x") else 1.2)
            ax.fill_between(s["eval_env_steps"], low, high, alpha=0.15, color=line.get_color())
        ax.set_title(f"{agent} on {env}", fontsize=9)
        ax.set_xlabel("env steps per seed")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("greedy evaluation return")
    fig.suptitle("Stream barrier: mean over seeds, 95% stratified-bootstrap interval")
    fig.savefig(path, dpi=100)


def fmt(stats, name) -> str:
    if stats is None:
        return "-"
    x = stats[name]
    return f"{x[0]:.1f} [{x[1]:.1f}, {x[2]:.1f}]"


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [f"# Stream barrier ({m.get('cpu_model', 'cpu')}, {m.get('cpu_count')} cores, jax {m['versions'].get('jax')})",
             "", f"`{result['command']}`", "",
             f"{result['seeds']} seeds per run; {result['steps']} env steps per seed on MinAtar, "
             f"{result['continuous_steps']} on the continuous task. Final greedy evaluation (16 episodes) and online "
             f"return (last {int(ONLINE_TAIL * 100)}% of the steps): IQM [95% CI] over the seeds that did not diverge "
             "(a seed whose TD error became non-finite is masked and counted under 'diverged').", ""]
    for env, rows in result["envs"].items():
        lines += [f"## {env}", "", "| run | final eval IQM | final eval mean | online IQM | per seed (eval) | diverged | "
                  "env steps/s |", "|---|---|---|---|---|---|---|"]
        for label, r in rows.items():
            per_seed = ", ".join("diverged" if x is None else f"{x:g}" for x in r["final_eval_per_seed"])
            lines.append(f"| {label} | {fmt(r['final_eval'], 'iqm')} | {fmt(r['final_eval'], 'mean')} | "
                         f"{fmt(r['online'], 'iqm')} | {per_seed} | {len(r['diverged_seeds'])}/{len(r['final_eval_per_seed'])} | "
                         f"{r['env_steps_per_second']:.0f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="results.json, results.md and the figure")
    parser.add_argument("--runs", default=str(ROOT / "runs" / "stream_barrier"), help="the run directories")
    parser.add_argument("--envs", default="Breakout-MinAtar,SpaceInvaders-MinAtar,Pendulum-v1")
    parser.add_argument("--agents", default="stream_ac,stream_q")
    parser.add_argument("--ablations", default=",".join(ABLATIONS))
    parser.add_argument("--no-batch", action="store_true", help="leave out the batch agents")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=60_000, help="env steps per seed on MinAtar")
    parser.add_argument("--continuous-steps", type=int, default=100_000, help="env steps per seed on the continuous task")
    parser.add_argument("--chunks", type=int, default=10, help="evaluation points per run")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs_dir = Path(args.runs)
    envs, agents, ablations = args.envs.split(","), args.agents.split(","), args.ablations.split(",")
    table = {env: runs_of(env, agents, ablations, not args.no_batch) for env in envs}
    for env, runs in table.items():
        for label, (preset, extra) in runs.items():
            run(label, preset, extra, env, args, runs_dir / env / label)
    result = {"machine": machine_info(), "command": " ".join(sys.argv), "seeds": args.seeds, "steps": args.steps,
              "continuous_steps": args.continuous_steps,
              "envs": {env: {label: row(runs_dir / env / label) for label in runs} for env, runs in table.items()}}
    (out / "results.json").write_text(json.dumps(result, indent=2))
    (out / "results.md").write_text(markdown(result))
    figure(runs_dir, envs, table, out / "stream_barrier.png")
    print(markdown(result))


if __name__ == "__main__":
    main()
