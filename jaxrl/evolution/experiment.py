"""Host driver of an evolution run: seeds vmapped in one compiled program, run in chunks.

``python experiments/evolve.py ...`` calls :func:`main`; notebooks call
:func:`evolve` with keyword options. The search is an ``Agent`` whose update is
one generation (:mod:`jaxrl.evolution.search`), so the chunking, evaluation,
checkpoints and bit-exact resume are those of training
(:mod:`jaxrl.training.loop`, :mod:`jaxrl.io.checkpoint`); this module only
parses flags and writes the run directory between chunks.

Exit codes of :func:`main`: 0 done, 2 bad input (one line on stderr, nothing written).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np

from jaxrl import envs
from jaxrl.cli import ConfigError, _coerce, _flag, _Parser, add_option_arguments, _suggest, _validate_values, load_yaml_config, options_to_argv
from jaxrl.config import option
from jaxrl.envs import Box, Discrete
from jaxrl.evolution.fitness import final_observation
from jaxrl.evolution.search import EvolutionConfig, evolution_hparams, make_evolution
from jaxrl.experiment import check_out_dir
from jaxrl.io import Progress, RunDirectory, plot_fitness_curves
from jaxrl.io.checkpoint import CheckpointError, Checkpointer, restore_run_state
from jaxrl.io.repro import reproducibility_record
from jaxrl.parallel import (MemberPlacement, add_distributed_arguments, distributed_main, is_primary, join_batches,
                            plan_members, refuse_together, split_members, to_host)
from jaxrl.training.loop import make_runner

EXIT_BAD_INPUT = 2


@dataclasses.dataclass(frozen=True)
class EvolveExperimentConfig:
    """Options of an evolution run that are not part of the search itself."""

    env: str = option("CartPole-v1", "environment name (gymnax id, brax/<name>, DeceptiveMaze-v0 ...)")
    env_kwargs: dict = option({}, "keyword arguments for the environment, e.g. backend=spring")
    generations: int = option(200, "generations per seed", minimum=1)
    num_seeds: int = option(1, "independent searches run together in one program", minimum=1)
    seed: int = option(0, "base random seed")
    num_chunks: int = option(20, "compiled chunks per run: metrics, progress, evaluation and checkpoint after each", minimum=1)
    eval_episodes: int = option(16, "evaluation episodes of the solution per seed after each chunk", minimum=1)
    out_dir: str = option("", "run directory (default runs/evolve_<strategy>_<env>)")
    checkpoint_every: int = option(1, "save the complete state every N chunks (0: never)", minimum=0)
    keep_checkpoints: int = option(3, "number of newest checkpoints kept", minimum=1)
    resume: str = option("", "continue the run in this directory from its newest intact checkpoint, with its saved config")
    overwrite: bool = option(False, "replace an existing run directory")
    quiet: bool = option(False, "no progress output")
    devices: str = option("1", "local devices the seeds are sharded over: a count or 'all'; "
                               "--num-seeds must be a multiple of it")
    seed_batch: int = option(0, "run the seeds in sequential batches of this many (one compiled program, same "
                                "results and run directory); must divide --num-seeds (0: all at once)", minimum=0)


RUN_ONLY_OPTIONS = ("resume", "overwrite", "quiet")


@dataclasses.dataclass(frozen=True)
class ResolvedEvolution:
    """A validated evolution config: ``experiment`` (run options) and ``search``."""

    experiment: EvolveExperimentConfig
    search: EvolutionConfig
    command_line: tuple = ()

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self.experiment)
        d.update(dataclasses.asdict(self.search))
        for name in RUN_ONLY_OPTIONS:
            d.pop(name, None)
        return d


@dataclasses.dataclass
class EvolutionResult:
    """What a run produced (also written to the run directory).

    Attributes:
        summary: the content of ``summary.json``.
        state: final state of every seed (leading axis ``[S]``).
        population_returns: ``[G, S, N]`` fitness of every individual.
        eval_returns: ``[C, S, E]`` evaluation returns of the solution after each chunk.
        eval_generations: ``[C]``.
    """

    summary: dict
    state: Any
    population_returns: np.ndarray
    eval_returns: np.ndarray
    eval_generations: np.ndarray
    agent: Any


def is_evolution_config(values: dict) -> bool:
    """A saved ``config.yaml`` of an evolution run (it names a strategy, training configs an algo)."""
    return "strategy" in values and "algo" not in values


def _parser(prog: str, search_cls=EvolutionConfig,
            description: str = "Evolve policies: the whole generation loop in one compiled program.") -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description=description, argument_default=argparse.SUPPRESS)
    parser.add_argument("--config", help="YAML preset; flags override its values")
    for group_name, cls in (("run", EvolveExperimentConfig), ("search", search_cls)):
        add_option_arguments(parser.add_argument_group(group_name), cls)
    add_distributed_arguments(parser)
    return parser


def _default_out_dir(experiment: EvolveExperimentConfig, search) -> str:
    return f"runs/evolve_{search.strategy}_{experiment.env.replace('/', '_')}"


def resolve(argv: list[str], prog: str = "evolve.py", search_cls=EvolutionConfig, check: Callable | None = None,
            default_out_dir: Callable = _default_out_dir, description: str | None = None) -> ResolvedEvolution:
    """Flags (and the ``--config`` file they name) -> a validated config; raises ConfigError.

    ``search_cls``, ``check(experiment, search, sources)`` and ``default_out_dir`` let other
    searches on the same driver (meta-training) bring their own options and checks.
    """
    check = _check_consistency if check is None else check
    pre = _Parser(add_help=False, argument_default=argparse.SUPPRESS)
    pre.add_argument("--config")
    known, _ = pre.parse_known_args(argv)
    file_values = load_yaml_config(known.config) if getattr(known, "config", None) else {}
    parser = _parser(prog, search_cls) if description is None else _parser(prog, search_cls, description)
    args = vars(parser.parse_args(argv))
    args.pop("config", None)
    exp_fields = {f.name: f for f in dataclasses.fields(EvolveExperimentConfig)}
    search_fields = {f.name: f for f in dataclasses.fields(search_cls)}
    all_fields = {**exp_fields, **search_fields}
    merged, sources = {}, {}
    for key, value in file_values.items():
        if key not in all_fields:
            raise ConfigError(f"--config: unknown key {key!r} in {known.config}{_suggest(str(key), all_fields)}")
        merged[key], sources[key] = value, f"{known.config}: {key}"
    for key, value in args.items():
        merged[key], sources[key] = value, _flag(key)
    values = {}
    for key, value in merged.items():
        f = all_fields[key]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if key == "hidden_sizes" and value in ("", (), []):  # an empty list is a linear policy
            values[key] = ()
            continue
        values[key] = _coerce(key, value, default, sources[key])
    exp_values = {k: v for k, v in values.items() if k in exp_fields}
    search_values = {k: v for k, v in values.items() if k in search_fields}
    _validate_values(EvolveExperimentConfig, exp_values, sources)
    hidden = search_values.pop("hidden_sizes", None)
    _validate_values(search_cls, search_values, sources)
    if hidden is not None:
        if any(h < 1 for h in hidden):
            raise ConfigError(f"{sources['hidden_sizes']}: expected positive layer sizes, got {hidden!r}")
        search_values["hidden_sizes"] = hidden
    experiment = EvolveExperimentConfig(**exp_values)
    search = search_cls(**search_values)
    if not experiment.out_dir:
        experiment = dataclasses.replace(experiment, out_dir=default_out_dir(experiment, search))
    check(experiment, search, sources)
    plan_members(experiment.devices, experiment.num_seeds, 1, experiment.seed_batch)
    return ResolvedEvolution(experiment, search, tuple(sys.argv[:1]) + tuple(argv))


def _where(sources: dict, name: str) -> str:
    return sources.get(name, _flag(name))


def _check_consistency(exp: EvolveExperimentConfig, search: EvolutionConfig, sources: dict) -> None:
    """Cross-option checks, before anything compiles."""
    if exp.env not in envs.registered_envs():
        raise ConfigError(f"--env: {envs.registry.unknown_env_message(exp.env)}")
    if not np.isfinite(search.sigma) or search.sigma <= 0:
        raise ConfigError(f"{_where(sources, 'sigma')}: must be > 0, got {search.sigma}")
    if search.strategy == "openai_es":
        if search.population % 2:
            raise ConfigError(f"{_where(sources, 'population')}: openai_es samples antithetic pairs; needs an even population, got {search.population}")
        if not np.isfinite(search.lr) or search.lr <= 0:
            raise ConfigError(f"{_where(sources, 'lr')}: must be > 0, got {search.lr}")
    elif search.fitness_shaping != "auto":
        raise ConfigError(f"{_where(sources, 'fitness_shaping')}: {search.strategy} ranks by itself; "
                          f"{search.fitness_shaping!r} applies to openai_es only; allowed for {search.strategy}: auto")
    if search.strategy == "ga" and search.num_parents > search.population:
        raise ConfigError(f"{_where(sources, 'num_parents')}: must be <= --population ({search.population}), got {search.num_parents}")
    if search.novelty:
        if search.strategy != "ga":
            raise ConfigError(f"{_where(sources, 'novelty')}: novelty search is implemented for the GA; use --strategy ga (got {search.strategy})")
        if search.novelty_k > search.population - 1:
            raise ConfigError(f"{_where(sources, 'novelty_k')}: must be <= population - 1 = {search.population - 1}, got {search.novelty_k}")
        if search.archive_add > min(search.population, search.archive_size):
            raise ConfigError(f"{_where(sources, 'archive_add')}: must be <= population and archive_size "
                              f"({min(search.population, search.archive_size)}), got {search.archive_add}")
    try:
        env = envs.make(exp.env, **exp.env_kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"--env-kwargs: {exp.env} does not accept {exp.env_kwargs}: {e}") from None
    space = env.action_space(env.default_params)
    if not isinstance(space, (Discrete, Box)):
        raise ConfigError(f"--env: {exp.env} has an action space evolution does not support ({type(space).__name__})")


def build(cfg: ResolvedEvolution, behaviour_fn: Callable = final_observation):
    """Environment, agent, runner, seed keys and hparams for a resolved config (no compilation)."""
    exp = cfg.experiment
    env = envs.make(exp.env, **exp.env_kwargs)
    agent = make_evolution(cfg.search, env, exp.generations, exp.eval_episodes, behaviour_fn)
    runner = make_runner(agent, env.default_params, exp.num_chunks)
    keys = jax.random.split(jax.random.PRNGKey(exp.seed), exp.num_seeds)
    return env, agent, runner, keys, evolution_hparams(cfg.search)


def _solution_name(search: EvolutionConfig) -> str:
    if search.strategy != "ga":
        return "search mean"
    return "best individual ever (by return)" if search.novelty else "best individual of the last generation"


@dataclasses.dataclass(frozen=True)
class SearchHooks:
    """What differs between the searches :func:`run_evolution` drives (policy search, meta-training).

    Attributes:
        build: ``cfg -> (env, agent, runner, keys, hparams)`` (nothing compiled).
        solution_name: ``search config -> str``: what the evaluated solution is.
        summary: ``(cfg, final state) -> dict`` of extra ``summary.json`` fields.
        on_chunk: optional ``(run_dir, chunks_done, state, eval_returns [S, E])``, called
            after each chunk when writing (e.g. to save the best objective so far).
        title: ``cfg -> str``, the fitness figure's title.
    """

    build: Callable
    solution_name: Callable
    summary: Callable
    on_chunk: Callable | None = None
    title: Callable = lambda cfg: f"{cfg.search.strategy} on {cfg.experiment.env}"


def policy_search_hooks(behaviour_fn: Callable = final_observation) -> SearchHooks:
    """The hooks of direct policy search (``evolve.py``)."""
    return SearchHooks(
        build=lambda cfg: build(cfg, behaviour_fn),
        solution_name=_solution_name,
        summary=lambda cfg, state: {"episodes": cfg.search.episodes},
    )


def run_evolution(cfg: ResolvedEvolution, write: bool = True, log=print,
                  behaviour_fn: Callable = final_observation, hooks: SearchHooks | None = None) -> EvolutionResult:
    """Runs (or resumes) a search. Raises ConfigError / CheckpointError for bad input before compiling.

    ``hooks`` (default: policy search with ``behaviour_fn``) let meta-training reuse this driver.
    """
    hooks = policy_search_hooks(behaviour_fn) if hooks is None else hooks
    exp, search = cfg.experiment, cfg.search
    checkpoints_wanted = write and bool(exp.checkpoint_every)  # every process takes part in a save
    write = write and is_primary()  # several processes: process 0 writes
    problem = None
    if write:
        try:
            check_out_dir(exp)
        except ConfigError as e:
            problem = e
    refuse_together(problem)
    env, agent, runner, keys, hparams = hooks.build(cfg)
    num_seeds = exp.num_seeds
    num_devices, batch_size = plan_members(exp.devices, num_seeds, 1, exp.seed_batch)
    num_batches = num_seeds // batch_size  # sequential batches of one compiled program
    placement = MemberPlacement.on(num_devices)  # seeds sharded over devices
    init_fn = placement.jit(jax.vmap(runner.init, in_axes=(0, None)), (0, None))
    chunk_fn = placement.jit(jax.vmap(runner.run_chunk, in_axes=(0, None, None)), (0, None, None), donate_argnums=0)

    run_dir = RunDirectory(exp.out_dir)
    checkpointer, state = None, None
    start_chunk, run_seconds = 0, 0.0
    history: dict[str, list] = {"population_returns": [], "eval_returns": []}
    if exp.resume:
        checkpointer = Checkpointer(run_dir.path / "checkpoints", keep=exp.keep_checkpoints, background=True)
        if not checkpointer.steps():
            raise CheckpointError(f"--resume: no checkpoint in {run_dir.path / 'checkpoints'}")
        _, saved, meta = restore_run_state(checkpointer, runner, keys, hparams)
        state, start_chunk, run_seconds = saved["runner"], int(meta["chunks_done"]), float(meta["run_seconds"])
        history = {"population_returns": [saved["history"]["population_returns"]],
                   "eval_returns": list(saved["history"]["eval_returns"])}
        if write:
            run_dir.truncate_metrics(min(start_chunk * runner.chunk_len, exp.generations), key="generation")
    else:
        if write:
            run_dir.prepare()
            run_dir.write_config(cfg.to_dict())
        if checkpoints_wanted:
            checkpointer = Checkpointer(run_dir.path / "checkpoints", keep=exp.keep_checkpoints, background=True)
    if write:
        run_dir.write_json("reproducibility.json", reproducibility_record(list(cfg.command_line)))

    t0 = time.perf_counter()
    hparams = placement.put_replicated(hparams)  # shared by every seed
    if state is None:
        key_batches = [placement.put(k) for k in split_members(keys, num_batches)]
        init_compiled = init_fn.lower(key_batches[0], hparams).compile()
        states = [init_compiled(k, hparams) for k in key_batches]
    else:  # a checkpoint holds every seed in order, whatever the batching it was saved from
        states = [placement.put(s) for s in split_members(state, num_batches)]
    chunk_compiled = chunk_fn.lower(states[0], hparams, np.int32(0)).compile()
    compile_seconds = time.perf_counter() - t0

    steps_per_generation = agent.env_steps_per_update  # per seed
    progress = Progress(exp.generations * steps_per_generation, enabled=not exp.quiet and is_primary())
    nonfinite_seeds: set[int] = set()
    for chunk in range(start_chunk, runner.num_chunks):
        first = chunk * runner.chunk_len
        t = time.perf_counter()
        outputs = [chunk_compiled(s, hparams, np.int32(first)) for s in states]
        states = [s for s, _ in outputs]
        metrics = to_host(join_batches([m for _, m in outputs]))
        seconds = time.perf_counter() - t
        valid = np.asarray(metrics["valid"])[0]
        n_valid = int(valid.sum())
        pop = np.moveaxis(np.asarray(metrics["population_returns"])[:, valid], 1, 0)  # [n, S, N]
        novelty = np.asarray(metrics["novelty_mean"])[:, valid]  # [S, n]
        eval_returns = np.asarray(metrics["eval_returns"])  # [S, E]
        history["population_returns"].append(pop)
        history["eval_returns"].append(eval_returns)
        for s in np.flatnonzero(~np.asarray(metrics["params_finite"])):
            if int(s) not in nonfinite_seeds:
                nonfinite_seeds.add(int(s))
                if is_primary():
                    log(f"non-finite parameters in the solution of seed {int(s)} after generation {first + n_valid}", file=sys.stderr)
        gens_per_second = n_valid / seconds
        rows = []
        for i in range(n_valid):
            g = first + i + 1
            row = {"generation": g, "env_steps": g * steps_per_generation,
                   "return_mean": float(pop[i].mean()), "return_max": float(pop[i].max(-1).mean()),
                   "return_min": float(pop[i].min(-1).mean()), "return_std": float(pop[i].std(-1).mean())}
            if getattr(search, "novelty", False):
                row["novelty_mean"] = float(novelty[:, i].mean())
            if i == n_valid - 1:
                e = eval_returns.mean(-1)
                row.update(eval_return_mean=float(e.mean()), eval_return_std=float(e.std()),
                           generations_per_second=gens_per_second,
                           env_steps_per_second=gens_per_second * steps_per_generation * num_seeds)
            rows.append(row)
        if write:
            run_dir.append_metrics(rows)
        chunks_done = chunk + 1
        done = first + n_valid
        if checkpointer is not None and exp.checkpoint_every and (
            chunks_done % exp.checkpoint_every == 0 or chunks_done == runner.num_chunks
        ):
            checkpointer.save(
                chunks_done,
                {"runner": join_batches(states), "history": {"population_returns": np.concatenate(history["population_returns"]),
                                              "eval_returns": np.stack(history["eval_returns"])}},
                {"chunks_done": chunks_done, "generations_done": done, "run_seconds": run_seconds + time.perf_counter() - t},
            )
        if hooks.on_chunk is not None and (write or not is_primary()):
            host_state = to_host(join_batches(states))  # a collective in a multi-process run: every process gathers
            if write:
                hooks.on_chunk(run_dir, chunks_done, host_state, eval_returns)
        progress.update(done * steps_per_generation, gens_per_second * steps_per_generation * num_seeds,
                        gen=f"{done}/{exp.generations}", best=float(pop[-1].max(-1).mean()), eval=float(eval_returns.mean()))
        run_seconds += time.perf_counter() - t
    progress.close()
    state = join_batches(states)
    if checkpointer is not None:
        checkpointer.wait()

    population_returns = np.concatenate(history["population_returns"])  # [G, S, N]
    eval_all = np.stack(history["eval_returns"])  # [C, S, E]
    eval_generations = np.minimum((np.arange(eval_all.shape[0]) + 1) * runner.chunk_len, exp.generations)
    final = eval_all[-1].mean(-1)  # [S]
    generations = np.arange(population_returns.shape[0]) + 1
    num_params = int(sum(x[0].size for x in jax.tree.leaves(state.agent_state.params)))
    summary = {
        "strategy": search.strategy,
        "env": exp.env,
        "status": "completed",
        "solution": hooks.solution_name(search),
        "final_return_mean": float(final.mean()),
        "final_return_std": float(final.std()),
        "final_returns": [float(x) for x in final],
        "best_population_return": [float(x) for x in population_returns.max(axis=(0, 2))],
        "generations_per_second": exp.generations / run_seconds if run_seconds > 0 else float("nan"),
        "env_steps_per_second": exp.generations * steps_per_generation * num_seeds / run_seconds if run_seconds > 0 else float("nan"),
        "compile_seconds": compile_seconds,
        "run_seconds": run_seconds,
        "generations": exp.generations,
        "population": search.population,
        "env_steps_per_generation": steps_per_generation,
        "total_env_steps": exp.generations * steps_per_generation * num_seeds,
        "num_params": num_params,
        "num_seeds": num_seeds,
        "eval_episodes": exp.eval_episodes,
        "backend": jax.default_backend(),
    }
    summary.update(hooks.summary(cfg, state))
    if nonfinite_seeds:
        summary["nonfinite_seeds"] = sorted(nonfinite_seeds)
    if write:
        run_dir.write_summary(summary)
        run_dir.write_arrays("curves.npz", generation=generations, population_returns=population_returns,
                             eval_generations=eval_generations, eval_returns=eval_all)
        plot_fitness_curves(run_dir.path / "fitness_curve.png", generations, population_returns, eval_generations,
                            eval_all.mean(-1), hooks.title(cfg))
    if checkpointer is not None:
        checkpointer.close()
    return EvolutionResult(summary, state, population_returns, eval_all, eval_generations, agent)


def evolve(behaviour_fn: Callable = final_observation, **options) -> EvolutionResult:
    """Notebook entry: ``evolve(strategy="openai_es", env="CartPole-v1", generations=50, out_dir="runs/x")``.

    Options are the CLI's option names with underscores. Nothing is written
    unless ``out_dir`` is given. ``behaviour_fn`` (``final_obs -> [B]``) sets
    novelty search's behaviour characterisation.
    """
    write = bool(options.get("out_dir"))
    argv = options_to_argv(options)
    if not write:
        argv += ["--checkpoint-every", "0"]
    return run_evolution(resolve(argv, prog="jaxrl.evolution.evolve"), write=write, behaviour_fn=behaviour_fn)


def resolve_resume(argv: list[str], prog: str, resolve_fn: Callable | None = None) -> ResolvedEvolution:
    """``--resume RUN_DIR`` (plus optionally ``--quiet``): the run's saved config, pointed at RUN_DIR."""
    args = [a for a in argv if a not in ("--quiet", "--no-quiet")]
    if len(args) != 2 or args[0] != "--resume":
        raise ConfigError("--resume: takes the run's saved config; give only --resume RUN_DIR (and optionally --quiet)")
    run = Path(args[1])
    if not (run / "config.yaml").is_file():
        raise ConfigError(f"--resume: {args[1]!r} is not a run directory (no config.yaml)")
    if not (run / "checkpoints").is_dir() or not Checkpointer(run / "checkpoints").steps():
        raise ConfigError(f"--resume: {args[1]!r} has no committed checkpoint to resume from")
    extra = [a for a in argv if a in ("--quiet", "--no-quiet")]
    resolve_fn = resolve if resolve_fn is None else resolve_fn
    return resolve_fn(["--config", str(run / "config.yaml"), "--out-dir", str(run), "--resume", str(run), *extra], prog=prog)


def load_evolution_run(run_dir, num_eval_episodes: int | None = None):
    """Rebuilds an evolution run for :func:`jaxrl.io.load_run` (newest intact checkpoint)."""
    from jaxrl.io.policy import LoadedRun

    run = Path(run_dir)
    argv = ["--config", str(run / "config.yaml"), "--out-dir", str(run), "--quiet"]
    if num_eval_episodes is not None:
        argv += ["--eval-episodes", str(num_eval_episodes)]
    cfg = resolve(argv)
    env, agent, runner, keys, hparams = build(cfg)
    checkpointer = Checkpointer(run / "checkpoints", keep=cfg.experiment.keep_checkpoints)
    step, saved, _ = restore_run_state(checkpointer, runner, keys, hparams)
    state = jax.device_put(saved["runner"])
    return LoadedRun(cfg, env, agent, runner, [{}], hparams, state, step)


def main(argv: list[str] | None = None, prog: str = "evolve.py", resolve_fn: Callable | None = None,
         hooks: SearchHooks | None = None) -> int:
    """``evolve.py`` (and, with its ``resolve_fn`` and ``hooks``, ``meta_train.py``).

    Joins a multi-process run first when its flags or launcher say so.
    """
    argv = sys.argv[1:] if argv is None else argv
    return distributed_main(lambda rest: _main(rest, prog, resolve_fn, hooks), argv, prog)


def _main(argv: list[str], prog: str, resolve_fn: Callable | None, hooks: SearchHooks | None) -> int:
    resolve_fn = resolve if resolve_fn is None else resolve_fn
    try:
        resuming = any(a == "--resume" or a.startswith("--resume=") for a in argv)
        cfg = resolve_resume(argv, prog, resolve_fn) if resuming else resolve_fn(argv, prog=prog)
        result = run_evolution(cfg, hooks=hooks)
    except (ConfigError, CheckpointError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    s = result.summary
    print(
        f"final return {s['final_return_mean']:.1f} (per seed: {', '.join(f'{x:.1f}' for x in s['final_returns'])}) | "
        f"{s['generations_per_second']:.2f} generations/s | {s['env_steps_per_second']:,.0f} env steps/s | "
        f"compile {s['compile_seconds']:.1f}s | run dir {cfg.experiment.out_dir}"
    )
    return 0
