"""The meta-training program: a policy objective (LPO, TA-LPO) meta-learned by evolution over whole PPO runs.

``python experiments/meta_train.py --objective lpo --env CartPole-v1 --population 64 --generations 300``;
``from jaxrl import meta_train``. The fitness of a candidate objective is the
final return of complete inner PPO runs; a generation (population x seeds of
full trainings) is one update of the shared loop (:mod:`jaxrl.objectives.meta`).
What it writes beside the driver's outputs: ``best/`` (the search mean with the
highest evaluation so far) and ``final/``, saved objectives that
``train.py --objective DIR`` reads.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax
import numpy as np

from jaxrl.config import ConfigError, option
from jaxrl.evaluation.scores import load_score_table
from jaxrl.evolution.strategies import evolution_hparams
from jaxrl.objectives import DRIFT_INITS, LEARNED_OBJECTIVES, make_objective, save_objective
from jaxrl.objectives.inspect import write_drift_figure
from jaxrl.parallel import join_batches, to_host
from jaxrl.programs import train as training
from jaxrl.programs.driver import Built, checked_env, entries, program_from_module, resolve as resolve_program
from jaxrl.programs import evolve
from jaxrl.programs.evolve import (SearchProblem, check_strategy, curves, eval_fields, fitness_figure,  # noqa: F401
                                   progress_fields, report, search_summary)  # hooks shared with evolve
from jaxrl.training.loop import make_runner
from jaxrl.objectives.meta import MetaConfig, make_meta_training
from jaxrl.agents.lpg import RULES, LPGAgentConfig, make_rule
from jaxrl.envs.levels.gridworld import render_level
from jaxrl.io.images import save_buffer_levels
from jaxrl.objectives.lpg_meta import (BUFFER_CURRICULA, GridLevelsConfig, RuleSearchConfig, lpg_meta_hparams, make_baseline,
                                       make_lpg_meta_training, random_policy_returns, rule_spec_check)

BEST_DIR, FINAL_DIR = "best", "final"


@dataclasses.dataclass(frozen=True)
class MetaTrainConfig(MetaConfig):
    """Options of a meta-training run: the outer search's (:class:`MetaConfig`), the objective's
    and the inner runs' (all static: they fix the compiled program)."""

    objective: str = option("lpo", "objective (lpo, ta_lpo: PPO's drift) or update rule (lpg, ta_lpg) to meta-learn",
                            choices=LEARNED_OBJECTIVES + RULES)
    levels: str = option("", "meta-training levels of an update rule (lpg, ta_lpg): gridworld", choices=("", "gridworld"))
    rule_hidden: int = option(256, "units of the update rule's backward GRU (lpg, ta_lpg)", minimum=1)
    rule_embed: int = option(16, "width of the update rule's prediction embedding (lpg, ta_lpg)", minimum=1)
    drift_hidden: int = option(128, "hidden units of the drift network", minimum=1)
    drift_init: str = option("ppo", "initial ES mean: the drift fitted to PPO-clip's, or a random network", choices=DRIFT_INITS)
    ta_log_horizon: bool = option(False, "ta_lpo also sees log(number of updates) (off when meta-training at one horizon)")
    inner_config: str = option("", "PPO preset (YAML) of the inner runs; empty: train.py's PPO defaults")
    inner_timesteps: int = option(100_000, "environment steps of every inner PPO run (the longest, with "
                                           "--inner-timesteps-min)", minimum=1)
    inner_timesteps_min: int = option(0, "shortest inner run: horizons drawn log-uniformly between it and "
                                         "--inner-timesteps per inner seed, the objective seeing each (0: all equal)",
                                      minimum=0)
    inner_eval_episodes: int = option(16, "evaluation episodes at the end of every inner run (its fitness)", minimum=1)
    normalize_fitness: bool = option(False, "fitness (return - random) / (reference - random) with the evaluation score table")


def inner_training_config(problem: SearchProblem, search: MetaTrainConfig, objective: str | None = None):
    """The inner PPO run's resolved training config (validated like ``train.py``'s flags)."""
    argv = ["--algo", "ppo", "--env", problem.env, "--total-timesteps", str(search.inner_timesteps),
            "--objective", objective or search.objective, "--drift-hidden", str(search.drift_hidden),
            "--drift-init", search.drift_init, "--eval-episodes", str(search.inner_eval_episodes), "--quiet"]
    argv += ["--ta-log-horizon"] if search.ta_log_horizon else []
    if problem.env_kwargs:
        argv += ["--env-kwargs", ",".join(f"{k}={v}" for k, v in problem.env_kwargs.items())]
    if search.inner_config:
        argv = ["--config", search.inner_config, *argv]
    return resolve_program(training.PROGRAM, argv, prog="meta_train.py")


def is_rule(cfg) -> bool:
    """Whether the run meta-learns an LPG update rule (over grid-world levels) rather than a PPO objective."""
    return cfg.search.objective in RULES


def check_rule(cfg) -> None:
    search = cfg.search
    if search.levels != "gridworld":
        raise ConfigError(f"{cfg.where('objective')}: {search.objective} meta-trains over grid-world levels; "
                          "add --levels gridworld")
    if cfg.rule_search.meta_method == "meta_gradient":
        if cfg.rule_search.inner_updates > cfg.grid.lifetime_max:
            raise ConfigError(f"{cfg.where('inner_updates')}: {cfg.rule_search.inner_updates} agent updates per "
                              f"meta-gradient step exceed the lifetime ({cfg.grid.lifetime_max}, --lifetime-max)")
    elif search.strategy != "openai_es":
        raise ConfigError(f"{cfg.where('strategy')}: an update rule is meta-trained with antithetic pairs; allowed: openai_es")
    elif search.population % 2:
        raise ConfigError(f"{cfg.where('population')}: antithetic pairs need an even population, got {search.population}")
    if search.inner_timesteps_min:
        raise ConfigError(f"{cfg.where('inner_timesteps_min')}: an update rule's agents draw their lifetimes "
                          "(--lifetime-min, --lifetime-max), not inner PPO horizons")
    problem = rule_spec_check(cfg.grid)
    if problem:
        raise ConfigError(problem)


def check(cfg) -> None:
    """Cross-option checks before anything compiles (messages name the flag)."""
    problem, search = cfg.problem, cfg.search
    if is_rule(cfg):
        return check_rule(cfg)
    if search.levels:
        raise ConfigError(f"{cfg.where('levels')}: levels are for update rules (--objective lpg or ta_lpg); "
                          f"{search.objective} meta-trains on --env")
    checked_env(problem.env, problem.env_kwargs)
    check_strategy(cfg, search)
    if search.inner_timesteps_min > search.inner_timesteps:
        raise ConfigError(f"{cfg.where('inner_timesteps_min')}: {search.inner_timesteps_min} exceeds --inner-timesteps "
                          f"({search.inner_timesteps})")
    if search.inner_config and not Path(search.inner_config).is_file():
        raise ConfigError(f"{cfg.where('inner_config')}: {search.inner_config!r} is not a file")
    try:
        inner = inner_training_config(problem, search)
    except ConfigError as e:  # name the meta_train.py flags that set the inner run's
        message = str(e).replace("--total-timesteps", "--inner-timesteps").replace("--eval-episodes", "--inner-eval-episodes")
        raise ConfigError(f"inner PPO run: {message}") from None
    if inner.run.sweep:
        raise ConfigError(f"{cfg.where('inner_config')}: the inner PPO preset may not hold a sweep")
    if search.normalize_fitness and problem.env not in load_score_table():
        raise ConfigError(f"{cfg.where('normalize_fitness')}: no random/reference score for {problem.env} in the score "
                          "table; pass --no-normalize-fitness")


def fitness_transform(env_name: str, normalize: bool):
    """``returns -> fitness``: identity, or normalisation by the score table's random and reference returns."""
    if not normalize:
        return lambda r: r
    ref = load_score_table()[env_name]
    return lambda r: (r - ref.random) / (ref.reference - ref.random)


def build_rule(cfg) -> Built:
    """An LPG / TA-LPG rule meta-trained over grid-world levels (:mod:`jaxrl.objectives.lpg_meta`)."""
    search, levels = cfg.search, cfg.grid
    rule = make_rule(search.objective, search.rule_hidden, search.rule_embed, cfg.lpg_agent.y_dim)
    baseline, baseline_hp = make_baseline(levels, cfg.lpg_agent) if levels.curriculum == "groove" else (None, None)
    agent, env = make_lpg_meta_training(search, levels, cfg.lpg_agent, rule, baseline, baseline_hp, cfg.problem.generations,
                                        method=cfg.rule_search)
    return Built(env, make_runner(agent, env.default_params, cfg.run.num_chunks), lpg_meta_hparams(search, levels),
                 {"rule": rule, "best": {"value": _saved_best(cfg)}})


def horizon_range(search: MetaTrainConfig, inner_cfg) -> tuple[int, int] | None:
    """``(shortest, longest)`` inner horizons in PPO updates, or None for one horizon."""
    if not search.inner_timesteps_min:
        return None
    per_update = inner_cfg.algo.num_envs * inner_cfg.algo.rollout_len
    return max(1, search.inner_timesteps_min // per_update), max(1, search.inner_timesteps // per_update)


def build(cfg) -> Built:
    """Environment, meta-search agent on the shared runner, and the outer search's hyperparameters."""
    if is_rule(cfg):
        return build_rule(cfg)
    problem, search = cfg.problem, cfg.search
    inner_cfg = inner_training_config(problem, search)
    inner = training.build(inner_cfg)
    base_hparams = inner.hparams  # one inner member: no sweep
    agent = make_meta_training(search, inner.agent, inner.env.default_params, base_hparams, base_hparams.objective_params,
                               problem.generations, cfg.run.eval_episodes, fitness_transform(problem.env, search.normalize_fitness),
                               horizon_range(search, inner_cfg))
    return Built(inner.env, make_runner(agent, inner.env.default_params, cfg.run.num_chunks), evolution_hparams(search),
                 {"inner_updates": max(1, search.inner_timesteps // (inner_cfg.algo.num_envs * inner_cfg.algo.rollout_len)),
                  "best": {"value": _saved_best(cfg)}})


def _saved_best(cfg) -> float:
    """The evaluation fitness of the saved ``best/`` objective of a resumed run (-inf for a new run)."""
    saved = Path(cfg.run.out_dir) / BEST_DIR / "objective.json"
    if cfg.run.resume and saved.is_file():  # a resumed run keeps competing with its saved best
        return float(json.loads(saved.read_text())["info"].get("eval_fitness", -np.inf))
    return -np.inf


def _seed0(state):
    return jax.tree.map(lambda x: np.asarray(x[0]), jax.device_get(state.agent_state.params))


def on_chunk(ctx, chunks_done: int, states, eval_returns, checkpointed: bool) -> None:
    """Saves outer seed 0's search mean as ``final/`` and, when its evaluation is the best so far, as ``best/``."""
    host = to_host(join_batches(states))  # a collective in a multi-process run: every process gathers
    if ctx.run_dir is None:
        return
    search = ctx.cfg.search
    score = float(np.asarray(eval_returns)[0].mean())
    if is_rule(ctx.cfg):
        objective = ctx.built.extra["rule"]
        info = {"levels": search.levels, "curriculum": ctx.cfg.grid.curriculum, "chunk": chunks_done,
                "meta_method": ctx.cfg.rule_search.meta_method,
                "eval_fitness": score, "agent": dataclasses.asdict(ctx.cfg.lpg_agent), "levels_config": dataclasses.asdict(ctx.cfg.grid)}
    else:
        objective = make_objective(search.objective, search.drift_hidden, "random", search.ta_log_horizon)
        info = {"env": ctx.cfg.problem.env, "inner_timesteps": search.inner_timesteps,
                "inner_timesteps_min": search.inner_timesteps_min, "chunk": chunks_done,
                "eval_fitness": score, "normalised": search.normalize_fitness}
    save_objective(ctx.run_dir.path / FINAL_DIR, objective, _seed0(host), info)
    if is_rule(ctx.cfg) and checkpointed and ctx.cfg.grid.curriculum in BUFFER_CURRICULA:  # what the curriculum holds
        (ctx.run_dir.path / "buffer_levels").mkdir(exist_ok=True)
        save_buffer_levels(ctx.run_dir.path / "buffer_levels" / f"chunk_{chunks_done:03d}.png",
                           host.agent_state.curriculum.buffer, render_level, f"{ctx.cfg.grid.curriculum}, chunk {chunks_done}: ")
    best = ctx.built.extra["best"]
    if score > best["value"]:
        best["value"] = score
        save_objective(ctx.run_dir.path / BEST_DIR, objective, _seed0(host), info)
        if not is_rule(ctx.cfg):
            write_drift_figure(ctx.run_dir.path / BEST_DIR / "drift.png", objective, _seed0(host),
                               f"{search.objective} meta-trained on {ctx.cfg.problem.env}, chunk {chunks_done}",
                               num_updates=ctx.built.extra["inner_updates"])


RULE_METRICS = ("level_score_mean", "replayed", "meta_loss")


def update_fields(ctx, metrics: dict) -> dict:
    """Evolution's fitness statistics, and for an update rule the curriculum's level scores, whether the
    generation replayed buffer levels, and the meta-gradient's loss (means over outer seeds)."""
    row = evolve.update_fields(ctx, metrics)
    if is_rule(ctx.cfg):
        row.update({k: float(np.mean(metrics[k])) for k in RULE_METRICS if k in metrics})
    return row


def rule_summary(ctx) -> dict:
    """What a rule's run adds: its levels, and the held-out return of untrained agents (the floor to beat)."""
    levels = ctx.cfg.grid
    floor = random_policy_returns(levels, ctx.cfg.lpg_agent, ctx.built.extra["rule"], 2, jax.random.PRNGKey(ctx.cfg.run.seed))
    method = ctx.cfg.rule_search.meta_method
    return {"env": f"GridWorld ({levels.grid_size} x {levels.grid_size}, {levels.max_objects} objects)",
            "strategy": "openai_es" if method == "es" else "adam",
            "levels": ctx.cfg.search.levels, "curriculum": levels.curriculum, "meta_method": method,
            "lifetime": [levels.lifetime_min, levels.lifetime_max],
            "untrained_agent_return_mean": float(np.mean(np.asarray(floor))),
            "solution": f"{'ES mean' if method == 'es' else 'meta-gradient'} update rule: return of fresh agents it "
                        "trains on held-out grid worlds"}


def summary(ctx, history: dict, state) -> dict:
    search = ctx.cfg.search
    best_path = Path(ctx.cfg.run.out_dir) / BEST_DIR / "objective.json"
    best_info = json.loads(best_path.read_text())["info"] if best_path.is_file() else {}
    if is_rule(ctx.cfg):
        return {**search_summary(ctx, history, state), "objective": search.objective, **rule_summary(ctx),
                "best_objective": BEST_DIR, "best_eval_fitness": best_info.get("eval_fitness")}
    return {**search_summary(ctx, history, state), "objective": search.objective,
            "solution": "ES mean objective: fitness of fresh inner PPO runs trained with it",
            "inner_timesteps": search.inner_timesteps, "inner_timesteps_min": search.inner_timesteps_min,
            "seeds_per_member": search.seeds_per_member,
            "fitness": "normalised return" if search.normalize_fitness else "return", "best_objective": BEST_DIR,
            "best_eval_fitness": best_info.get("eval_fitness")}


def groups(raw: dict):
    base = (("problem", "problem", SearchProblem), ("search", "search", MetaTrainConfig))
    if str(raw.get("objective", "")) in RULES:  # an update rule's levels and inner agent
        return base + (("rule_search", "update-rule meta-training", RuleSearchConfig),
                       ("grid", "grid-world levels", GridLevelsConfig), ("lpg_agent", "inner LPG agent", LPGAgentConfig))
    return base


def default_out_dir(cfg) -> str:
    if is_rule(cfg):
        return f"runs/meta_{cfg.search.objective}_{cfg.search.levels}_{cfg.grid.curriculum}"
    return f"runs/meta_{cfg.search.objective}_{cfg.problem.env.replace('/', '_')}"


figures = fitness_figure(lambda c: (f"meta-training {c.search.objective} on {c.search.levels} ({c.grid.curriculum}; fitness = "
                                    "return of the agents it trains)") if c.search.objective in RULES else
                         f"meta-training {c.search.objective} on {c.problem.env} (fitness = inner PPO return)")
PROGRAM = program_from_module(
    __name__, name="meta_train",
    description="Meta-learn a policy objective with evolution strategies; fitness is the final return of whole PPO "
                "runs, a generation is one compiled program.",
    step_name="generation", curve_metrics=("population_returns",), guard_metrics=(),
    no_policy="a meta-training run saves an objective, not a policy: train with it (train.py --objective RUN/best)")
meta_train, resolve, run, main = entries(PROGRAM)
