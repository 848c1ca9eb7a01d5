"""Host driver of a training experiment: seeds x grid in one compiled program, run in chunks.

``python experiments/train.py ...`` calls :func:`main`; notebooks call
:func:`train` with keyword options. The driver only orchestrates: it builds the
agent, vmaps the runner over members, calls the compiled chunk repeatedly and
writes the run directory between chunks.
"""
from __future__ import annotations

import dataclasses
import platform
import sys
import time
from typing import Any

import jax
import numpy as np

from jaxrl import envs
from jaxrl.agents import ALGORITHMS
from jaxrl.cli import ConfigError, ExperimentConfig, ResolvedConfig, resolve
from jaxrl.io import Progress, RunDirectory, plot_learning_curves
from jaxrl.training.loop import make_runner
from jaxrl.training.sweep import expand_grid, member_batch


@dataclasses.dataclass
class ExperimentResult:
    """What a run produced (also written to the run directory).

    Attributes:
        summary: the content of ``summary.json``.
        runner_state: final state of every member (leading axis ``[G*S]``).
        train_returns: ``[U, G, S]``; eval_returns: ``[C, G, S]`` mean over episodes.
    """

    summary: dict
    runner_state: Any
    train_returns: np.ndarray
    eval_returns: np.ndarray
    env_steps: np.ndarray
    eval_env_steps: np.ndarray
    agent: Any


def _grid_label(point: dict) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in point.items()) or "default"


def check_out_dir(exp: ExperimentConfig) -> None:
    run = RunDirectory(exp.out_dir)
    if run.path.exists() and not run.path.is_dir():
        raise ConfigError(f"--out-dir: {exp.out_dir!r} exists and is not a directory")
    if run.path.is_dir() and any(run.path.iterdir()) and not exp.overwrite:
        raise ConfigError(f"--out-dir: {exp.out_dir!r} already holds files; pass --overwrite to replace them or choose another --out-dir")


def run_experiment(cfg: ResolvedConfig, write: bool = True) -> ExperimentResult:
    exp, algo_cfg = cfg.experiment, cfg.algo
    spec = ALGORITHMS[exp.algo]
    if write:
        check_out_dir(exp)
    env = envs.make(exp.env, **exp.env_kwargs)
    agent = spec.make_agent(algo_cfg, env, exp.total_timesteps, exp.eval_episodes, not exp.eval_stochastic)
    runner = make_runner(agent, env.default_params, exp.num_chunks)
    grid = expand_grid(exp.sweep)
    num_grid, num_seeds = len(grid), exp.num_seeds
    num_members = num_grid * num_seeds
    keys, hparams = member_batch(spec.make_hparams(algo_cfg), grid, num_seeds, exp.seed)

    run_dir = RunDirectory(exp.out_dir)
    if write:
        run_dir.prepare()
        config = cfg.to_dict()
        config["command_line"] = " ".join(cfg.command_line)
        run_dir.write_config(config)

    # Compile everything ahead of time so compile time is measured on its own.
    t0 = time.perf_counter()
    init_fn = jax.jit(jax.vmap(runner.init)).lower(keys, hparams).compile()
    state = init_fn(keys, hparams)
    chunk_fn = (
        jax.jit(jax.vmap(runner.run_chunk, in_axes=(0, 0, None)), donate_argnums=0)
        .lower(state, hparams, np.int32(0))
        .compile()
    )
    compile_seconds = time.perf_counter() - t0

    steps_per_update = agent.env_steps_per_update
    total_steps_per_seed = agent.num_updates * steps_per_update
    progress = Progress(total_steps_per_seed, enabled=not exp.quiet)
    train_returns, eval_means, eval_all = [], [], []
    run_seconds = 0.0
    last_metrics: dict = {}
    for chunk in range(runner.num_chunks):
        first = chunk * runner.chunk_len
        t = time.perf_counter()
        state, metrics = chunk_fn(state, hparams, np.int32(first))
        metrics = jax.device_get(metrics)
        seconds = time.perf_counter() - t
        run_seconds += seconds
        valid = np.asarray(metrics.pop("valid"))[0]
        eval_returns = np.asarray(metrics.pop("eval_returns")).reshape(num_grid, num_seeds, -1)
        per_update = {k: np.asarray(v)[:, valid].reshape(num_grid, num_seeds, -1) for k, v in metrics.items()}
        n_valid = int(valid.sum())
        done_updates = first + n_valid
        chunk_sps = n_valid * steps_per_update * num_members / seconds
        train_returns.append(np.moveaxis(per_update["train_return"], -1, 0))
        eval_all.append(eval_returns)
        eval_means.append(eval_returns.mean(-1))
        rows = []
        for i in range(n_valid):
            update = first + i + 1
            for g, point in enumerate(grid):
                row = {"update": update, "env_steps": update * steps_per_update}
                if num_grid > 1:
                    row.update(grid_index=g, **point)
                r = per_update["train_return"][g, :, i]
                row.update(return_mean=r.mean(), return_std=r.std(), return_min=r.min(), return_max=r.max())
                row.update({k: float(v[g, :, i].mean()) for k, v in per_update.items() if k != "train_return"})
                if i == n_valid - 1:
                    e = eval_returns[g].mean(-1)
                    row.update(eval_return_mean=e.mean(), eval_return_std=e.std(), steps_per_second=chunk_sps)
                rows.append(row)
        if write:
            run_dir.append_metrics(rows)
        last_metrics = {k: float(v[..., -1].mean()) for k, v in per_update.items()}
        progress.update(
            done_updates * steps_per_update,
            chunk_sps,
            **{"return": last_metrics["train_return"], "eval": float(eval_returns.mean())},
        )
    progress.close()

    train_returns_arr = np.concatenate(train_returns, axis=0)  # [U, G, S]
    eval_means_arr = np.stack(eval_means)  # [C, G, S]
    env_steps = (np.arange(agent.num_updates) + 1) * steps_per_update
    eval_env_steps = np.minimum((np.arange(runner.num_chunks) + 1) * runner.chunk_len, agent.num_updates) * steps_per_update
    final = eval_means_arr[-1]  # [G, S]: the last chunk ends at the final update
    total_env_steps = total_steps_per_seed * num_members
    summary = {
        "algo": exp.algo,
        "env": exp.env,
        "final_return_mean": float(final.mean()),
        "final_return_std": float(final.std()),
        "final_returns": [float(x) for x in final.reshape(-1)],
        "env_steps_per_second": total_env_steps / run_seconds,
        "compile_seconds": compile_seconds,
        "run_seconds": run_seconds,
        "total_env_steps": int(total_env_steps),
        "env_steps_per_seed": int(total_steps_per_seed),
        "num_seeds": num_seeds,
        "num_updates": agent.num_updates,
        "eval_episodes": exp.eval_episodes,
        "eval_policy": "stochastic" if exp.eval_stochastic else "deterministic",
        "final_train_return_mean": float(train_returns_arr[-1].mean()),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "jax_version": jax.__version__,
        "python": platform.python_version(),
    }
    if num_grid > 1:
        summary["grid"] = [
            {"hparams": point, "final_return_mean": float(final[g].mean()), "final_returns": [float(x) for x in final[g]]}
            for g, point in enumerate(grid)
        ]
    if write:
        run_dir.write_summary(summary)
        run_dir.write_arrays(
            "curves.npz",
            env_steps=env_steps,
            train_return=train_returns_arr,
            eval_env_steps=eval_env_steps,
            eval_returns=np.stack(eval_all),
        )
        plot_learning_curves(
            run_dir.path / "learning_curve.png",
            env_steps,
            train_returns_arr,
            eval_env_steps,
            eval_means_arr,
            [_grid_label(p) for p in grid],
            f"{exp.algo.upper()} on {exp.env}",
        )
    return ExperimentResult(summary, state, train_returns_arr, eval_means_arr, env_steps, eval_env_steps, agent)


def train(**options) -> ExperimentResult:
    """Notebook entry: ``train(env="CartPole-v1", num_seeds=16, total_timesteps=100_000, out_dir="runs/x")``.

    Options are the CLI's option names with underscores; ``sweep`` is a dict of lists.
    Nothing is written unless ``out_dir`` is given.
    """
    argv = []
    sweep = options.pop("sweep", {})
    write = bool(options.get("out_dir"))
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + key.replace("_", "-"))
        elif isinstance(value, dict):
            argv += [flag, ",".join(f"{k}={v}" for k, v in value.items())]
        elif isinstance(value, (list, tuple)):
            argv += [flag, ",".join(map(str, value))]
        else:
            argv += [flag, str(value)]
    for key, values in sweep.items():
        argv += ["--sweep", f"{key}=" + ",".join(map(str, values))]
    return run_experiment(resolve(argv, prog="jaxrl.experiment.train"), write=write)


def main(argv: list[str] | None = None, prog: str = "train.py") -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        cfg = resolve(argv, prog=prog)
        if cfg.experiment.out_dir:
            check_out_dir(cfg.experiment)
    except ConfigError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    result = run_experiment(cfg)
    s = result.summary
    print(
        f"final return {s['final_return_mean']:.1f} (per seed: {', '.join(f'{x:.1f}' for x in s['final_returns'])}) | "
        f"{s['env_steps_per_second']:,.0f} env steps/s | compile {s['compile_seconds']:.1f}s | run dir {cfg.experiment.out_dir}"
    )
    return 0
