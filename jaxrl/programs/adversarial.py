"""The robust adversarial RL program: QARL (Reddi et al. 2024) and its baselines with SAC players.

``python experiments/adversarial.py --method qarl --env CartPole-v1 --num-seeds 2``; ``from jaxrl import
adversarial``. One update is one iteration of the two players (:mod:`jaxrl.adversarial.players`): collect
with both, the adversary learns, then the protagonist; the temperature curriculum (QARL's self-paced teacher)
runs inside it, so seeds are one vmapped program and a resumed run continues bit-exactly. Each chunk
evaluates the protagonist without an adversary (``eval_returns``: the nominal return). At the end every
member's protagonist is evaluated for robustness in one compiled program (:mod:`jaxrl.adversarial.robustness`):
a worst-case adversary trained from scratch against it, and held-out physics. ``summary.json`` holds the
nominal, worst-case and held-out returns per seed; ``robustness.npz`` every episode's.
"""
from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.adversarial.methods import ADVERSARY_OF, METHODS, RationalityHParams, make_context
from jaxrl.adversarial.players import TwoPlayerHParams, make_two_player_sac
from jaxrl.adversarial.robustness import make_robustness_evaluation, robustness_keys
from jaxrl.agents.sac import SACConfig, sac_hparams
from jaxrl.config import ConfigError, option
from jaxrl.envs.adversarial import DEFAULT_ADVERSARY_FORCE, TWO_PLAYER_ENVS, make_two_player
from jaxrl.programs.driver import Built, entries, finite_mean, program_from_module
from jaxrl.programs.train import curves as training_curves, learning_curve_figure
from jaxrl.training.loop import make_runner
from jaxrl.training.off_policy import config_problem
from jaxrl.training.sweep import member_batch

# The teacher's performance threshold on the protagonist's discounted return (gamma 0.99) per task. QARL uses
# about a tenth of the best discounted return on dm_control's [0, 1] rewards (cartpole 10); here half of
# CartPole's best (99.3); for Pendulum, a return a swing-up reaches and a random policy (about -520) does not; for
# the hopper (about 1 per step standing), half of standing through the discounted horizon.
DEFAULT_THRESHOLD = {"CartPole-v1": 50.0, "Pendulum-v1": -300.0, "brax/hopper": 50.0}


@dataclasses.dataclass(frozen=True)
class AdversarialOptions:
    """The task, the method and its curriculum, and the robustness evaluation."""

    method: str = option("qarl", "how the adversary is trained and its temperature chosen", choices=METHODS)
    env: str = option("CartPole-v1", "two-player task (the adversary pushes the pole; brax/hopper: the foot)",
                      choices=TWO_PLAYER_ENVS)
    total_timesteps: int = option(100_000, "environment steps per seed", minimum=1)
    adversary_force: float = option(float("nan"), "the adversary's force budget per axis in Newtons (nan: the task's "
                                    f"default, {DEFAULT_ADVERSARY_FORCE})", minimum=0.0)
    initial_concentration: float = option(50.0, "Gamma concentration of the temperature distribution at the start "
                                          "(mean = concentration / rate)", traced=True, positive=True)
    target_concentration: float = option(1.0, "the curriculum's target concentration", traced=True, positive=True)
    rate: float = option(1000.0, "Gamma rate of the temperature distribution (fixed)", traced=True, positive=True)
    max_kl: float = option(0.5, "teacher: KL(new || old) bound of one update", traced=True, positive=True)
    performance_threshold: float = option(float("nan"), "teacher: the protagonist's discounted return the curriculum "
                                          f"needs to move (nan: the task's default, {DEFAULT_THRESHOLD})", traced=True)
    teacher_samples: int = option(30, "teacher: finished episodes per update", minimum=1)
    teacher_capacity: int = option(100, "teacher: most episodes one update reads", minimum=1)
    temperature: float = option(0.001, "fixed_temperature's adversary temperature (default: the mean of the curriculum's "
                                "target, a nearly rational adversary throughout)", traced=True, minimum=0.0)
    worst_case_steps: int = option(0, "env steps the worst-case adversary trains against the final protagonist "
                                   "(0: --total-timesteps)", minimum=0)


@dataclasses.dataclass(frozen=True)
class PlayerSACConfig(SACConfig):
    """SAC options of both players (smaller networks and warm-up than :class:`SACConfig`'s defaults: classic
    control on CPU; the presets set the rest)."""

    hidden_sizes: tuple = option((64, 64), "hidden layer sizes of each player's actor and critics")
    learning_starts: int = option(1_000, "env steps per seed collected before learning starts", minimum=0)
    buffer_size: int = option(100_000, "replay buffer capacity in transitions (per seed, on device)", minimum=1)


def groups(raw: dict):
    return (("adversarial", "adversarial", AdversarialOptions), ("sac", "players (SAC)", PlayerSACConfig))


def finalize(cfg):
    """The task's defaults for the force budget and the teacher's threshold."""
    opts = cfg.adversarial
    changes = {}
    if math.isnan(opts.adversary_force):
        changes["adversary_force"] = DEFAULT_ADVERSARY_FORCE[opts.env]
    if math.isnan(opts.performance_threshold):
        changes["performance_threshold"] = DEFAULT_THRESHOLD[opts.env]
    return cfg.replace_group("adversarial", **changes) if changes else cfg


def check(cfg) -> None:
    opts, sac = cfg.adversarial, cfg.sac
    problem = config_problem(sac)
    if problem:
        raise ConfigError(problem)
    per_update = sac.num_envs * sac.steps_per_update
    if opts.total_timesteps < per_update:
        raise ConfigError(f"--total-timesteps: {opts.total_timesteps} is less than one update of {per_update} steps "
                          "(num_envs * steps_per_update)")
    if opts.teacher_samples > opts.teacher_capacity:
        raise ConfigError(f"--teacher-samples: {opts.teacher_samples} is more than --teacher-capacity "
                          f"({opts.teacher_capacity}) episodes")


def _env(opts: AdversarialOptions):
    return make_two_player(opts.env, 0.0 if opts.method == "none" else opts.adversary_force)


def _hparams(cfg) -> TwoPlayerHParams:
    opts = cfg.adversarial
    curriculum = RationalityHParams(**{name: jnp.float32(getattr(opts, name)) for name in RationalityHParams._fields})
    return TwoPlayerHParams(sac_hparams(cfg.sac), curriculum)


def build(cfg) -> Built:
    """The two-player env, the method's two-player agent on the shared runner, its hyperparameters, and the
    robustness evaluation (in ``extra``)."""
    opts = cfg.adversarial
    env = _env(opts)
    context = make_context(opts.method, env, opts.total_timesteps, opts.teacher_samples, opts.teacher_capacity)
    agent, _ = make_two_player_sac(cfg.sac, env, opts.total_timesteps, adversary=ADVERSARY_OF[opts.method],
                                   context=context, num_eval_episodes=cfg.run.eval_episodes)
    names, levels = env.unwrapped.held_out_physics()
    # The worst-case adversary always has a force budget, also against a protagonist trained without one.
    eval_env = make_two_player(opts.env, opts.adversary_force)
    robustness = make_robustness_evaluation(cfg.sac, eval_env, opts.worst_case_steps or opts.total_timesteps,
                                            cfg.run.eval_episodes, levels)
    nominal = env.with_temperature(env.default_params.temperature)
    return Built(env, make_runner(agent, nominal, cfg.run.num_chunks), _hparams(cfg),
                 {"held_out_names": names, "robustness": robustness})


def update_fields(ctx, metrics: dict) -> dict:
    r = metrics["train_return"]
    row = dict(return_mean=r.mean(), return_std=r.std())
    row.update({k: float(v.mean()) for k, v in metrics.items() if k != "train_return"})
    return row


def eval_fields(ctx, eval_returns) -> dict:
    e = eval_returns.reshape(eval_returns.shape[0], -1).mean(-1)
    return dict(eval_return_mean=e.mean(), eval_return_std=e.std())  # the nominal return (no adversary)


def progress_fields(ctx, last: dict, eval_returns) -> dict:
    return {"return": finite_mean(last.get("train_return", np.nan)), "nominal": finite_mean(eval_returns),
            "concentration": finite_mean(last.get("concentration", np.nan))}


def robustness(ctx, state) -> dict:
    """Every member's robustness evaluation as host arrays (leaves ``[M, ...]``), one compiled program."""
    keys, hparams = member_batch(ctx.built.hparams, ctx.grid, ctx.num_seeds, ctx.cfg.run.seed)
    evaluate = jax.jit(jax.vmap(ctx.built.extra["robustness"]))
    params = state.agent_state.params
    return jax.tree.map(np.asarray, evaluate(robustness_keys(keys), params, hparams))


def summary(ctx, history: dict, state) -> dict:
    """Per seed: the nominal, worst-case-adversary and held-out-physics returns (means over episodes; held-out
    over its levels but ``Default``, which is the nominal task), and each held-out level's."""
    opts = ctx.cfg.adversarial
    result = robustness(ctx, state)
    ctx.built.extra["robustness_result"] = result
    names = ctx.built.extra["held_out_names"]
    nominal, worst = result["nominal"].mean(-1), result["worst_case"].mean(-1)  # [M]
    per_level = result["held_out"].mean(-1)  # [M, L]
    shifted = [j for j, n in enumerate(names) if n != "Default"]
    held_out = per_level[:, shifted].mean(-1)

    def listed(x):
        return [float(v) for v in x]

    return {"method": opts.method, "env": opts.env, "adversary_force": opts.adversary_force,
            "nominal_returns": listed(nominal), "worst_case_returns": listed(worst), "held_out_returns": listed(held_out),
            "nominal_return_mean": finite_mean(nominal), "worst_case_return_mean": finite_mean(worst),
            "held_out_return_mean": finite_mean(held_out),
            "held_out_levels": {n: listed(per_level[:, j]) for j, n in enumerate(names)},
            "worst_case_steps": opts.worst_case_steps or opts.total_timesteps,
            "final_concentration": listed(history["concentration"][-1].reshape(-1)),
            "final_mean_temperature": listed(history["concentration"][-1].reshape(-1) / opts.rate)}


def curves(ctx, history: dict) -> dict:
    """``env_steps [U]``, ``train_return [U, G, S]``, ``concentration [U, G, S]``, ``temperature [U, G, S]``,
    ``eval_env_steps [C]``, ``eval_returns [C, G, S, E]`` (nominal)."""
    return dict(training_curves(ctx, history), concentration=history["concentration"],
                temperature=history["temperature"])


def figures(ctx, curves: dict) -> None:
    opts = ctx.cfg.adversarial
    learning_curve_figure(ctx, curves, f"{opts.method} on {opts.env}: return against the adversary (train), without (eval)")


def artifacts(ctx, state) -> None:
    result = ctx.built.extra.get("robustness_result")
    if ctx.run_dir is not None and result is not None:
        ctx.run_dir.write_arrays("robustness.npz", held_out_names=np.asarray(ctx.built.extra["held_out_names"]), **result)


def report(s: dict, cfg) -> str:
    def seeds(name):
        return ", ".join(f"{x:.1f}" for x in s[name])

    return (f"nominal {s['nominal_return_mean']:.1f} ({seeds('nominal_returns')}) | worst-case adversary "
            f"{s['worst_case_return_mean']:.1f} ({seeds('worst_case_returns')}) | held-out physics "
            f"{s['held_out_return_mean']:.1f} ({seeds('held_out_returns')}) | compile {s['compile_seconds']:.1f}s | "
            f"run dir {cfg.run.out_dir}")


def default_out_dir(cfg) -> str:
    return f"runs/adversarial_{cfg.adversarial.method}_{cfg.adversarial.env.replace('/', '_')}"


PROGRAM = program_from_module(
    __name__, name="adversarial",
    description="Robust adversarial RL: a SAC protagonist against a SAC adversary (QARL, RARL and baselines).",
    curve_metrics=("train_return", "concentration", "temperature"), unbatched_single_member=True)
adversarial, resolve, run, main = entries(PROGRAM)
