"""Host side of ``experiments/meta_train.py``: options, checks and artifacts of meta-training.

The generation loop, chunking, checkpoints, resume, progress, metrics and
figures are those of the evolution driver (:func:`jaxrl.evolution.experiment.run_evolution`);
this module supplies the meta-search (:mod:`jaxrl.training.meta`) and what it writes:
``best/`` (the search mean with the highest evaluation so far) and ``final/``, both
saved objectives that ``train.py --objective DIR`` reads.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax
import numpy as np

from jaxrl import envs
from jaxrl.cli import ConfigError
from jaxrl.cli import resolve as resolve_training
from jaxrl.config import option
from jaxrl.evaluation.scores import load_score_table
from jaxrl.evolution import experiment as search_driver
from jaxrl.evolution.strategies import evolution_hparams
from jaxrl.objectives import DRIFT_INITS, LEARNED_OBJECTIVES, save_objective
from jaxrl.objectives.inspect import write_drift_figure
from jaxrl.training.loop import make_runner
from jaxrl.training.meta import MetaConfig, make_meta_training

BEST_DIR, FINAL_DIR = "best", "final"


@dataclasses.dataclass(frozen=True)
class MetaTrainConfig(MetaConfig):
    """Options of a meta-training run: the outer search's (:class:`MetaConfig`), the objective's
    and the inner runs' (all static: they fix the compiled program)."""

    objective: str = option("lpo", "objective to meta-learn", choices=LEARNED_OBJECTIVES)
    drift_hidden: int = option(128, "hidden units of the drift network", minimum=1)
    drift_init: str = option("ppo", "initial ES mean: the drift fitted to PPO-clip's, or a random network", choices=DRIFT_INITS)
    ta_log_horizon: bool = option(False, "ta_lpo also sees log(number of updates) (off when meta-training at one horizon)")
    inner_config: str = option("", "PPO preset (YAML) of the inner runs; empty: train.py's PPO defaults")
    inner_timesteps: int = option(100_000, "environment steps of every inner PPO run", minimum=1)
    inner_eval_episodes: int = option(16, "evaluation episodes at the end of every inner run (its fitness)", minimum=1)
    normalize_fitness: bool = option(False, "fitness (return - random) / (reference - random) with the evaluation score table")


def inner_training_config(exp, search: MetaTrainConfig, objective=None):
    """The inner PPO run's resolved config (validated like ``train.py``'s flags)."""
    argv = ["--algo", "ppo", "--env", exp.env, "--total-timesteps", str(search.inner_timesteps),
            "--objective", objective or search.objective, "--drift-hidden", str(search.drift_hidden),
            "--drift-init", search.drift_init, "--eval-episodes", str(search.inner_eval_episodes), "--quiet"]
    argv += ["--ta-log-horizon"] if search.ta_log_horizon else []
    if exp.env_kwargs:
        argv += ["--env-kwargs", ",".join(f"{k}={v}" for k, v in exp.env_kwargs.items())]
    if search.inner_config:
        argv = ["--config", search.inner_config, *argv]
    return resolve_training(argv, prog="meta_train.py")


def _default_out_dir(exp, search: MetaTrainConfig) -> str:
    return f"runs/meta_{search.objective}_{exp.env.replace('/', '_')}"


def _check(exp, search: MetaTrainConfig, sources: dict) -> None:
    """Cross-option checks before anything compiles (messages name the flag)."""
    where = lambda name: sources.get(name, "--" + name.replace("_", "-"))  # noqa: E731
    if exp.env not in envs.registered_envs():
        raise ConfigError(f"--env: {envs.registry.unknown_env_message(exp.env)}")
    if not np.isfinite(search.sigma) or search.sigma <= 0:
        raise ConfigError(f"{where('sigma')}: must be > 0, got {search.sigma}")
    if search.strategy == "openai_es" and search.population % 2:
        raise ConfigError(f"{where('population')}: openai_es samples antithetic pairs; needs an even population, got {search.population}")
    if search.strategy != "openai_es" and search.fitness_shaping != "auto":
        raise ConfigError(f"{where('fitness_shaping')}: applies to openai_es only; allowed for {search.strategy}: auto")
    if search.inner_config and not Path(search.inner_config).is_file():
        raise ConfigError(f"{where('inner_config')}: {search.inner_config!r} is not a file")
    try:
        inner = inner_training_config(exp, search)
    except ConfigError as e:  # name the meta_train.py flags that set the inner run's
        message = str(e).replace("--total-timesteps", "--inner-timesteps").replace("--eval-episodes", "--inner-eval-episodes")
        raise ConfigError(f"inner PPO run: {message}") from None
    if inner.experiment.sweep:
        raise ConfigError(f"{where('inner_config')}: the inner PPO preset may not hold a sweep")
    if search.normalize_fitness and exp.env not in load_score_table():
        raise ConfigError(f"{where('normalize_fitness')}: no random/reference score for {exp.env} in the score table; "
                          "pass --no-normalize-fitness")


def resolve(argv: list[str], prog: str = "meta_train.py"):
    """Flags -> validated meta-training config (``experiment``: run options, ``search``: :class:`MetaTrainConfig`)."""
    return search_driver.resolve(argv, prog, search_cls=MetaTrainConfig, check=_check, default_out_dir=_default_out_dir,
                                 description="Meta-learn a policy objective with evolution strategies; fitness is the "
                                 "final return of whole PPO runs, a generation is one compiled program.")


def fitness_transform(env_name: str, normalize: bool):
    """``returns -> fitness``: identity, or normalisation by the score table's random and reference returns."""
    if not normalize:
        return lambda r: r
    ref = load_score_table()[env_name]
    return lambda r: (r - ref.random) / (ref.reference - ref.random)


def build(cfg):
    """Environment, meta-search agent, runner, outer seed keys and hparams (nothing compiled)."""
    from jaxrl.experiment import build as build_training

    exp, search = cfg.experiment, cfg.search
    inner_cfg = inner_training_config(exp, search)
    env, inner_agent, _, _, _, member_hparams = build_training(inner_cfg)
    base_hparams = jax.tree.map(lambda x: x[0], member_hparams)  # one member: no sweep, any seed
    agent = make_meta_training(search, inner_agent, env.default_params, base_hparams, base_hparams.objective_params,
                               exp.generations, exp.eval_episodes, fitness_transform(exp.env, search.normalize_fitness))
    runner = make_runner(agent, env.default_params, exp.num_chunks)
    keys = jax.random.split(jax.random.PRNGKey(exp.seed), exp.num_seeds)
    return env, agent, runner, keys, evolution_hparams(search)


def _objective(search: MetaTrainConfig):
    from jaxrl.objectives import make_objective

    return make_objective(search.objective, search.drift_hidden, "random", search.ta_log_horizon)


def make_hooks(cfg) -> search_driver.SearchHooks:
    """Artifacts of a meta-training run: ``best/`` and ``final/`` objectives of outer seed 0."""
    search = cfg.search
    objective = _objective(search)
    best = {"value": -np.inf}
    saved_best = Path(cfg.experiment.out_dir) / BEST_DIR / "objective.json"
    if cfg.experiment.resume and saved_best.is_file():  # a resumed run keeps competing with its saved best
        best["value"] = float(json.loads(saved_best.read_text())["info"].get("eval_fitness", -np.inf))
    inner = inner_training_config(cfg.experiment, search).algo
    inner_updates = max(1, search.inner_timesteps // (inner.num_envs * inner.rollout_len))

    def seed0(state):
        return jax.tree.map(lambda x: np.asarray(x[0]), jax.device_get(state.agent_state.params))

    def on_chunk(run_dir, chunks_done, state, eval_returns):
        score = float(np.asarray(eval_returns)[0].mean())
        info = {"env": cfg.experiment.env, "inner_timesteps": search.inner_timesteps, "chunk": chunks_done,
                "eval_fitness": score, "normalised": search.normalize_fitness}
        save_objective(run_dir.path / FINAL_DIR, objective, seed0(state), info)
        if score > best["value"]:
            best["value"] = score
            save_objective(run_dir.path / BEST_DIR, objective, seed0(state), info)
            write_drift_figure(run_dir.path / BEST_DIR / "drift.png", objective, seed0(state),
                               f"{search.objective} meta-trained on {cfg.experiment.env}, chunk {chunks_done}",
                               num_updates=inner_updates)

    def summary(cfg_, state):
        best_info = json.loads((Path(cfg_.experiment.out_dir) / BEST_DIR / "objective.json").read_text())["info"] \
            if (Path(cfg_.experiment.out_dir) / BEST_DIR / "objective.json").is_file() else {}
        return {"objective": search.objective, "inner_timesteps": search.inner_timesteps,
                "seeds_per_member": search.seeds_per_member, "fitness": "normalised return" if search.normalize_fitness
                else "return", "best_objective": BEST_DIR, "best_eval_fitness": best_info.get("eval_fitness")}

    return search_driver.SearchHooks(
        build=build,
        solution_name=lambda s: "ES mean objective: fitness of fresh inner PPO runs trained with it",
        summary=summary,
        on_chunk=on_chunk,
        title=lambda c: f"meta-training {c.search.objective} on {c.experiment.env} (fitness = inner PPO return)",
    )


def main(argv=None, prog: str = "meta_train.py") -> int:
    """``experiments/meta_train.py``; exit 0 done, 2 bad input (one line, nothing written)."""
    import sys

    from jaxrl.parallel import distributed_main

    argv = sys.argv[1:] if argv is None else argv
    return distributed_main(lambda rest: _main(rest, prog), argv, prog)


def _main(argv: list[str], prog: str) -> int:
    import sys

    # The hooks need the resolved config: resolve here (bad input stops here, nothing written);
    # the driver resolves the same flags again.
    try:
        resuming = any(a == "--resume" or a.startswith("--resume=") for a in argv)
        cfg = search_driver.resolve_resume(argv, prog, resolve) if resuming else resolve(argv, prog)
    except ConfigError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return search_driver.EXIT_BAD_INPUT
    return search_driver._main(argv, prog, resolve, make_hooks(cfg))
