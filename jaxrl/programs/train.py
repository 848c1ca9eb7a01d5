"""The training program: an agent (PPO, DQN, PQN, SAC) on one environment, seeds x sweep grid in one program.

``python experiments/train.py --algo ppo --env CartPole-v1 --num-seeds 8``;
``from jaxrl import train``. Everything but what is specific to training (the
algorithm's options and builder, the rows of a training update, the learning
curve) is the driver's (:mod:`jaxrl.programs.driver`).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from jaxrl import envs
from jaxrl.agents import ALGORITHMS
from jaxrl.config import ConfigError, option
from jaxrl.io.plots import plot_learning_curves
from jaxrl.programs.driver import Built, checked_env, entries, finite_mean, program_from_module
from jaxrl.training.loop import make_runner
from jaxrl.training.sweep import grid_label


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """What is trained where, for how long, and how it is evaluated."""

    algo: str = option("ppo", "algorithm", choices=tuple(ALGORITHMS))
    env: str = option("CartPole-v1", "environment name (gymnax id, brax/<name> or probe/<name>)")
    env_kwargs: dict = option({}, "keyword arguments for the environment, e.g. backend=spring,episode_length=1000")
    total_timesteps: int = option(500_000, "environment steps per seed", minimum=1)
    eval_stochastic: bool = option(False, "evaluate the stochastic policy instead of its mode")


def groups(raw: dict):
    algo = str(raw.get("algo", "ppo"))
    if algo not in ALGORITHMS:
        raise ConfigError(f"--algo: unknown algorithm {algo!r}; choose from {', '.join(ALGORITHMS)}")
    cls = ALGORITHMS[algo].config_cls
    return (("experiment", "experiment", TrainOptions), ("algo", f"algorithm ({cls.__name__})", cls))


def check(cfg) -> None:
    """Cross-option checks that need the environment or several options (messages name the flag)."""
    exp, algo = cfg.experiment, cfg.algo
    env = checked_env(exp.env, exp.env_kwargs)
    spec = ALGORITHMS[exp.algo]
    problem = spec.validate(algo, env, exp.total_timesteps) if spec.validate is not None else None
    if problem:
        raise ConfigError(problem)
    if hasattr(algo, "num_minibatches"):
        batch = algo.num_envs * algo.rollout_len
        if batch % algo.num_minibatches:
            raise ConfigError(f"--num-minibatches: {algo.num_minibatches} does not divide num_envs * rollout_len = {batch}")
        if getattr(algo, "recurrent", "none") != "none" and algo.num_envs % algo.num_minibatches:
            # A recurrent minibatch holds whole env sequences (memory needs the steps in order).
            raise ConfigError(f"{cfg.where('num_minibatches')}: {algo.num_minibatches} minibatches do not divide "
                              f"num_envs = {algo.num_envs}; with --recurrent {algo.recurrent} minibatches are split over environments")
        if exp.total_timesteps < batch:
            raise ConfigError(f"--total-timesteps: {exp.total_timesteps} is less than one update of {batch} steps "
                              "(num_envs * rollout_len)")
    if getattr(algo, "value_loss", "mse") == "hl_gauss":  # a categorical value head needs a proper support
        if algo.value_min >= algo.value_max:
            raise ConfigError(f"{cfg.where('value_max')}: the value support needs value_min < value_max, "
                              f"got [{algo.value_min}, {algo.value_max}]")
        if getattr(algo, "value_sigma_ratio", 1.0) <= 0:
            raise ConfigError(f"{cfg.where('value_sigma_ratio')}: must be > 0 with --value-loss hl_gauss, "
                              f"got {algo.value_sigma_ratio}")


def build(cfg) -> Built:
    """The environment, the agent on the shared runner and one member's hyperparameters (nothing compiled)."""
    exp, algo = cfg.experiment, cfg.algo
    spec = ALGORITHMS[exp.algo]
    env = envs.make(exp.env, **exp.env_kwargs)
    agent = spec.make_agent(algo, env, exp.total_timesteps, cfg.run.eval_episodes, not exp.eval_stochastic)
    return Built(env, make_runner(agent, env.default_params, cfg.run.num_chunks), spec.make_hparams(algo))


def update_fields(ctx, metrics: dict) -> dict:
    """Return statistics over seeds of the last finished training episode, and the mean of every other metric."""
    r = metrics["train_return"]
    row = dict(return_mean=r.mean(), return_std=r.std(), return_min=r.min(), return_max=r.max())
    row.update({k: float(v.mean()) for k, v in metrics.items() if k != "train_return"})
    return row


def eval_fields(ctx, eval_returns) -> dict:
    e = eval_returns.reshape(eval_returns.shape[0], -1).mean(-1)  # [S]
    return dict(eval_return_mean=e.mean(), eval_return_std=e.std())


def progress_fields(ctx, last: dict, eval_returns) -> dict:
    return {"return": finite_mean(last.get("train_return", np.nan)), "eval": finite_mean(eval_returns)}


def summary(ctx, history: dict, state) -> dict:
    exp = ctx.cfg.experiment
    return {"algo": exp.algo, "env": exp.env, "eval_policy": "stochastic" if exp.eval_stochastic else "deterministic",
            "final_train_return_mean": finite_mean(history["train_return"][-1])}


def curves(ctx, history: dict) -> dict:
    """``env_steps [U]``, ``train_return [U, G, S]``, ``eval_env_steps [C]``, ``eval_returns [C, G, S, E]``."""
    train_return, eval_returns = history["train_return"], history["eval_returns"]
    steps = ctx.steps_per_update
    return dict(env_steps=(np.arange(train_return.shape[0]) + 1) * steps, train_return=train_return,
                eval_env_steps=ctx.evaluated_updates(eval_returns.shape[0]) * steps, eval_returns=eval_returns)


def learning_curve_figure(ctx, curves: dict, title: str) -> None:
    """``learning_curve.png``: training and evaluation returns of every grid point over env steps."""
    plot_learning_curves(ctx.run_dir.path / "learning_curve.png", curves["env_steps"], curves["train_return"],
                         curves["eval_env_steps"], curves["eval_returns"].mean(-1), [grid_label(p) for p in ctx.grid], title)


def figures(ctx, curves: dict) -> None:
    exp = ctx.cfg.experiment
    learning_curve_figure(ctx, curves, f"{exp.algo.upper()} on {exp.env}")


def report(s: dict, cfg) -> str:
    return (f"final return {s['final_return_mean']:.1f} (per seed: {', '.join(f'{x:.1f}' for x in s['final_returns'])}) | "
            f"{s['env_steps_per_second']:,.0f} env steps/s | compile {s['compile_seconds']:.1f}s"
            f"{' (cache)' if s.get('compile_from_cache') else ''} | run dir {cfg.run.out_dir}")


def default_out_dir(cfg) -> str:
    return f"runs/{cfg.experiment.algo}_{cfg.experiment.env.replace('/', '_')}"


PROGRAM = program_from_module(
    __name__, name="train", description="Train an agent; seeds and sweeps run together in one compiled program.",
    curve_metrics=("train_return",), unbatched_single_member=True)
train, resolve, run, main = entries(PROGRAM)
