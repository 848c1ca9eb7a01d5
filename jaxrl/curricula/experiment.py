"""Host driver of a UED run: ``python experiments/ued.py --method robust_plr --env Maze ...``.

Seeds are vmapped in one compiled program; the run is ``num_chunks`` calls of
the shared chunk function (:func:`jaxrl.training.loop.make_runner` over the UED
agent of :mod:`jaxrl.training.ued`), with metrics, progress, held-out
evaluation and checkpoints between chunks. The level buffer is part of the
runner state, so it is checkpointed and a resumed run continues bit-exactly.

Run directory: ``config.yaml``, ``metrics.jsonl``, ``curves.npz`` (held-out
returns ``[chunks, seeds, levels, episodes]`` and the held-out level names), ``summary.json``
(held-out solve rate per level, ``final_return_mean`` / ``final_returns`` = mean held-out
return per seed), ``solve_rate_curve.png``, ``held_out_levels.png``,
``held_out_trajectories.png`` (mazes: one episode of seed 0's final policy
drawn on each held-out level) and, for buffer methods, ``buffer_levels.png`` and
``buffer_levels/chunk_NNN.png`` (the highest-scoring levels of seed 0 at the end
and at every checkpoint). Everything specific to an environment comes from its
:class:`~jaxrl.envs.levels.spaces.LevelSpace`.

Exit codes of :func:`main`: 0 done, 2 bad input (one line on stderr, nothing written).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import jax
import numpy as np

from jaxrl.agents.base import policy_parts
from jaxrl.agents.ppo import PPOConfig, validate_ppo
from jaxrl.cli import ConfigError, _coerce, _flag, _Parser, add_option_arguments, _suggest, _validate_values, load_yaml_config, options_to_argv
from jaxrl.config import option
from jaxrl.curricula.curriculum import BUFFER_METHODS, CurriculumConfig, validate_curriculum
from jaxrl.envs.levels.maze import render_level
from jaxrl.envs.levels.spaces import LEVEL_SPACES
from jaxrl.evaluation.rollout import play_levels
from jaxrl.experiment import check_out_dir
from jaxrl.io import Progress, RunDirectory
from jaxrl.io.checkpoint import CheckpointError, Checkpointer
from jaxrl.parallel import (MemberPlacement, add_distributed_arguments, distributed_main, is_primary, join_batches,
                            plan_members, refuse_together, split_members, to_host)
from jaxrl.training.loop import make_runner
from jaxrl.training.paired import make_paired
from jaxrl.training.ued import make_ued, ued_hparams

EXIT_BAD_INPUT = 2
LEVEL_ENVS = tuple(LEVEL_SPACES)


@dataclasses.dataclass(frozen=True)
class UEDExperimentConfig:
    """Options of a UED run that are neither the curriculum's nor PPO's."""

    env: str = option("Maze", "environment with designable levels", choices=LEVEL_ENVS)
    total_timesteps: int = option(1_000_000, "environment steps per seed", minimum=1)
    num_seeds: int = option(1, "independent runs in one program", minimum=1)
    seed: int = option(0, "base random seed")
    num_walls: int = option(25, "walls of a generated maze (Maze only)", minimum=0)
    max_steps: int = option(250, "maze time limit (Maze only; CartPole-v1 keeps its 500 steps)", minimum=1)
    num_chunks: int = option(10, "compiled chunks: metrics, held-out evaluation and checkpoint after each", minimum=1)
    eval_episodes: int = option(8, "held-out episodes per held-out level and seed after each chunk", minimum=1)
    out_dir: str = option("", "run directory (default runs/ued_<method>_<env>)")
    checkpoint_every: int = option(1, "save the complete state (level buffer included) every N chunks (0: never)", minimum=0)
    keep_checkpoints: int = option(3, "newest checkpoints kept", minimum=1)
    resume: str = option("", "continue the run in this directory from its newest checkpoint, with its saved config")
    overwrite: bool = option(False, "replace an existing run directory")
    quiet: bool = option(False, "no progress output")
    devices: str = option("1", "local devices the seeds are sharded over: a count or 'all'; "
                               "--num-seeds must be a multiple of it")
    seed_batch: int = option(0, "run the seeds in sequential batches of this many (one compiled program, same "
                                "results and run directory); must divide --num-seeds (0: all at once)", minimum=0)


GROUPS = (("run", UEDExperimentConfig), ("curriculum", CurriculumConfig), ("ppo", PPOConfig))
EXCLUDED = {"num_envs"}  # PPO's envs are the curriculum's num_levels


@dataclasses.dataclass(frozen=True)
class ResolvedUED:
    experiment: UEDExperimentConfig
    curriculum: CurriculumConfig
    ppo: PPOConfig
    command_line: tuple = ()

    def to_dict(self) -> dict:
        out = {}
        for cfg in (self.experiment, self.curriculum, self.ppo):
            out.update({k: v for k, v in dataclasses.asdict(cfg).items() if k not in EXCLUDED})
        for k in ("resume", "overwrite", "quiet", "out_dir"):
            out.pop(k, None)
        return out


def _fields():
    return {f.name: (cls, f) for _, cls in GROUPS for f in dataclasses.fields(cls) if f.name not in EXCLUDED}


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description="Environment-design curricula (DR, PLR, robust PLR, ACCEL, PAIRED) with PPO in one "
                                            "compiled program.", argument_default=argparse.SUPPRESS)
    parser.add_argument("--config", help="YAML preset; flags override its values")
    for group_name, cls in GROUPS:
        add_option_arguments(parser.add_argument_group(group_name), cls, skip=EXCLUDED)
    add_distributed_arguments(parser)
    return parser


def resolve(argv: list[str], prog: str = "ued.py") -> ResolvedUED:
    """Flags (and the ``--config`` preset they name) -> a validated config; raises ConfigError."""
    pre = _Parser(add_help=False, argument_default=argparse.SUPPRESS)
    pre.add_argument("--config")
    known, _ = pre.parse_known_args(argv)
    file_values = load_yaml_config(known.config) if getattr(known, "config", None) else {}
    args = vars(_parser(prog).parse_args(argv))
    args.pop("config", None)
    fields = _fields()
    merged, sources = {}, {}
    for key, value in file_values.items():
        if key not in fields:
            raise ConfigError(f"--config: unknown key {key!r} in {known.config}{_suggest(str(key), fields)}")
        merged[key], sources[key] = value, f"{known.config}: {key}"
    for key, value in args.items():
        merged[key], sources[key] = value, _flag(key)
    grouped = {cls: {} for _, cls in GROUPS}
    for key, value in merged.items():
        cls, f = fields[key]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        grouped[cls][key] = _coerce(key, value, default, sources[key])
    for cls, values in grouped.items():
        _validate_values(cls, values, sources)
    experiment = UEDExperimentConfig(**grouped[UEDExperimentConfig])
    curriculum = CurriculumConfig(**grouped[CurriculumConfig])
    ppo = dataclasses.replace(PPOConfig(**grouped[PPOConfig]), num_envs=curriculum.num_levels)
    if not experiment.out_dir:
        experiment = dataclasses.replace(experiment, out_dir=f"runs/ued_{curriculum.method}_{experiment.env}")
    for error in (validate_curriculum(curriculum), validate_ppo(ppo, None, experiment.total_timesteps)):
        if error:
            raise ConfigError(error)
    if ppo.normalize_obs:
        raise ConfigError("--normalize-obs: not supported with curricula (every update resets the envs to new levels)")
    if (curriculum.num_levels * ppo.rollout_len) % ppo.num_minibatches:
        raise ConfigError(f"--num-minibatches ({ppo.num_minibatches}) must divide --num-levels x --rollout-len")
    if curriculum.method == "paired" and not LEVEL_SPACES[experiment.env].designable_by_adversary:
        raise ConfigError(f"--method: paired needs levels its adversary can build (Maze); {experiment.env} has none")
    if experiment.num_walls > 13 * 13 - 2:
        raise ConfigError(f"--num-walls must be at most {13 * 13 - 2}, got {experiment.num_walls}")
    plan_members(experiment.devices, experiment.num_seeds, 1, experiment.seed_batch)
    return ResolvedUED(experiment, curriculum, ppo, tuple(sys.argv[:1]) + tuple(argv))


def resolve_resume(argv: list[str], prog: str = "ued.py") -> ResolvedUED:
    """``--resume RUN_DIR`` (optionally ``--quiet``): the run's saved config, pointed at RUN_DIR."""
    args = [a for a in argv if a not in ("--quiet", "--no-quiet")]
    if len(args) != 2 or args[0] != "--resume":
        raise ConfigError("--resume: takes the run's saved config; give only --resume RUN_DIR (and optionally --quiet)")
    run = Path(args[1])
    if not (run / "config.yaml").is_file():
        raise ConfigError(f"--resume: {args[1]!r} is not a run directory (no config.yaml)")
    extra = [a for a in argv if a in ("--quiet", "--no-quiet")]
    return resolve(["--config", str(run / "config.yaml"), "--out-dir", str(run), "--resume", str(run), *extra], prog)


def build(cfg: ResolvedUED):
    """``(env, agent, runner, held-out level names, eval levels)`` of a resolved config."""
    exp, cur = cfg.experiment, cfg.curriculum
    space = LEVEL_SPACES[exp.env]
    env = space.make_env(exp.max_steps)
    names, eval_levels = space.held_out()
    if cur.method == "paired":
        agent = make_paired(cfg.ppo, cur.num_levels, env, exp.total_timesteps, eval_levels, exp.num_walls,
                            num_eval_episodes=exp.eval_episodes)
    else:
        agent = make_ued(cfg.ppo, cur, env, exp.total_timesteps, space.generator(exp.num_walls), space.mutator(cur.num_edits),
                         eval_levels, exp.eval_episodes, solved_return=space.solved_return)
    return env, agent, make_runner(agent, None, exp.num_chunks), names, eval_levels


def level_grid(levels, num: int, columns: int = 8, cell: int = 6, render=render_level) -> np.ndarray:
    """An RGB image of the first ``num`` levels (leaves ``[N, ...]``) drawn by ``render`` (a level space's;
    mazes by default), ``columns`` per row, 1-cell white gaps."""
    return image_grid([render(level_at(levels, i), cell) for i in range(num)], columns, cell)


def level_at(levels, i: int):
    """Level ``i`` of a batch (leaves ``[N, ...]``), as numpy."""
    return jax.tree.map(lambda x: np.asarray(x)[i], levels)


def image_grid(images: list, columns: int, gap: int) -> np.ndarray:
    """Same-sized RGB images in rows of ``columns``, ``gap`` white pixels around each."""
    h, w, _ = images[0].shape
    rows = -(-len(images) // columns)
    grid = np.full((rows * (h + gap) + gap, columns * (w + gap) + gap, 3), 255, np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        grid[gap + r * (h + gap): gap + r * (h + gap) + h, gap + c * (w + gap): gap + c * (w + gap) + w] = image
    return grid


def _save_image(path: Path, image: np.ndarray, title: str) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(3.0, image.shape[1] / 60), max(2.5, image.shape[0] / 60 + 0.5)))
    ax = fig.add_subplot()
    ax.imshow(image, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    fig.savefig(path, dpi=100, bbox_inches="tight")


def first_seed_to_host(tree):
    """Seed 0's slice of every leaf ``[S, ...]``, on the host as ``[1, ...]`` (the images show seed 0 only; every
    seed's level buffer would be megabytes more per copy)."""
    return to_host(jax.tree.map(lambda x: x[:1], tree))


def top_buffer_levels(buffer, seed: int = 0, num: int = 16):
    """The ``num`` highest-scoring filled levels of one seed's buffer (leaves ``[S, C, ...]``) and their scores."""
    scores = np.where(np.asarray(buffer.filled)[seed], np.asarray(buffer.scores)[seed], -np.inf)
    order = np.argsort(-scores)[: min(num, int(np.isfinite(scores).sum()))]
    return jax.tree.map(lambda x: np.asarray(x)[seed][order], buffer.levels), scores[order]


def held_out_trajectories(agent, env, space, eval_levels, params, key) -> tuple[np.ndarray, np.ndarray]:
    """An RGB grid of the held-out levels, each with the path of one episode of the final policy
    (stochastic, as the held-out evaluation plays) of one seed, and those episodes' returns ``[L]``;
    ``params`` are that seed's policy parameters."""
    returns, env_states, playing = jax.jit(lambda k, p: play_levels(
        k, agent.act, p, env, eval_levels, initial_policy_state=agent.initial_policy_state))(key, params)
    positions, playing = np.asarray(space.agent_positions(env_states)), np.asarray(playing)  # [T, L, 2], [T, L]
    images = [space.render_trajectory(level_at(eval_levels, i), positions[playing[:, i], i], 6) for i in range(playing.shape[1])]
    return image_grid(images, len(images), 6), np.asarray(returns)


def save_buffer_levels(path: Path, buffer, render, title_prefix: str = "") -> None:
    """The highest-scoring levels of seed 0's buffer (leaves ``[S, C, ...]``, on the host) as a PNG grid."""
    levels, scores = top_buffer_levels(buffer)
    if len(scores):
        _save_image(path, level_grid(levels, len(scores), render=render),
                    f"{title_prefix}highest-scoring buffer levels (seed 0), scores {scores[0]:.3f} .. {scores[-1]:.3f}")


def plot_solve_rates(path: Path, env_steps: np.ndarray, solve: np.ndarray, names, title: str) -> None:
    """Held-out solve rate per maze (mean over seeds) against env steps; ``solve [C, S, L]``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    for i, name in enumerate(names):
        ax.plot(env_steps, solve[:, :, i].mean(1), label=name)
    ax.plot(env_steps, solve.mean(axis=(1, 2)), "k--", linewidth=2, label="mean")
    ax.set_xlabel("env steps per seed")
    ax.set_ylabel("held-out solve rate")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    fig.savefig(path, dpi=100, bbox_inches="tight")


def run_ued(cfg: ResolvedUED, write: bool = True, log=print) -> dict:
    """Runs (or resumes) a UED experiment; returns its summary."""
    exp, cur = cfg.experiment, cfg.curriculum
    checkpoints_wanted = write and bool(exp.checkpoint_every)  # every process takes part in a save
    write = write and is_primary()  # several processes: process 0 writes
    problem = None
    if write:
        try:
            check_out_dir(exp)
        except ConfigError as e:
            problem = e
    refuse_together(problem)
    env, agent, runner, names, eval_levels = build(cfg)
    keys = jax.random.split(jax.random.PRNGKey(exp.seed), exp.num_seeds)
    hparams = ued_hparams(cfg.ppo, cfg.curriculum)
    num_devices, batch_size = plan_members(exp.devices, exp.num_seeds, 1, exp.seed_batch)
    num_batches = exp.num_seeds // batch_size  # sequential batches of one compiled program
    placement = MemberPlacement.on(num_devices)  # seeds sharded over devices
    init_fn = placement.jit(jax.vmap(runner.init, in_axes=(0, None)), (0, None))
    chunk_fn = placement.jit(jax.vmap(runner.run_chunk, in_axes=(0, None, None)), (0, None, None), donate_argnums=0)
    run_dir = RunDirectory(exp.out_dir)
    checkpointer, state, start_chunk, run_seconds, history = None, None, 0, 0.0, []
    if exp.resume:
        checkpointer = Checkpointer(run_dir.path / "checkpoints", keep=exp.keep_checkpoints, background=True)
        if not checkpointer.steps():
            raise CheckpointError(f"--resume: no checkpoint in {run_dir.path / 'checkpoints'}")
        template = {"runner": jax.eval_shape(init_fn, keys, hparams), "history": None}
        _, saved, meta = checkpointer.restore(template)
        state, start_chunk, run_seconds = saved["runner"], int(meta["chunks_done"]), float(meta["run_seconds"])
        history = list(np.asarray(saved["history"]["eval_returns"]))
        if write:
            run_dir.truncate_metrics(min(start_chunk * runner.chunk_len, agent.num_updates))
    else:
        if write:
            run_dir.prepare()
            run_dir.write_config(cfg.to_dict())
        if checkpoints_wanted:
            checkpointer = Checkpointer(run_dir.path / "checkpoints", keep=exp.keep_checkpoints, background=True)

    t0 = time.perf_counter()
    hparams = placement.put_replicated(hparams)  # shared by every seed
    if state is None:
        states = [init_fn(placement.put(k), hparams) for k in split_members(keys, num_batches)]
    else:  # a checkpoint holds every seed in order, whatever the batching it was saved from
        states = [placement.put(s) for s in split_members(state, num_batches)]
    chunk_compiled = chunk_fn.lower(states[0], hparams, np.int32(0)).compile()
    compile_seconds = time.perf_counter() - t0
    steps = agent.env_steps_per_update
    progress = Progress(agent.num_updates * steps, enabled=not exp.quiet and is_primary())
    space = LEVEL_SPACES[exp.env]
    has_buffer = cur.method in BUFFER_METHODS
    num_levels = len(names)
    for chunk in range(start_chunk, runner.num_chunks):
        first = chunk * runner.chunk_len
        t = time.perf_counter()
        outputs = [chunk_compiled(s, hparams, np.int32(first)) for s in states]
        states = [s for s, _ in outputs]
        metrics = to_host(join_batches([m for _, m in outputs]))
        seconds = time.perf_counter() - t
        valid = np.asarray(metrics.pop("valid"))[0]
        metrics.pop("params_finite")
        eval_returns = np.asarray(metrics.pop("eval_returns")).reshape(exp.num_seeds, num_levels, -1)  # [S, L, E]
        history.append(eval_returns)
        n_valid = int(valid.sum())
        done_updates = first + n_valid
        solve = (eval_returns > space.solved_return).mean(-1)  # [S, L]
        rows = []
        for i in range(n_valid):
            update = first + i + 1
            row = {"update": update, "env_steps": update * steps}
            row.update({k: float(np.asarray(v)[:, valid][:, i].mean()) for k, v in metrics.items()})
            if i == n_valid - 1:
                row.update(eval_return_mean=float(eval_returns.mean()), eval_solve_rate=float(solve.mean()),
                           steps_per_second=n_valid * steps * exp.num_seeds / seconds)
                row.update({f"solve_{n}": float(solve[:, j].mean()) for j, n in enumerate(names)})
            rows.append(row)
        if write:
            run_dir.append_metrics(rows)
        chunks_done = chunk + 1
        if checkpointer is not None and exp.checkpoint_every and (
                chunks_done % exp.checkpoint_every == 0 or chunks_done == runner.num_chunks):
            checkpointer.save(chunks_done, {"runner": join_batches(states), "history": {"eval_returns": np.stack(history)}},
                              {"chunks_done": chunks_done, "updates_done": done_updates,
                               "run_seconds": run_seconds + time.perf_counter() - t})
            if has_buffer:  # the curriculum as it stood at this checkpoint (to_host: a collective across processes)
                snapshot = first_seed_to_host(states[0].agent_state.curriculum.buffer)  # seed 0 is in the first batch
                if write:
                    (run_dir.path / "buffer_levels").mkdir(exist_ok=True)
                    save_buffer_levels(run_dir.path / "buffer_levels" / f"chunk_{chunks_done:03d}.png", snapshot, space.render,
                                       f"after chunk {chunks_done}: ")
        progress.update(done_updates * steps, n_valid * steps * exp.num_seeds / seconds,
                        solve=float(solve.mean()), score=float(np.mean(metrics["level_score"])))
        run_seconds += time.perf_counter() - t
    progress.close()
    state = join_batches(states)
    if checkpointer is not None:
        checkpointer.wait()

    eval_all = np.stack(history)  # [C, S, L, E]
    solve_all = (eval_all > space.solved_return).mean(-1)  # [C, S, L]
    eval_env_steps = np.minimum((np.arange(eval_all.shape[0]) + 1) * runner.chunk_len, agent.num_updates) * steps
    final = eval_all[-1].mean(axis=(1, 2))  # [S]: mean held-out return
    summary = {
        "method": cur.method,
        "env": exp.env,
        "status": "completed",
        "final_return_mean": float(final.mean()),
        "final_return_std": float(final.std()),
        "final_returns": [float(x) for x in final],
        "held_out_solve_rate": {n: float(solve_all[-1, :, j].mean()) for j, n in enumerate(names)},
        "held_out_solve_rates": {n: [float(x) for x in solve_all[-1, :, j]] for j, n in enumerate(names)},
        "solve_rate_mean": float(solve_all[-1].mean()),
        "compile_seconds": compile_seconds,
        "run_seconds": run_seconds,
        "total_env_steps": int(agent.num_updates * steps * exp.num_seeds),
        "env_steps_per_seed": int(agent.num_updates * steps),
        "env_steps_per_second": agent.num_updates * steps * exp.num_seeds / run_seconds if run_seconds > 0 else float("nan"),
        "num_seeds": exp.num_seeds,
        "num_updates": agent.num_updates,
        "eval_episodes": exp.eval_episodes,
        "backend": jax.default_backend(),
    }
    buffer, seed0 = None, None
    if write or not is_primary():  # to_host is a collective in a multi-process run
        buffer = first_seed_to_host(state.agent_state.curriculum.buffer) if has_buffer else None
        # Seed 0's policy parameters, for the trajectory image.
        seed0 = jax.tree.map(lambda x: x[0], first_seed_to_host(policy_parts(agent, state.agent_state)[0])) if space.agent_positions is not None else None
    if write:
        run_dir.write_summary(summary)
        run_dir.write_arrays("curves.npz", eval_env_steps=eval_env_steps, eval_returns=eval_all, level_names=np.asarray(names))
        plot_solve_rates(run_dir.path / "solve_rate_curve.png", eval_env_steps, solve_all, names,
                         f"{cur.method} on {exp.env}: held-out levels")
        _save_image(run_dir.path / "held_out_levels.png", level_grid(eval_levels, num_levels, columns=num_levels, render=space.render),
                    " | ".join(names))
        if buffer is not None:
            save_buffer_levels(run_dir.path / "buffer_levels.png", buffer, space.render)
        if seed0 is not None:
            image, returns = held_out_trajectories(agent, env, space, eval_levels, seed0,
                                                   jax.random.fold_in(jax.random.PRNGKey(exp.seed), 1))
            _save_image(run_dir.path / "held_out_trajectories.png", image,
                        "seed 0, final policy: " + " | ".join(f"{n} {'solved' if r > space.solved_return else 'not solved'}"
                                                               for n, r in zip(names, returns)))
    if checkpointer is not None:
        checkpointer.close()
    return summary


def ued(**options) -> dict:
    """Notebook entry: ``ued(method="accel", total_timesteps=200_000, out_dir="runs/x")`` (nothing written without out_dir)."""
    write = bool(options.get("out_dir"))
    return run_ued(resolve(options_to_argv(options), prog="jaxrl.curricula.experiment.ued"), write=write)


def main(argv: list[str] | None = None, prog: str = "ued.py") -> int:
    """``experiments/ued.py``; joins a multi-process run first when its flags or launcher say so."""
    argv = sys.argv[1:] if argv is None else argv
    return distributed_main(lambda rest: _main(rest, prog), argv, prog)


def _main(argv: list[str], prog: str) -> int:
    try:
        resuming = any(a == "--resume" or a.startswith("--resume=") for a in argv)
        cfg = resolve_resume(argv, prog) if resuming else resolve(argv, prog)
        summary = run_ued(cfg)
    except (ConfigError, CheckpointError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"{summary['method']} on {summary['env']}: held-out solve rate {summary['solve_rate_mean']:.3f} "
          f"({', '.join(f'{k} {v:.2f}' for k, v in summary['held_out_solve_rate'].items())}); "
          f"results in {cfg.experiment.out_dir}")
    return 0
