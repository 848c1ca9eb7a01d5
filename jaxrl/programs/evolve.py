"""The evolution program: direct policy search (OpenAI-ES, SNES, CMA-ES, GA, novelty search), seeds in one program.

``python experiments/evolve.py --strategy openai_es --env CartPole-v1 --population 256``;
``from jaxrl import evolve``. A generation is one update of the shared loop
(:mod:`jaxrl.evolution.search`); the step sizes (``sigma``, ``lr``) are traced,
so ``--sweep sigma=0.03,0.1`` is one compiled program.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from jaxrl.config import ConfigError, option
from jaxrl.envs import Box, Discrete
from jaxrl.evolution.fitness import final_observation
from jaxrl.evolution.search import EvolutionConfig, make_evolution
from jaxrl.evolution.strategies import evolution_hparams
from jaxrl.io.plots import plot_fitness_curves
from jaxrl.programs.driver import Built, checked_env, entries, program_from_module, python_entry
from jaxrl.training.loop import make_runner


@dataclasses.dataclass(frozen=True)
class SearchProblem:
    """Where the search runs and for how long (shared by policy search and meta-training)."""

    env: str = option("CartPole-v1", "environment name (gymnax id, brax/<name>, DeceptiveMaze-v0 ...)")
    env_kwargs: dict = option({}, "keyword arguments for the environment, e.g. backend=spring")
    generations: int = option(200, "generations per seed", minimum=1)


def check_strategy(cfg, search) -> None:
    """Checks of a search's strategy options shared by policy search and meta-training."""
    if search.strategy == "openai_es" and search.population % 2:
        raise ConfigError(f"{cfg.where('population')}: openai_es samples antithetic pairs; needs an even population, "
                          f"got {search.population}")
    if search.strategy != "openai_es" and search.fitness_shaping != "auto":
        raise ConfigError(f"{cfg.where('fitness_shaping')}: {search.strategy} ranks by itself; {search.fitness_shaping!r} "
                          f"applies to openai_es only; allowed for {search.strategy}: auto")


def check(cfg) -> None:
    """Cross-option checks, before anything compiles."""
    problem, search = cfg.problem, cfg.search
    check_strategy(cfg, search)
    if search.strategy == "ga" and search.num_parents > search.population:
        raise ConfigError(f"{cfg.where('num_parents')}: must be <= --population ({search.population}), got {search.num_parents}")
    if search.novelty:
        if search.strategy != "ga":
            raise ConfigError(f"{cfg.where('novelty')}: novelty search is implemented for the GA; use --strategy ga "
                              f"(got {search.strategy})")
        if search.novelty_k > search.population - 1:
            raise ConfigError(f"{cfg.where('novelty_k')}: must be <= population - 1 = {search.population - 1}, "
                              f"got {search.novelty_k}")
        if search.archive_add > min(search.population, search.archive_size):
            raise ConfigError(f"{cfg.where('archive_add')}: must be <= population and archive_size "
                              f"({min(search.population, search.archive_size)}), got {search.archive_add}")
    env = checked_env(problem.env, problem.env_kwargs)
    space = env.action_space(env.default_params)
    if not isinstance(space, (Discrete, Box)):
        raise ConfigError(f"--env: {problem.env} has an action space evolution does not support ({type(space).__name__})")


def make_build(behaviour_fn: Callable = final_observation) -> Callable:
    """The builder of direct policy search; ``behaviour_fn`` (``final_obs -> [B]``) characterises behaviour for novelty."""

    def build(cfg) -> Built:
        problem = cfg.problem
        env = checked_env(problem.env, problem.env_kwargs)
        agent = make_evolution(cfg.search, env, problem.generations, cfg.run.eval_episodes, behaviour_fn)
        return Built(env, make_runner(agent, env.default_params, cfg.run.num_chunks), evolution_hparams(cfg.search))

    return build


def update_fields(ctx, metrics: dict) -> dict:
    """Fitness statistics of one generation: mean, and per-seed max / min / std averaged over seeds."""
    pop = metrics["population_returns"]  # [S, N]
    row = {"return_mean": float(pop.mean()), "return_max": float(pop.max(-1).mean()),
           "return_min": float(pop.min(-1).mean()), "return_std": float(pop.std(-1).mean())}
    if "novelty_mean" in metrics and getattr(ctx.cfg.search, "novelty", False):
        row["novelty_mean"] = float(metrics["novelty_mean"].mean())
    return row


def eval_fields(ctx, eval_returns) -> dict:
    e = eval_returns.reshape(eval_returns.shape[0], -1).mean(-1)  # [S]
    return dict(eval_return_mean=float(e.mean()), eval_return_std=float(e.std()))


def progress_fields(ctx, last: dict, eval_returns) -> dict:
    best = float(np.asarray(last["population_returns"]).max(-1).mean()) if "population_returns" in last else float("nan")
    return {"best": best, "eval": float(np.mean(eval_returns))}


def curves(ctx, history: dict) -> dict:
    """``generation [N]``, ``population_returns [N, G, S, P]``, ``eval_generations [C]``, ``eval_returns [C, G, S, E]``."""
    pop, eval_returns = history["population_returns"], history["eval_returns"]
    return dict(generation=np.arange(pop.shape[0]) + 1, population_returns=pop,
                eval_generations=ctx.evaluated_updates(eval_returns.shape[0]), eval_returns=eval_returns)


def search_summary(ctx, history: dict, state) -> dict:
    """Fields every search writes: fitness, budget and size."""
    import jax

    problem, search = ctx.cfg.problem, ctx.cfg.search
    pop = history["population_returns"]  # [N, G, S, P]
    num_params = int(sum(x[0].size for x in jax.tree.leaves(state.agent_state.params)))
    return {"strategy": search.strategy, "env": problem.env,
            "best_population_return": [float(x) for x in pop.max(axis=(0, 3)).reshape(-1)],
            "generations": problem.generations, "population": search.population,
            "env_steps_per_generation": ctx.steps_per_update, "num_params": num_params}


def fitness_figure(title: Callable) -> Callable:
    def figures(ctx, curves: dict) -> None:
        pop = curves["population_returns"]  # [N, G, S, P]: grid points drawn as more seeds
        plot_fitness_curves(ctx.run_dir.path / "fitness_curve.png", curves["generation"],
                            pop.reshape(pop.shape[0], -1, pop.shape[-1]), curves["eval_generations"],
                            curves["eval_returns"].reshape(*curves["eval_returns"].shape[:1], -1,
                                                           curves["eval_returns"].shape[-1]).mean(-1), title(ctx.cfg))
    return figures


def report(s: dict, cfg) -> str:
    return (f"final return {s['final_return_mean']:.1f} (per seed: {', '.join(f'{x:.1f}' for x in s['final_returns'])}) | "
            f"{s['generations_per_second']:.2f} generations/s | {s['env_steps_per_second']:,.0f} env steps/s | "
            f"compile {s['compile_seconds']:.1f}s{' (cache)' if s.get('compile_from_cache') else ''} | run dir {cfg.run.out_dir}")


def _solution_name(search: EvolutionConfig) -> str:
    if search.strategy != "ga":
        return "search mean"
    return "best individual ever (by return)" if search.novelty else "best individual of the last generation"


def summary(ctx, history: dict, state) -> dict:
    return {**search_summary(ctx, history, state), "solution": _solution_name(ctx.cfg.search),
            "episodes": ctx.cfg.search.episodes}


def groups(raw: dict):
    return (("problem", "problem", SearchProblem), ("search", "search", EvolutionConfig))


def default_out_dir(cfg) -> str:
    return f"runs/evolve_{cfg.search.strategy}_{cfg.problem.env.replace('/', '_')}"


build = make_build()
figures = fitness_figure(lambda cfg: f"{cfg.search.strategy} on {cfg.problem.env}")
PROGRAM = program_from_module(
    __name__, name="evolve", description="Evolve policies: the whole generation loop in one compiled program.",
    step_name="generation", curve_metrics=("population_returns",),
    guard_metrics=())  # an individual's fitness may be anything; the guard watches the solution's parameters
_evolve, resolve, run, main = entries(PROGRAM)


def evolve(behaviour_fn: Callable = final_observation, **options):
    """Python entry: ``evolve(strategy="openai_es", env="CartPole-v1", generations=50, out_dir="runs/x")``.

    Options are the CLI's names with underscores; nothing is written unless ``out_dir`` is given.
    ``behaviour_fn`` (``final_obs -> [B]``) sets novelty search's behaviour characterisation.
    """
    if behaviour_fn is final_observation:
        return _evolve(**options)
    return python_entry(dataclasses.replace(PROGRAM, build=make_build(behaviour_fn)))(**options)
