"""The reward-optimisation program: BARFI (Gupta et al. 2023) and the ways of using a heuristic reward it is
measured against.

``python experiments/reward_opt.py --method barfi --env CartPole-v1 --heuristic misspecified --num-seeds 2``;
``from jaxrl import reward_opt``. One update is one outer iteration (:mod:`jaxrl.bilevel.barfi`): BARFI's outer
step on the learned reward and discount, then the inner REINFORCE steps; seeds are one vmapped program and a
resumed run continues bit-exactly. Every chunk evaluates the policy on the *primary* reward only (the
environment's reward), so ``summary.json``'s ``final_return_mean`` is the primary return. Figures:
``learning_curve.png``, ``reward_terms.png`` (the learned discount and the mean learned phi_1 / phi_2 over
outer iterations) and, for barfi, ``learned_reward.png`` (phi_1 and phi_2 over the task's states, averaged over
actions, for seed 0 and over seeds; the values in ``learned_reward.npz``).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl import envs
from jaxrl.bilevel.barfi import RewardOptConfig, make_reward_opt, make_reward_values, reward_opt_hparams
from jaxrl.bilevel.tasks import HEURISTICS, TASKS
from jaxrl.config import ConfigError, option
from jaxrl.io.plots import plot_metric_curves, plot_state_maps
from jaxrl.programs.driver import Built, entries, finite_mean, program_from_module
# the rows of an update and of an evaluation are train's: return statistics over seeds (primary reward here)
from jaxrl.programs.train import curves as training_curves, eval_fields, learning_curve_figure, update_fields  # noqa: F401
from jaxrl.training.loop import make_runner

TERM_METRICS = ("discount", "phi_1", "phi_2")


@dataclasses.dataclass(frozen=True)
class RewardProblem:
    """The task, its heuristic and the budget."""

    env: str = option("CartPole-v1", "task: the environment's reward is the primary reward", choices=tuple(TASKS))
    heuristic: str = option("good", "the auxiliary reward: one that helps, or one that rewards the wrong behaviour",
                            choices=HEURISTICS)
    outer_iterations: int = option(200, "outer iterations per seed (each: the outer step, then --inner-steps "
                                        "REINFORCE steps on batches of --episodes episodes)", minimum=1)


def groups(raw: dict):
    return (("problem", "problem", RewardProblem), ("method", "method", RewardOptConfig))


def check(cfg) -> None:
    method = cfg.method
    if method.method != "barfi" and method.hypergradient != "implicit":
        raise ConfigError(f"{cfg.where('hypergradient')}: only barfi has an outer gradient; got --method "
                          f"{method.method} with --hypergradient {method.hypergradient}")
    if method.method == "barfi" and method.episodes < 2:
        raise ConfigError(f"{cfg.where('episodes')}: barfi splits each batch between the outer gradient and the inner "
                          f"objective's derivatives; needs at least 2 episodes, got {method.episodes}")


def build(cfg) -> Built:
    problem = cfg.problem
    env = envs.make(problem.env)
    heuristic = TASKS[problem.env].heuristics[problem.heuristic]
    agent = make_reward_opt(cfg.method, env, heuristic, problem.outer_iterations, cfg.run.eval_episodes)
    return Built(env, make_runner(agent, env.default_params, cfg.run.num_chunks), reward_opt_hparams(cfg.method))


def progress_fields(ctx, last: dict, eval_returns) -> dict:
    return {"return": finite_mean(last.get("train_return", np.nan)), "eval": finite_mean(eval_returns),
            "discount": finite_mean(last.get("discount", np.nan))}


def curves(ctx, history: dict) -> dict:
    """``env_steps [U]``, ``train_return [U, G, S]`` (primary), ``aux_return``, ``discount``, ``phi_1``, ``phi_2``
    ``[U, G, S]``, ``eval_env_steps [C]``, ``eval_returns [C, G, S, E]`` (primary)."""
    return dict(training_curves(ctx, history), aux_return=history["aux_return"],
                **{k: history[k] for k in TERM_METRICS})


def title(cfg) -> str:
    return f"{cfg.method.method} on {cfg.problem.env} ({cfg.problem.heuristic} heuristic)"


def figures(ctx, curves: dict) -> None:
    learning_curve_figure(ctx, curves, f"{title(ctx.cfg)}: primary return")
    terms = {k: curves[k].reshape(curves[k].shape[0], -1) for k in TERM_METRICS}  # grid points drawn as seeds
    plot_metric_curves(ctx.run_dir.path / "reward_terms.png", np.arange(curves["env_steps"].shape[0]) + 1, terms,
                       f"{title(ctx.cfg)}: learned discount and mean phi at the actions taken", "outer iteration")


def learned_reward_maps(ctx, state, grid) -> dict:
    """phi_1 and phi_2 of every member on the task's state grid, ``[M, ny * nx, A]`` each (host arrays)."""
    reward_values = make_reward_values(ctx.cfg.method, ctx.built.env)
    values = jax.jit(jax.vmap(lambda reward: reward_values(reward, jnp.asarray(grid.obs))))
    phi_1, phi_2 = values(state.agent_state.reward)
    return {"obs": grid.obs, "phi_1": np.asarray(phi_1), "phi_2": np.asarray(phi_2)}


def artifacts(ctx, state) -> None:
    """barfi: ``learned_reward.npz`` and ``learned_reward.png`` (the baselines' rewards are fixed)."""
    if ctx.run_dir is None or ctx.cfg.method.method != "barfi":
        return
    grid = TASKS[ctx.cfg.problem.env].state_grid()
    maps = learned_reward_maps(ctx, state, grid)
    ctx.run_dir.write_arrays("learned_reward.npz", **maps)
    shape = grid.shape
    drawn = {}
    for name in ("phi_1", "phi_2"):
        per_member = maps[name].mean(-1)  # averaged over actions: [M, ny * nx]
        drawn[f"{name}, seed 0"] = per_member[0].reshape(shape)
        drawn[f"{name}, mean over {per_member.shape[0]} members"] = per_member.mean(0).reshape(shape)
    plot_state_maps(ctx.run_dir.path / "learned_reward.png", drawn, grid.extent, grid.labels,
                    f"{title(ctx.cfg)}: learned reward terms (mean over actions) after training")


def summary(ctx, history: dict, state) -> dict:
    problem, method = ctx.cfg.problem, ctx.cfg.method

    def last(name):
        return [float(x) for x in np.asarray(history[name][-1]).reshape(-1)]

    return {"method": method.method, "env": problem.env, "heuristic": problem.heuristic,
            "hypergradient": method.hypergradient if method.method == "barfi" else None,
            "return_measured_on": "primary reward", "eval_policy": "greedy" if method.deterministic_eval else "stochastic",
            "final_train_return_mean": finite_mean(history["train_return"][-1]),
            "final_discount": last("discount"), "final_phi_1": last("phi_1"), "final_phi_2": last("phi_2"),
            "outer_iterations": problem.outer_iterations,
            "episodes_per_seed": problem.outer_iterations * method.inner_steps * method.episodes}


def report(s: dict, cfg) -> str:
    return (f"primary return {s['final_return_mean']:.1f} (per seed: {', '.join(f'{x:.1f}' for x in s['final_returns'])}) "
            f"| discount {np.mean(s['final_discount']):.3f} | compile {s['compile_seconds']:.1f}s | run dir {cfg.run.out_dir}")


def default_out_dir(cfg) -> str:
    return f"runs/reward_opt_{cfg.method.method}_{cfg.problem.env}_{cfg.problem.heuristic}"


PROGRAM = program_from_module(
    __name__, name="reward_opt",
    description="Reward-function optimisation (BARFI) and the baselines for using a heuristic reward.",
    step_name="iteration", curve_metrics=("train_return", "aux_return", *TERM_METRICS))
reward_opt, resolve, run, main = entries(PROGRAM)
