"""The one host driver: every program (train, evolve, meta_train, ued, ...) runs through :func:`run`.

A :class:`Program` supplies only what is its own: its option groups, a builder
returning the pure functions the shared loop runs (:class:`Built`), how its
chunk metrics become ``metrics.jsonl`` rows and summary fields, its curves and
figures, its extra artifacts and how its saved solution becomes a policy. The
driver does the rest, once for all programs:

* options: defaults <- the program's defaults <- ``--config`` preset <- flags,
  or ``--resume RUN_DIR`` with the run's saved config; every option validated
  before anything compiles (:mod:`jaxrl.programs.options`);
* out-dir checks and ``--overwrite``; member planning (``--num-seeds`` x sweep
  grid, ``--devices``, ``--seed-batch``, processes);
* ahead-of-time compile through JAX's persistent cache, its time recorded;
* the chunk loop: metrics rows, progress, the divergence guard and
  ``--nan-policy``, checkpoints and bit-exact resume, TensorBoard / W&B;
* ``config.yaml``, ``reproducibility.json``, ``summary.json``, ``curves.npz``
  and figures.

Exit codes of :func:`main`: 0 done, 2 bad input (one line on stderr, nothing
written), 3 stopped because a member diverged (``--nan-policy stop``).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple

import jax
import numpy as np

from jaxrl.config import ConfigError
from jaxrl.distributed import add_distributed_arguments, distributed_main
from jaxrl.io.checkpoint import CheckpointError, Checkpointer, restore_run_state
from jaxrl.io.loggers import LoggerUnavailable, TensorBoardLogger, WandbLogger, check_available
from jaxrl.io.progress import Progress
from jaxrl.io.repro import reproducibility_record
from jaxrl.io.run_dir import RunDirectory
from jaxrl.parallel import (MemberPlacement, is_primary, join_batches, plan_members, refuse_together, split_members,
                            to_host)
from jaxrl.programs import compile_cache
from jaxrl.programs.options import (PROGRAM_KEY, Config, OneLineParser, RunOptions, add_option_arguments, coerce,
                                    field_default, flag, load_yaml_config, options_to_argv, parse_sweep, suggest,
                                    validate_values)
from jaxrl.runtime import intra_op_pool_threads
from jaxrl.threefry import unroll_threefry_on_cpu
from jaxrl.training.loop import Runner, map_members
from jaxrl.training.sweep import expand_grid, grid_label, member_batch

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3
USER_ERRORS = (ConfigError, CheckpointError, LoggerUnavailable)


class Built(NamedTuple):
    """What a program's builder returns (nothing compiled yet).

    Attributes:
        env: the environment (single, unbatched).
        runner: the shared chunked runner over the program's agent (:func:`jaxrl.training.loop.make_runner`).
        hparams: one member's traced hyperparameters (a NamedTuple, possibly nested); swept options are
            overridden by name per grid point.
        extra: anything else the program's hooks need (held-out level names, the level space ...).
    """

    env: Any
    runner: Runner
    hparams: Any
    extra: dict = {}

    @property
    def agent(self):
        return self.runner.agent


@dataclasses.dataclass
class RunContext:
    """What a program's hooks see of a run.

    Attributes:
        cfg: the resolved config; built: the program's pieces; grid: the sweep's grid points (``[{}]``
        without a sweep); run_dir: the run directory, or None when the run writes nothing.
    """

    cfg: Config
    built: Built
    grid: list
    run_dir: RunDirectory | None

    @property
    def num_seeds(self) -> int:
        return self.cfg.run.num_seeds

    @property
    def num_grid(self) -> int:
        return len(self.grid)

    @property
    def steps_per_update(self) -> int:
        return self.built.agent.env_steps_per_update

    @property
    def num_updates(self) -> int:
        return self.built.agent.num_updates

    def evaluated_updates(self, num_evaluations: int) -> np.ndarray:
        """``[C]``: the updates done when each of the first ``C`` chunk evaluations ran (the last chunk may be short)."""
        return np.minimum((np.arange(num_evaluations) + 1) * self.built.runner.chunk_len, self.num_updates)


def _no_fields(*_):
    return {}


def _nothing(*_):
    return None


@dataclasses.dataclass(frozen=True)
class Program:
    """What a program supplies to the driver; everything else is the driver's.

    Attributes:
        name: the program's name (``config.yaml``'s ``program``; the Python entry's name).
        description: the entry point's ``--help`` text.
        groups: ``raw values -> ((key, title, options class), ...)``: the program's option groups (its
            own; :class:`RunOptions` is added by the driver). ``raw values`` are the preset's and the
            flags' values before coercion, so a group may depend on another option (``--algo``).
        build: ``Config -> Built``.
        run_defaults: the program's defaults of run options (e.g. fewer chunks).
        skip: options of its groups the program does not offer (set by :attr:`finalize`).
        finalize: ``Config -> Config``: derived values (e.g. the default ``out_dir``).
        check: ``Config -> None``: cross-option checks; raises ConfigError naming the flag.
        step_name: what one update is called in rows and progress (``update``, ``generation``).
        curve_metrics: per-update metrics kept for curves and checkpoints (beside the evaluation returns).
        guard_metrics: metrics the divergence guard watches (None: every per-update metric), beside the
            policy parameters.
        update_fields: ``(ctx, {name: [S, ...]}) -> dict``: one grid point's row fields of one update.
        eval_fields: ``(ctx, eval_returns [S, ...]) -> dict``: one grid point's evaluation fields (last row
            of each chunk).
        progress_fields: ``(ctx, {name: [M, ...]} of the last update, eval_returns [M, ...]) -> dict``.
        summary: ``(ctx, history, final state) -> dict``: the program's own ``summary.json`` fields.
        curves: ``(ctx, history) -> {name: array}``: ``curves.npz``.
        figures: ``(ctx, curves) -> None``: figures written at the end.
        on_chunk: optional ``(ctx, chunks_done, states, eval_returns [M, ...], checkpointed) -> None`` after each
            chunk; ``states`` are the device states of the member batches (called on every process, so it may gather; ``ctx.run_dir``
            is None where nothing is written).
        artifacts: optional ``(ctx, final state) -> None``: extra outputs at the end (every process).
        unbatched_single_member: run a one-member program without the member ``vmap``
            (:func:`jaxrl.training.loop.map_members`: faster for small per-step work on CPU, equal to float32
            rounding); off keeps the vmapped program whatever the member count.
        select_policy: optional ``(loaded_run, agent_state, **choice) -> params``: a policy other than the member's
            own (``load_policy(run, cell=3)`` of a quality-diversity run); None if a member holds one policy.
        no_policy: empty if the run's members hold a policy (:func:`jaxrl.agents.base.policy_parts` of their
            state, which ``load_policy`` returns); otherwise what the run saves instead.
        report: ``(summary, cfg) -> str``: the entry point's last line.
        default_out_dir: ``Config -> str``.
        title: ``Config -> str`` for figures.
    """

    name: str
    description: str
    groups: Callable
    build: Callable
    update_fields: Callable
    eval_fields: Callable
    summary: Callable
    curves: Callable
    figures: Callable
    report: Callable
    default_out_dir: Callable
    run_defaults: dict = dataclasses.field(default_factory=dict)
    skip: frozenset = frozenset()
    finalize: Callable = lambda cfg: cfg
    check: Callable = _nothing
    step_name: str = "update"
    curve_metrics: tuple = ()
    guard_metrics: tuple | None = None
    progress_fields: Callable = _no_fields
    on_chunk: Callable | None = None
    artifacts: Callable | None = None
    select_policy: Callable | None = None
    no_policy: str = ""
    unbatched_single_member: bool = False


HOOKS = ("groups", "build", "check", "finalize", "update_fields", "eval_fields", "progress_fields", "summary", "curves",
         "figures", "on_chunk", "artifacts", "select_policy", "report", "default_out_dir")


def program_from_module(module_name: str, **fields) -> Program:
    """A :class:`Program` whose hooks are the functions of module ``module_name`` named as :attr:`HOOKS` (defined
    or imported there); ``fields`` give the rest (name, description, step name ...) and may override a hook."""
    namespace = vars(sys.modules[module_name])
    hooks = {name: namespace[name] for name in HOOKS if name in namespace and name not in fields}
    return Program(**hooks, **fields)


def entries(program: Program) -> tuple[Callable, Callable, Callable, Callable]:
    """A program module's public functions: its Python entry, ``resolve(argv)``, ``run(cfg, write=True)`` and
    ``main(argv=None, prog=...)`` for its entry point."""

    def resolve_program(argv: list[str], prog: str | None = None) -> Config:
        return resolve(program, argv, prog)

    def run_program(cfg: Config, write: bool = True, log=print) -> RunResult:
        return run(program, cfg, write, log)

    def main_program(argv: list[str] | None = None, prog: str | None = None) -> int:
        return main(program, argv, prog)

    return python_entry(program), resolve_program, run_program, main_program


# ---------------------------------------------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------------------------------------------


def _all_groups(program: Program, raw: dict) -> list[tuple[str, str, type]]:
    return [*program.groups(raw), ("run", "run", RunOptions)]


def build_parser(program: Program, raw: dict, prog: str) -> argparse.ArgumentParser:
    parser = OneLineParser(prog=prog, description=program.description, argument_default=argparse.SUPPRESS)
    parser.add_argument("--config", help="YAML preset (configs/*.yaml) or a run's config.yaml; flags override its values")
    for key, title, cls in _all_groups(program, raw):
        add_option_arguments(parser.add_argument_group(title), cls, skip=program.skip,
                             defaults=program.run_defaults if cls is RunOptions else None)
    add_distributed_arguments(parser)
    return parser


def _pre_parse(argv: list[str]) -> tuple[dict, str | None, dict]:
    """Before the full parse: the raw values a program's groups may depend on (preset, then flags), the
    ``--config`` path and the preset's values."""
    pre = OneLineParser(add_help=False, argument_default=argparse.SUPPRESS)
    pre.add_argument("--config")
    known, rest = pre.parse_known_args(argv)
    config_path = getattr(known, "config", None)
    file_values = load_yaml_config(config_path) if config_path else {}
    raw = dict(file_values)
    for i, arg in enumerate(rest):  # flags given as --name value or --name=value (e.g. --algo)
        if arg.startswith("--") and "=" in arg:
            name, value = arg[2:].split("=", 1)
            raw[name.replace("-", "_")] = value
        elif arg.startswith("--") and i + 1 < len(rest) and not rest[i + 1].startswith("--"):
            raw[arg[2:].replace("-", "_")] = rest[i + 1]
    return raw, config_path, file_values


def resolve(program: Program, argv: list[str], prog: str | None = None) -> Config:
    """Flags (and the ``--config`` preset they name) -> a validated :class:`Config`; raises ConfigError."""
    prog = prog or f"{program.name}.py"
    raw, config_path, file_values = _pre_parse(argv)
    saved_program = file_values.pop(PROGRAM_KEY, program.name)
    if saved_program != program.name:
        raise ConfigError(f"--config: {config_path} is a config of {saved_program}.py, not {program.name}.py")
    groups = _all_groups(program, raw)
    args = vars(build_parser(program, raw, prog).parse_args(argv))
    args.pop("config", None)
    fields = {f.name: (key, cls, f) for key, _, cls in groups for f in dataclasses.fields(cls) if f.name not in program.skip}
    merged, sources = {}, {}
    for key, value in file_values.items():
        if key not in fields:
            raise ConfigError(f"--config: unknown key {key!r} in {config_path}{suggest(str(key), fields)}")
        merged[key], sources[key] = value, f"{config_path}: {key}"
    for key, value in args.items():
        merged[key], sources[key] = value, flag(key)
    grouped: dict[str, dict] = {key: {} for key, _, _ in groups}
    for name, value in program.run_defaults.items():
        grouped["run"].setdefault(name, value)
    group_classes = tuple(cls for _, _, cls in groups)
    for name, value in merged.items():
        key, cls, f = fields[name]
        if name == "sweep":
            grouped[key][name] = parse_sweep(value, sources[name], group_classes)
        else:
            grouped[key][name] = coerce(name, value, field_default(f), sources[name])
    for key, _, cls in groups:
        validate_values(cls, grouped[key], sources)
    instances = {key: cls(**grouped[key]) for key, _, cls in groups}
    run = instances.pop("run")
    cfg = Config(program.name, run, instances, sources, tuple(sys.argv[:1]) + tuple(argv))
    cfg = program.finalize(cfg)
    if not cfg.run.out_dir:
        cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, out_dir=program.default_out_dir(cfg)))
    compile_cache.cache_dir_for(cfg.run.compile_cache)
    program.check(cfg)
    plan_members(cfg.run.devices, cfg.run.num_seeds, len(expand_grid(cfg.run.sweep)), cfg.run.seed_batch)
    return cfg


def saved_config(program: Program, cfg: Config) -> dict:
    """What ``config.yaml`` holds: every option the program offers, so ``--config`` / ``--resume`` reads it back."""
    return {k: v for k, v in cfg.to_dict().items() if k not in program.skip}


def is_resume(argv: list[str]) -> bool:
    return any(a == "--resume" or a.startswith("--resume=") for a in argv)


RESUME_EXTRA_FLAGS = ("--quiet", "--no-quiet")


def resolve_resume(program: Program, argv: list[str], prog: str | None = None) -> Config:
    """``--resume RUN_DIR`` (optionally ``--quiet``): the run's saved config, pointed at RUN_DIR.

    Refused (ConfigError) unless RUN_DIR holds a ``config.yaml`` and a committed checkpoint.
    """
    args = [a for a in argv if a not in RESUME_EXTRA_FLAGS]
    if len(args) == 1 and args[0].startswith("--resume="):
        args = ["--resume", args[0].split("=", 1)[1]]
    if len(args) != 2 or args[0] != "--resume":
        raise ConfigError("--resume: takes the run's saved config; give only --resume RUN_DIR (and optionally --quiet)")
    run = Path(args[1])
    if not (run / "config.yaml").is_file():
        raise ConfigError(f"--resume: {args[1]!r} is not a run directory (no config.yaml)")
    if not (run / "checkpoints").is_dir() or not Checkpointer(run / "checkpoints").steps():
        raise ConfigError(f"--resume: {args[1]!r} has no committed checkpoint to resume from")
    extra = [a for a in argv if a in RESUME_EXTRA_FLAGS]
    return resolve(program, ["--config", str(run / "config.yaml"), "--out-dir", str(run), "--resume", str(run), *extra],
                   prog)


def checked_env(name: str, kwargs: dict):
    """``envs.make(name, **kwargs)``, with an unknown name or keyword a ConfigError naming the flag."""
    from jaxrl import envs

    if name not in envs.registered_envs():
        raise ConfigError(f"--env: {envs.registry.unknown_env_message(name)}")
    from jaxrl.envs.suites import MissingSuiteError

    try:
        return envs.make(name, **kwargs)
    except MissingSuiteError as e:
        raise ConfigError(f"--env: {e}") from None
    except (TypeError, ValueError) as e:
        raise ConfigError(f"--env-kwargs: {name} does not accept {kwargs}: {str(e).splitlines()[0]}") from None


def check_out_dir(run: RunOptions) -> None:
    """Refuses to write into a directory that already holds files (unless resuming or overwriting)."""
    if run.resume:
        return
    path = Path(run.out_dir)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out-dir: {run.out_dir!r} exists and is not a directory")
    if path.is_dir() and any(path.iterdir()) and not run.overwrite:
        raise ConfigError(f"--out-dir: {run.out_dir!r} already holds a run; pass --resume {run.out_dir} to continue it, "
                          "--overwrite to replace it, or choose another --out-dir")


# ---------------------------------------------------------------------------------------------------------------
# Members and hyperparameters
# ---------------------------------------------------------------------------------------------------------------


def hparam_names(hparams) -> set[str]:
    """Names of the scalar leaves of a (nested) NamedTuple of hyperparameters."""
    names = set()
    for name, value in hparams._asdict().items():
        if hasattr(value, "_asdict"):
            names |= hparam_names(value)
        else:
            names.add(name)
    return names


def members(cfg: Config, built: Built) -> tuple[list[dict], jax.Array, Any]:
    """Grid points, member keys ``[G*S]`` and member hparams (leaves ``[G*S, ...]``), grid-major."""
    grid = expand_grid(cfg.run.sweep)
    missing = set(cfg.run.sweep) - hparam_names(built.hparams)
    if missing:  # an option marked traced that the program's hyperparameters do not carry: a bug, not user input
        raise RuntimeError(f"traced options {sorted(missing)} are not leaves of {type(built.hparams).__name__}")
    keys, hparams = member_batch(built.hparams, grid, cfg.run.num_seeds, cfg.run.seed)
    return grid, keys, hparams


def describe_member(m: int, grid: list[dict], num_seeds: int) -> str:
    g, s = divmod(m, num_seeds)
    return f"seed {s}" + (f", grid point {g} ({grid_label(grid[g])})" if len(grid) > 1 else "")


def first_nonfinite(per_update: dict, params_finite: np.ndarray, first_update: int) -> list:
    """Per member, the first non-finite quantity of a chunk, or None.

    Args:
        per_update: metric name -> ``[M, n, ...]`` values of the chunk's valid updates.
        params_finite: ``[M]`` bool, policy parameters finite at the end of the chunk.
        first_update: index of the chunk's first update.

    Returns:
        ``M`` entries: ``(quantity, update)`` (``update`` None for parameters) or None.
    """
    found: list = [None] * params_finite.shape[0]
    for m in range(params_finite.shape[0]):
        best = None
        for name, values in per_update.items():
            per_step = np.asarray(values[m]).reshape(values.shape[1], -1)
            bad = np.flatnonzero(~np.isfinite(per_step).all(-1))
            if bad.size and (best is None or bad[0] < best[1]):
                best = (name, int(bad[0]))
        if best is not None:
            found[m] = (best[0], first_update + best[1] + 1)
        elif not params_finite[m]:
            found[m] = ("parameters", None)
    return found


def finite_mean(x) -> float:
    """Mean over finite entries (NaN if there are none), without numpy's empty-slice warning."""
    x = np.asarray(x, np.float64)
    finite = x[np.isfinite(x)]
    return float(finite.mean()) if finite.size else float("nan")


def finite_std(x) -> float:
    x = np.asarray(x, np.float64)
    finite = x[np.isfinite(x)]
    return float(finite.std()) if finite.size else float("nan")


# ---------------------------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class RunResult:
    """What every program's run returns (and writes to its run directory).

    Attributes:
        summary: the content of ``summary.json``.
        curves: the content of ``curves.npz`` (arrays named by the program).
        state: the final runner state of every member (leaves ``[M, ...]``, ``M`` = grid points x seeds).
        run_dir: the run directory (None when nothing was written).
        built: the program's pieces (environment, runner, agent).
        grid: the sweep's grid points.
        diverged: True if the run stopped early on a non-finite value.
    """

    summary: dict
    curves: dict
    state: Any
    run_dir: Path | None
    built: Built
    grid: list
    diverged: bool = False

    @property
    def agent(self):
        return self.built.agent


def _history_template(program: Program) -> dict:
    return {name: [] for name in (*program.curve_metrics, "eval_returns")}


def _join_history(history: dict) -> dict:
    """Chunks' history lists -> arrays: per-update curves ``[U, G, S, ...]``, evaluations ``[C, G, S, ...]``."""
    out = {name: np.concatenate(chunks) for name, chunks in history.items() if name != "eval_returns" and chunks}
    out["eval_returns"] = np.stack(history["eval_returns"])
    return out


def _restore(checkpointer: Checkpointer, runner: Runner, keys, hparams, program: Program):
    step, saved, meta = restore_run_state(checkpointer, runner, keys, hparams, drop_damaged=True)
    history = _history_template(program)
    for name, value in saved["history"].items():
        history[name] = [np.asarray(value)] if name != "eval_returns" else list(np.asarray(value))
    return step, saved["runner"], history, meta


def run(program: Program, cfg: Config, write: bool = True, log=print) -> RunResult:
    """Runs (or resumes) ``cfg`` with ``program``. Raises ConfigError / CheckpointError for bad input before compiling.

    In a multi-process run every process calls this with the same config; each computes its own
    members, all see every member's metrics, and only process 0 writes (run directory, checkpoints,
    loggers, progress).
    """
    opts = cfg.run
    checkpoints_wanted = write and bool(opts.checkpoint_every)  # every process takes part in a save
    write = write and is_primary()
    problem = None
    if write:
        try:
            check_out_dir(opts)
            check_available(opts.tensorboard, opts.wandb)
        except USER_ERRORS as e:
            problem = e
    refuse_together(problem)
    compile_cache.enable(compile_cache.cache_dir_for(opts.compile_cache))
    unroll_threefry_on_cpu()  # same random bits; many fewer kernels per key split on CPU
    built = program.build(cfg)
    runner = built.runner
    grid, keys, hparams = members(cfg, built)
    num_grid, num_seeds = len(grid), opts.num_seeds
    num_members = num_grid * num_seeds
    num_devices, batch_size = plan_members(opts.devices, num_seeds, num_grid, opts.seed_batch)
    num_batches = num_members // batch_size  # sequential batches of one compiled program
    placement = MemberPlacement.on(num_devices)  # members sharded over devices
    map_fn = map_members if program.unbatched_single_member else jax.vmap
    init_fn = placement.jit(map_fn(runner.init, (0, 0)), (0, 0))
    chunk_fn = placement.jit(map_fn(runner.run_chunk, (0, 0, None)), (0, 0, None), donate_argnums=0)
    key_batches = [placement.put(k) for k in split_members(keys, num_batches)]  # each process: its own shards
    hparam_batches = [placement.put(h) for h in split_members(hparams, num_batches)]

    run_dir = RunDirectory(opts.out_dir)
    ctx = RunContext(cfg, built, grid, run_dir if write else None)
    checkpointer, state, start_chunk, run_seconds = None, None, 0, 0.0
    history = _history_template(program)
    if opts.resume:
        checkpointer = Checkpointer(run_dir.path / "checkpoints", keep=opts.keep_checkpoints, background=True)
        if not checkpointer.steps():
            raise CheckpointError(f"--resume: no checkpoint in {run_dir.path / 'checkpoints'}")
        _, state, history, meta = _restore(checkpointer, runner, keys, hparams, program)
        start_chunk, run_seconds = int(meta["chunks_done"]), float(meta["run_seconds"])
        if write:
            run_dir.truncate_metrics(min(start_chunk * runner.chunk_len, runner.agent.num_updates), key=program.step_name)
    else:
        if write:
            run_dir.prepare()
            run_dir.write_config(saved_config(program, cfg))
        if checkpoints_wanted:
            checkpointer = Checkpointer(run_dir.path / "checkpoints", keep=opts.keep_checkpoints, background=True)
    if write:
        run_dir.write_json("reproducibility.json", reproducibility_record(list(cfg.command_line)))
    sinks = []
    if write and opts.tensorboard:
        sinks.append(TensorBoardLogger(run_dir.path))
    if write and opts.wandb:
        sinks.append(WandbLogger(run_dir.path, saved_config(program, cfg), opts.wandb_project, run_dir.path.name))

    # Compile ahead of time so compile time is measured on its own.
    hits_before = compile_cache.hits()
    t0 = time.perf_counter()
    if state is None:
        init_compiled = init_fn.lower(key_batches[0], hparam_batches[0]).compile()
        states = [init_compiled(k, h) for k, h in zip(key_batches, hparam_batches)]
    else:  # a checkpoint holds every member in order, whatever the batching or devices it was saved from
        states = [placement.put(s) for s in split_members(state, num_batches)]
    chunk_compiled = chunk_fn.lower(states[0], hparam_batches[0], np.int32(0)).compile()
    compile_seconds = time.perf_counter() - t0
    compile_from_cache = compile_cache.hits() > hits_before

    steps = runner.agent.env_steps_per_update
    progress = Progress(runner.agent.num_updates * steps, enabled=not opts.quiet and is_primary(), members=num_members)
    diverged_members: dict[int, tuple] = {}
    stopped = False
    for chunk in range(start_chunk, runner.num_chunks):
        first = chunk * runner.chunk_len
        t = time.perf_counter()
        outputs = [chunk_compiled(s, h, np.int32(first)) for s, h in zip(states, hparam_batches)]
        states = [s for s, _ in outputs]
        metrics = to_host(join_batches([m for _, m in outputs]))
        seconds = time.perf_counter() - t
        valid = np.asarray(metrics.pop("valid"))[0]
        params_finite = np.asarray(metrics.pop("params_finite"))
        eval_returns = np.asarray(metrics.pop("eval_returns"))  # [M, ...]
        per_member = {k: np.asarray(v)[:, valid] for k, v in metrics.items()}  # [M, n, ...]
        n_valid = int(valid.sum())
        done_updates = first + n_valid
        by_grid = lambda x: x.reshape(num_grid, num_seeds, *x.shape[1:])  # noqa: E731  [M, ...] -> [G, S, ...]
        for name in program.curve_metrics:
            history[name].append(np.moveaxis(by_grid(per_member[name]), 2, 0))  # [n, G, S, ...]
        history["eval_returns"].append(by_grid(eval_returns))

        guarded = per_member if program.guard_metrics is None else {k: per_member[k] for k in program.guard_metrics}
        newly_bad = [(m, bad) for m, bad in enumerate(first_nonfinite(guarded, params_finite, first))
                     if bad is not None and m not in diverged_members]
        for m, (quantity, update) in newly_bad:
            diverged_members[m] = (quantity, update)
            at = f" at {program.step_name} {update}" if update is not None else f" after {program.step_name} {done_updates}"
            verb = "stopping" if opts.nan_policy == "stop" else "masked, run goes on"
            if is_primary():
                log(f"non-finite {quantity}{at} for {describe_member(m, grid, num_seeds)}: {verb}", file=sys.stderr)

        env_steps_per_second = n_valid * steps * num_members / seconds
        rows = []
        for i in range(n_valid):
            update = first + i + 1
            for g, point in enumerate(grid):
                row = {program.step_name: update, "env_steps": update * steps}
                if num_grid > 1:
                    row.update(grid_index=g, **point)
                group = slice(g * num_seeds, (g + 1) * num_seeds)
                row.update(program.update_fields(ctx, {k: v[group, i] for k, v in per_member.items()}))
                if i == n_valid - 1:
                    row.update(program.eval_fields(ctx, eval_returns[group]))
                    row.update({"steps_per_second": env_steps_per_second, f"{program.step_name}s_per_second": n_valid / seconds})
                rows.append(row)
        if write:
            run_dir.append_metrics(rows)
            for sink in sinks:
                sink.log(rows)
        if newly_bad and opts.nan_policy == "stop":
            stopped = True
            run_seconds += time.perf_counter() - t
            break
        chunks_done = chunk + 1
        checkpointed = checkpointer is not None and bool(opts.checkpoint_every) and (
            chunks_done % opts.checkpoint_every == 0 or chunks_done == runner.num_chunks)
        if checkpointed:
            checkpointer.save(chunks_done, {"runner": join_batches(states), "history": _join_history(history)},
                              {"chunks_done": chunks_done, "updates_done": done_updates,
                               "run_seconds": run_seconds + time.perf_counter() - t})
        if program.on_chunk is not None:
            program.on_chunk(ctx, chunks_done, states, eval_returns, checkpointed)
        last = {k: v[:, -1] for k, v in per_member.items()} if n_valid else {}
        progress.update(done_updates * steps, env_steps_per_second, **program.progress_fields(ctx, last, eval_returns))
        run_seconds += time.perf_counter() - t  # the whole iteration: compute, metrics, checkpoint
    progress.close()
    state = join_batches(states)
    if checkpointer is not None:
        checkpointer.wait()  # the final checkpoint is committed before the run reports done
    for sink in sinks:
        sink.close()

    joined = _join_history(history)
    updates_done = (runner.num_chunks if not stopped else len(history["eval_returns"])) * runner.chunk_len
    updates_done = min(updates_done, runner.agent.num_updates)
    final = joined["eval_returns"][-1].reshape(num_members, -1).mean(-1)  # [M]: mean evaluation return per member
    for m in diverged_members:
        final[m] = np.nan
    total_env_steps = updates_done * steps * num_members
    summary = {
        "program": program.name,
        "status": "diverged" if stopped else "completed",
        "final_return_mean": finite_mean(final),
        "final_return_std": finite_std(final),
        "final_returns": [float(x) for x in final],
        "env_steps_per_second": total_env_steps / run_seconds if run_seconds > 0 else float("nan"),
        f"{program.step_name}s_per_second": updates_done / run_seconds if run_seconds > 0 else float("nan"),
        "compile_seconds": compile_seconds,
        "compile_from_cache": compile_from_cache,
        "run_seconds": run_seconds,
        "total_env_steps": int(total_env_steps),
        "env_steps_per_seed": int(updates_done * steps),
        "num_seeds": num_seeds,
        "num_updates": runner.agent.num_updates,
        "eval_episodes": opts.eval_episodes,
        "backend": jax.default_backend(),
        "cpu_intra_op_threads": intra_op_pool_threads(),
    }
    summary.update(program.summary(ctx, joined, state))
    if diverged_members:
        summary["diverged_members"] = [
            {"member": m, "seed": m % num_seeds, "grid_index": m // num_seeds, "quantity": q, program.step_name: u}
            for m, (q, u) in sorted(diverged_members.items())]
    if num_grid > 1:
        by_point = final.reshape(num_grid, num_seeds)
        summary["grid"] = [{"hparams": point, "final_return_mean": finite_mean(by_point[g]),
                            "final_returns": [float(x) for x in by_point[g]]} for g, point in enumerate(grid)]
    curves = program.curves(ctx, joined)
    if write:
        run_dir.write_summary(summary)
        run_dir.write_arrays("curves.npz", **curves)
        program.figures(ctx, curves)
    if program.artifacts is not None and not stopped:
        program.artifacts(ctx, state)
    if checkpointer is not None:
        checkpointer.close()
    return RunResult(summary, curves, state, run_dir.path if write else None, built, grid, stopped)


# ---------------------------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------------------------


def python_entry(program: Program) -> Callable[..., RunResult]:
    """The program's Python entry: ``train(env="CartPole-v1", num_seeds=16, out_dir="runs/x")``.

    Options are the CLI's names with underscores (``sweep`` a dict of lists, ``config`` a preset path,
    ``resume`` a run directory). Nothing is written unless ``out_dir`` (or ``resume``) is given.
    """

    def entry(**options) -> RunResult:
        if options.get("resume"):
            extra = ["--quiet"] if options.get("quiet") else []
            cfg = resolve_resume(program, ["--resume", str(options["resume"]), *extra], prog=program.name)
            return run(program, cfg)
        write = bool(options.get("out_dir"))
        argv = options_to_argv({k: v for k, v in options.items() if k != "config"})
        if options.get("config"):
            argv = ["--config", str(options["config"]), *argv]
        if not write:
            argv += ["--checkpoint-every", "0"]
        return run(program, resolve(program, argv, prog=program.name), write=write)

    entry.__name__ = program.name
    entry.__doc__ = f"{program.description}\n\n{python_entry.__doc__}"
    return entry


def main(program: Program, argv: list[str] | None = None, prog: str | None = None) -> int:
    """An entry point (``experiments/<program>.py``); joins a multi-process run first when asked."""
    argv = sys.argv[1:] if argv is None else argv
    prog = prog or f"{program.name}.py"
    return distributed_main(lambda rest: _main(program, rest, prog), argv, prog)


def _main(program: Program, argv: list[str], prog: str) -> int:
    try:
        cfg = resolve_resume(program, argv, prog) if is_resume(argv) else resolve(program, argv, prog)
        result = run(program, cfg)
    except USER_ERRORS as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if result.diverged:
        print(f"stopped: a member diverged; metrics so far and summary.json are in {cfg.run.out_dir}; "
              "the last checkpoint before the divergence is kept", file=sys.stderr)
        return EXIT_DIVERGED
    print(program.report(result.summary, cfg))
    for point in result.summary.get("grid", []):
        returns = ", ".join("nan" if x is None or x != x else f"{x:.1f}" for x in point["final_returns"])
        print(f"  {grid_label(point['hparams'])}: final return {point['final_return_mean']:.1f} (per seed: {returns})")
    return 0
