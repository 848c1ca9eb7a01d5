"""Host driver of a training experiment: seeds x grid in one compiled program, run in chunks.

``python experiments/train.py ...`` calls :func:`main`; notebooks call
:func:`train` with keyword options. The driver only orchestrates: it builds the
agent, vmaps the runner over members, calls the compiled chunk repeatedly and,
between chunks, writes metrics, shows progress, checks for divergence and
saves checkpoints. Resuming from a checkpoint replays the same compiled chunk
from the saved state, so a resumed run ends bit-identical to an uninterrupted one.

Exit codes of :func:`main`: 0 done, 2 bad input (one line on stderr, nothing
written), 3 stopped because a member diverged (``--nan-policy stop``).
"""
from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxrl import envs
from jaxrl.agents import ALGORITHMS
from jaxrl.cli import ConfigError, ExperimentConfig, ResolvedConfig, resolve, options_to_argv
from jaxrl.io import Progress, RunDirectory, plot_learning_curves
from jaxrl.io.checkpoint import CheckpointError, Checkpointer, restore_run_state
from jaxrl.io.loggers import LoggerUnavailable, TensorBoardLogger, WandbLogger, check_available
from jaxrl.io.repro import reproducibility_record
from jaxrl.parallel import (MemberPlacement, distributed_main, is_primary, join_batches, plan_members,
                            refuse_together, split_members, to_host)
from jaxrl.runtime import intra_op_pool_threads
from jaxrl.threefry import unroll_threefry_on_cpu
from jaxrl.training.loop import make_runner, map_members
from jaxrl.training.sweep import expand_grid, grid_label, member_batch

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3


@dataclasses.dataclass
class ExperimentResult:
    """What a run produced (also written to the run directory).

    Attributes:
        summary: the content of ``summary.json``.
        runner_state: final state of every member (leading axis ``[G*S]``).
        train_returns: ``[U, G, S]``; eval_returns: ``[C, G, S]`` mean over episodes.
        diverged: True if the run stopped early on a non-finite value.
    """

    summary: dict
    runner_state: Any
    train_returns: np.ndarray
    eval_returns: np.ndarray
    env_steps: np.ndarray
    eval_env_steps: np.ndarray
    agent: Any
    diverged: bool = False


def _finite_mean(x) -> float:
    """Mean over finite entries (NaN if there are none), without numpy's empty-slice warning."""
    x = np.asarray(x, np.float64)
    finite = x[np.isfinite(x)]
    return float(finite.mean()) if finite.size else float("nan")


def _finite_std(x) -> float:
    x = np.asarray(x, np.float64)
    finite = x[np.isfinite(x)]
    return float(finite.std()) if finite.size else float("nan")


def check_out_dir(exp: ExperimentConfig) -> None:
    """Refuses to write into a directory that already holds files (unless resuming or overwriting).

    Only the writing process (process 0 of a multi-process run) checks: the others never write.
    """
    if exp.resume or not is_primary():
        return
    path = Path(exp.out_dir)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out-dir: {exp.out_dir!r} exists and is not a directory")
    if path.is_dir() and any(path.iterdir()) and not exp.overwrite:
        raise ConfigError(f"--out-dir: {exp.out_dir!r} already holds a run; pass --resume {exp.out_dir} to continue it, --overwrite to replace it, or choose another --out-dir")


def build(cfg: ResolvedConfig):
    """Environment, agent, runner, grid and member batch for a resolved config (no compilation)."""
    exp, algo_cfg = cfg.experiment, cfg.algo
    spec = ALGORITHMS[exp.algo]
    env = envs.make(exp.env, **exp.env_kwargs)
    problem = spec.validate(algo_cfg, env, exp.total_timesteps) if spec.validate is not None else None
    if problem:
        raise ConfigError(problem)
    agent = spec.make_agent(algo_cfg, env, exp.total_timesteps, exp.eval_episodes, not exp.eval_stochastic)
    runner = make_runner(agent, env.default_params, exp.num_chunks)
    grid = expand_grid(exp.sweep)
    keys, hparams = member_batch(spec.make_hparams(algo_cfg), grid, exp.num_seeds, exp.seed)
    return env, agent, runner, grid, keys, hparams


def first_nonfinite(per_update: dict, params_finite: np.ndarray, first_update: int):
    """Per member, the first non-finite quantity of a chunk, or None.

    Args:
        per_update: metric name -> ``[M, n]`` values of the chunk's valid updates.
        params_finite: ``[M]`` bool, parameters finite at the end of the chunk.

    Returns:
        list of ``M`` entries ``(quantity, update)`` or None.
    """
    num_members = params_finite.shape[0]
    found: list = [None] * num_members
    for m in range(num_members):
        best = None
        for name, values in per_update.items():
            bad = np.flatnonzero(~np.isfinite(values[m]))
            if bad.size and (best is None or bad[0] < best[1]):
                best = (name, int(bad[0]))
        if best is not None:
            found[m] = (best[0], first_update + best[1] + 1)
        elif not params_finite[m]:
            found[m] = ("parameters", None)
    return found


def _describe_member(m: int, grid: list[dict], num_seeds: int) -> str:
    g, s = divmod(m, num_seeds)
    where = f"seed {s}"
    if len(grid) > 1:
        where += f", grid point {g} ({grid_label(grid[g])})"
    return where


def run_experiment(cfg: ResolvedConfig, write: bool = True, log=print) -> ExperimentResult:
    """Runs (or resumes) an experiment. Raises ConfigError / CheckpointError for bad input before compiling.

    In a multi-process run every process calls this with the same config; each
    computes its own members, all of them see every member's metrics, and only
    process 0 writes (run directory, checkpoints, loggers, progress).
    """
    exp = cfg.experiment
    checkpoints_wanted = write and bool(exp.checkpoint_every)  # every process takes part in a save
    write = write and is_primary()
    problem = None
    if write:
        try:
            check_out_dir(exp)
            check_available(exp.tensorboard, exp.wandb)
        except (ConfigError, LoggerUnavailable) as e:
            problem = e
    refuse_together(problem)
    unroll_threefry_on_cpu()  # same random bits; many fewer kernels per key split on CPU
    env, agent, runner, grid, keys, hparams = build(cfg)
    num_grid, num_seeds = len(grid), exp.num_seeds
    num_members = num_grid * num_seeds
    steps_per_update = agent.env_steps_per_update
    # Members sharded over devices, and run in sequential batches of the same compiled program.
    num_devices, batch_size = plan_members(exp.devices, num_seeds, num_grid, exp.seed_batch)
    num_batches = num_members // batch_size
    placement = MemberPlacement.on(num_devices)
    init_fn = placement.jit(map_members(runner.init, (0, 0)), (0, 0))
    chunk_fn = placement.jit(map_members(runner.run_chunk, (0, 0, None)), (0, 0, None), donate_argnums=0)
    key_batches = [placement.put(k) for k in split_members(keys, num_batches)]  # each process: its own shards
    hparam_batches = [placement.put(h) for h in split_members(hparams, num_batches)]

    run_dir = RunDirectory(exp.out_dir)
    checkpointer = None
    start_chunk, history, run_seconds = 0, {"train_return": [], "eval_returns": []}, 0.0
    state = None
    if exp.resume:
        checkpointer = Checkpointer(run_dir.path / "checkpoints", keep=exp.keep_checkpoints, background=True)
        if not checkpointer.steps():
            raise CheckpointError(f"--resume: no checkpoint in {run_dir.path / 'checkpoints'}")
        _, saved, meta = restore_run_state(checkpointer, runner, keys, hparams)
        state, start_chunk, run_seconds = saved["runner"], int(meta["chunks_done"]), float(meta["run_seconds"])
        history = {"train_return": [saved["history"]["train_return"]], "eval_returns": list(saved["history"]["eval_returns"])}
        if write:
            run_dir.truncate_metrics(max_update=min(start_chunk * runner.chunk_len, agent.num_updates))
    else:
        if write:
            run_dir.prepare()
            run_dir.write_config(cfg.to_dict())
        if checkpoints_wanted:
            checkpointer = Checkpointer(run_dir.path / "checkpoints", keep=exp.keep_checkpoints, background=True)
    if write:
        run_dir.write_json("reproducibility.json", reproducibility_record(list(cfg.command_line)))

    sinks = []
    if write and exp.tensorboard:
        sinks.append(TensorBoardLogger(run_dir.path))
    if write and exp.wandb:
        sinks.append(WandbLogger(run_dir.path, cfg.to_dict(), exp.wandb_project, run_dir.path.name))

    # Compile ahead of time so compile time is measured on its own.
    t0 = time.perf_counter()
    if state is None:
        init_compiled = init_fn.lower(key_batches[0], hparam_batches[0]).compile()
        states = [init_compiled(k, h) for k, h in zip(key_batches, hparam_batches)]
    else:  # a checkpoint holds every member in order, whatever the batching or devices it was saved from
        states = [placement.put(s) for s in split_members(state, num_batches)]
    chunk_compiled = chunk_fn.lower(states[0], hparam_batches[0], np.int32(0)).compile()
    compile_seconds = time.perf_counter() - t0

    total_steps_per_seed = agent.num_updates * steps_per_update
    progress = Progress(total_steps_per_seed, enabled=not exp.quiet and is_primary())
    diverged_members: dict[int, tuple] = {}
    stopped = False
    for chunk in range(start_chunk, runner.num_chunks):
        first = chunk * runner.chunk_len
        t = time.perf_counter()
        outputs = [chunk_compiled(s, h, np.int32(first)) for s, h in zip(states, hparam_batches)]
        states = [state for state, _ in outputs]
        metrics = to_host(join_batches([m for _, m in outputs]))
        seconds = time.perf_counter() - t
        valid = np.asarray(metrics.pop("valid"))[0]
        params_finite = np.asarray(metrics.pop("params_finite"))
        eval_returns = np.asarray(metrics.pop("eval_returns")).reshape(num_grid, num_seeds, -1)
        per_member = {k: np.asarray(v)[:, valid] for k, v in metrics.items()}  # [M, n]
        per_update = {k: v.reshape(num_grid, num_seeds, -1) for k, v in per_member.items()}
        n_valid = int(valid.sum())
        done_updates = first + n_valid
        chunk_sps = n_valid * steps_per_update * num_members / seconds
        history["train_return"].append(np.moveaxis(per_update["train_return"], -1, 0))
        history["eval_returns"].append(eval_returns)

        newly_bad = [
            (m, bad) for m, bad in enumerate(first_nonfinite(per_member, params_finite, first))
            if bad is not None and m not in diverged_members
        ]
        for m, bad in newly_bad:
            diverged_members[m] = bad
            quantity, update = bad
            at = f" at update {update}" if update is not None else f" after update {done_updates}"
            verb = "stopping" if exp.nan_policy == "stop" else "masked, run goes on"
            if is_primary():
                log(f"non-finite {quantity}{at} for {_describe_member(m, grid, num_seeds)}: {verb}", file=sys.stderr)

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
            for sink in sinks:
                sink.log(rows)
        if newly_bad and exp.nan_policy == "stop":
            stopped = True
            run_seconds += time.perf_counter() - t
            break
        chunks_done = chunk + 1
        if checkpointer is not None and exp.checkpoint_every and (
            chunks_done % exp.checkpoint_every == 0 or chunks_done == runner.num_chunks
        ):
            checkpointer.save(
                chunks_done,
                {"runner": join_batches(states), "history": {"train_return": np.concatenate(history["train_return"]),
                                              "eval_returns": np.stack(history["eval_returns"])}},
                {"chunks_done": chunks_done, "updates_done": done_updates,
                 "run_seconds": run_seconds + time.perf_counter() - t},
            )
        last = _finite_mean(per_update["train_return"][..., -1])
        progress.update(done_updates * steps_per_update, chunk_sps, **{"return": last, "eval": _finite_mean(eval_returns)})
        run_seconds += time.perf_counter() - t  # the whole iteration: compute, metrics, checkpoint
    progress.close()
    state = join_batches(states)
    if checkpointer is not None:
        checkpointer.wait()  # the final checkpoint is committed before the run reports done
    for sink in sinks:
        sink.close()

    train_returns_arr = np.concatenate(history["train_return"], axis=0)  # [U, G, S]
    eval_all = np.stack(history["eval_returns"])  # [C, G, S, E]
    eval_means_arr = eval_all.mean(-1)  # [C, G, S]
    done_chunks = eval_all.shape[0]
    env_steps = (np.arange(train_returns_arr.shape[0]) + 1) * steps_per_update
    eval_env_steps = np.minimum((np.arange(done_chunks) + 1) * runner.chunk_len, agent.num_updates) * steps_per_update
    final = eval_means_arr[-1].copy()  # [G, S]: the last chunk ends at the final update
    for m in diverged_members:
        final.reshape(-1)[m] = np.nan
    total_env_steps = int(env_steps[-1]) * num_members
    summary = {
        "algo": exp.algo,
        "env": exp.env,
        "status": "diverged" if stopped else "completed",
        "final_return_mean": _finite_mean(final),
        "final_return_std": _finite_std(final),
        "final_returns": [float(x) for x in final.reshape(-1)],
        "env_steps_per_second": total_env_steps / run_seconds if run_seconds > 0 else float("nan"),
        "compile_seconds": compile_seconds,
        "run_seconds": run_seconds,
        "total_env_steps": total_env_steps,
        "env_steps_per_seed": int(env_steps[-1]),
        "num_seeds": num_seeds,
        "num_updates": agent.num_updates,
        "eval_episodes": exp.eval_episodes,
        "eval_policy": "stochastic" if exp.eval_stochastic else "deterministic",
        "final_train_return_mean": _finite_mean(train_returns_arr[-1]),
        "backend": jax.default_backend(),
        "cpu_intra_op_threads": intra_op_pool_threads(),
    }
    if diverged_members:
        summary["diverged_members"] = [
            {"member": m, "seed": m % num_seeds, "grid_index": m // num_seeds, "quantity": q, "update": u}
            for m, (q, u) in sorted(diverged_members.items())
        ]
    if num_grid > 1:
        summary["grid"] = [
            {"hparams": point, "final_return_mean": _finite_mean(final[g]),
             "final_returns": [float(x) for x in final[g]]}
            for g, point in enumerate(grid)
        ]
    if write:
        run_dir.write_summary(summary)
        run_dir.write_arrays("curves.npz", env_steps=env_steps, train_return=train_returns_arr,
                             eval_env_steps=eval_env_steps, eval_returns=eval_all)
        plot_learning_curves(run_dir.path / "learning_curve.png", env_steps, train_returns_arr, eval_env_steps,
                             eval_means_arr, [grid_label(p) for p in grid], f"{exp.algo.upper()} on {exp.env}")
    if checkpointer is not None:
        checkpointer.close()
    return ExperimentResult(summary, state, train_returns_arr, eval_means_arr, env_steps, eval_env_steps, agent, stopped)


def train(**options) -> ExperimentResult:
    """Notebook entry: ``train(env="CartPole-v1", num_seeds=16, total_timesteps=100_000, out_dir="runs/x")``.

    Options are the CLI's option names with underscores; ``sweep`` is a dict of lists.
    Nothing is written unless ``out_dir`` is given.
    """
    sweep = options.pop("sweep", {})
    write = bool(options.get("out_dir"))
    argv = options_to_argv(options)
    for key, values in sweep.items():
        argv += ["--sweep", f"{key}=" + ",".join(map(str, values))]
    return run_experiment(resolve(argv, prog="jaxrl.experiment.train"), write=write)


def resolve_resume(argv: list[str], prog: str) -> ResolvedConfig:
    """``--resume RUN_DIR`` (plus optionally ``--quiet``): the run's saved config, pointed at RUN_DIR."""
    args = [a for a in argv if a not in ("--quiet", "--no-quiet")]
    if len(args) != 2 or args[0] != "--resume":
        raise ConfigError("--resume: takes the run's saved config; give only --resume RUN_DIR (and optionally --quiet)")
    run = Path(args[1])
    config_path = run / "config.yaml"
    if not config_path.is_file():
        raise ConfigError(f"--resume: {args[1]!r} is not a run directory (no config.yaml)")
    if not (run / "checkpoints").is_dir() or not Checkpointer(run / "checkpoints").steps():
        raise ConfigError(f"--resume: {args[1]!r} has no committed checkpoint to resume from")
    extra = [a for a in argv if a in ("--quiet", "--no-quiet")]
    return resolve(["--config", str(config_path), "--out-dir", str(run), "--resume", str(run), *extra], prog=prog)


def main(argv: list[str] | None = None, prog: str = "train.py") -> int:
    """``experiments/train.py``; joins a multi-process run first when its flags or launcher say so."""
    argv = sys.argv[1:] if argv is None else argv
    return distributed_main(lambda rest: _main(rest, prog), argv, prog)


def _main(argv: list[str], prog: str = "train.py") -> int:
    try:
        cfg = resolve_resume(argv, prog) if any(a == "--resume" or a.startswith("--resume=") for a in argv) else resolve(argv, prog=prog)
        result = run_experiment(cfg)
    except (ConfigError, CheckpointError, LoggerUnavailable) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    s = result.summary
    if result.diverged:
        print(f"stopped: a member diverged; metrics so far and summary.json are in {cfg.experiment.out_dir}; "
              "the last checkpoint before the divergence is kept", file=sys.stderr)
        return EXIT_DIVERGED
    print(
        f"final return {s['final_return_mean']:.1f} (per seed: {', '.join(f'{x:.1f}' for x in s['final_returns'])}) | "
        f"{s['env_steps_per_second']:,.0f} env steps/s | compile {s['compile_seconds']:.1f}s | run dir {cfg.experiment.out_dir}"
    )
    return 0
