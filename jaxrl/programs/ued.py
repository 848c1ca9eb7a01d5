"""The curriculum program: unsupervised environment design (DR, PLR, robust PLR, ACCEL, PAIRED) with PPO.

``python experiments/ued.py --method robust_plr --env Maze --num-seeds 4``; ``from jaxrl import ued``.
One update is one UED iteration (:mod:`jaxrl.curricula.ued`, :mod:`jaxrl.curricula.paired`); the level
buffer is part of the runner state, so it is checkpointed and a resumed run continues bit-exactly. The
curriculum's replay probability, temperature, staleness coefficient and fill threshold are traced:
``--sweep replay_prob=0.5,0.8`` is one compiled program.

What it writes beside the driver's outputs: ``curves.npz`` (held-out returns
``[chunks, grid, seeds, levels, episodes]`` and the held-out level names), held-out solve
rates in ``summary.json`` and ``metrics.jsonl``, ``solve_rate_curve.png``,
``held_out_levels.png``, ``held_out_trajectories.png`` (mazes: one episode of seed 0's final
policy on each held-out level) and, for buffer methods, ``buffer_levels.png`` and
``buffer_levels/chunk_NNN.png`` (seed 0's highest-scoring levels at the end and at every
checkpoint). Everything specific to an environment comes from its
:class:`~jaxrl.envs.levels.spaces.LevelSpace`.
"""
from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import jax
import numpy as np

from jaxrl.agents.base import policy_parts
from jaxrl.agents.ppo import PPOConfig, validate_ppo
from jaxrl.config import ConfigError, option
from jaxrl.curricula.curriculum import BUFFER_METHODS, DATASET_METHODS, PRIORITISED_METHODS, CurriculumConfig, validate_curriculum
from jaxrl.curricula.level_model import make_interpolator
from jaxrl.envs.levels.spaces import HELD_OUT_SETS, LEVEL_SPACES
from jaxrl.evaluation.rollout import play_levels
from jaxrl.io.images import image_grid, level_at, level_grid, plot_solve_rates, save_buffer_levels, save_image
from jaxrl.parallel import first_seed_to_host
from jaxrl.programs.driver import Built, entries, program_from_module
from jaxrl.programs.level_model import dataset_levels, load_or_build
from jaxrl.training.loop import make_runner
from jaxrl.curricula.paired import make_paired
from jaxrl.curricula.ued import make_ued, ued_hparams

LEVEL_ENVS = tuple(LEVEL_SPACES)


@dataclasses.dataclass(frozen=True)
class LevelOptions:
    """The level space and the budget of a curriculum run."""

    env: str = option("Maze", "environment with designable levels", choices=LEVEL_ENVS)
    total_timesteps: int = option(1_000_000, "environment steps per seed", minimum=1)
    num_walls: int = option(25, "walls of a generated maze (Maze only)", minimum=0, maximum=13 * 13 - 2)
    max_steps: int = option(250, "maze time limit (Maze only; CartPole-v1 keeps its 500 steps, XLand its 243)", minimum=1)
    generator: str = option("random", "where new levels come from: random (the space's generator) or dataset (uniform "
                            "draws from the --dataset-size levels of the space's target distribution: DR over the dataset)",
                            choices=("random", "dataset"))
    policy: str = option("flags", "the policy network: flags (as the PPO flags say: --hidden-sizes, --encoder, --recurrent ...) "
                         "or published (Maze: JaxUED's conv + direction embedding -> LSTM 256 -> 32-unit ReLU heads)",
                         choices=("flags", "published"))
    held_out: str = option("hand_designed", "held-out levels: the space's hand-designed set, or extended (Maze: plus 10 "
                           "perfect mazes of 13 x 13, 10 of 25 x 25 and 10 cellular-automaton caves)", choices=HELD_OUT_SETS)


# JaxUED's maze ActorCritic (examples/maze_plr.py): Conv(16, 3x3) + Dense(5) direction embedding -> LSTM(256) ->
# Dense(32) + ReLU heads. It has no MLP between the encoder and the core (hidden_sizes empty).
PUBLISHED_MAZE_POLICY = dict(encoder="maze_conv", recurrent="lstm", core_size=256, head_size=32, hidden_sizes=(),
                             activation="relu")


def finalize(cfg):
    """PPO's environments are the curriculum's levels: ``num_envs`` is ``num_levels``; ``--policy published``
    sets the network options to :data:`PUBLISHED_MAZE_POLICY`."""
    cfg = cfg.replace_group("ppo", num_envs=cfg.curriculum.num_levels)
    if cfg.levels.policy == "published":
        cfg = cfg.replace_group("ppo", **PUBLISHED_MAZE_POLICY)
    return cfg


def check(cfg) -> None:
    levels, cur, ppo = cfg.levels, cfg.curriculum, cfg.ppo
    if levels.policy == "published" and levels.env != "Maze":
        raise ConfigError(f"--policy: published is the maze policy of JaxUED; {levels.env} has none (use --policy flags)")
    for error in (validate_curriculum(cur), validate_ppo(ppo, LEVEL_SPACES[levels.env].make_env(levels.max_steps), levels.total_timesteps)):
        if error:
            raise ConfigError(error)
    if ppo.normalize_obs:
        raise ConfigError("--normalize-obs: not supported with curricula (every update resets the envs to new levels)")
    if (cur.num_levels * ppo.rollout_len) % ppo.num_minibatches:
        raise ConfigError(f"--num-minibatches ({ppo.num_minibatches}) must divide --num-levels x --rollout-len")
    if cur.method == "sfl" and levels.total_timesteps < cur.sfl_period * cur.num_levels * ppo.rollout_len:
        raise ConfigError(f"--total-timesteps: {levels.total_timesteps} is less than one SFL block of --sfl-period "
                          f"({cur.sfl_period}) iterations of {cur.num_levels * ppo.rollout_len} steps")
    if levels.total_timesteps < cur.num_levels * ppo.rollout_len:
        raise ConfigError(f"--total-timesteps: {levels.total_timesteps} is less than one update of "
                          f"{cur.num_levels * ppo.rollout_len} steps (num_levels * rollout_len)")
    if (cur.method in DATASET_METHODS or levels.generator == "dataset") and LEVEL_SPACES[levels.env].dataset is None:
        flag = "--generator: dataset" if levels.generator == "dataset" else f"--method: {cur.method}"
        raise ConfigError(f"{flag} needs a level dataset; {levels.env} has none (Maze has)")
    if levels.held_out == "extended" and LEVEL_SPACES[levels.env].extra_held_out is None:
        raise ConfigError(f"--held-out: {levels.env} has only its hand_designed set; extended needs Maze")
    if cur.method == "paired" and not LEVEL_SPACES[levels.env].designable_by_adversary:
        raise ConfigError(f"--method: paired needs levels its adversary can build (Maze); {levels.env} has none")
    if cur.method not in PRIORITISED_METHODS and set(cfg.run.sweep) & {"replay_prob", "temperature", "staleness_coef", "min_fill"}:
        raise ConfigError(f"--sweep: {cur.method} replays no prioritised buffer; replay_prob, temperature, staleness_coef "
                          "and min_fill have nothing to change")


def build(cfg) -> Built:
    """The level environment, the UED (or PAIRED) agent on the shared runner and its hyperparameters."""
    levels, cur = cfg.levels, cfg.curriculum
    space = LEVEL_SPACES[levels.env]
    env = space.make_env(levels.max_steps)
    names, eval_levels = space.held_out()
    extra = space.extra_held_out(levels.max_steps) if levels.held_out == "extended" else []
    names = tuple(names) + tuple(n for _, set_names, _ in extra for n in set_names)
    extra_eval = tuple((e, lv) for e, _, lv in extra)
    generate, dataset, interpolate = space.generator(levels.num_walls), None, None
    if cur.method == "dred":  # the saved model's own dataset (drawn once, when the model was built)
        try:
            vae, params, dataset = load_or_build(space, cur.dataset_size, cur.level_model_steps, Path(cur.level_model))
        except ValueError as error:
            raise ConfigError(str(error)) from None
        interpolate = make_interpolator(vae, params, dataset)
    elif cur.method in DATASET_METHODS or levels.generator == "dataset":
        dataset = dataset_levels(space, cur.dataset_size)
    if levels.generator == "dataset":
        generate = functools.partial(draw_level, dataset)
    if cur.method == "paired":
        agent = make_paired(cfg.ppo, cur.num_levels, env, levels.total_timesteps, eval_levels, levels.num_walls,
                            num_eval_episodes=cfg.run.eval_episodes, extra_eval=extra_eval)
    else:
        agent = make_ued(cfg.ppo, cur, env, levels.total_timesteps, generate, space.mutator(cur.num_edits), eval_levels,
                         cfg.run.eval_episodes, solved_return=space.solved_return, extra_eval=extra_eval, dataset=dataset,
                         interpolate=interpolate)
    return Built(env, make_runner(agent, None, cfg.run.num_chunks), ued_hparams(cfg.ppo, cur),
                 {"space": space, "names": names, "eval_levels": eval_levels})


def draw_level(dataset, key):
    """One level drawn uniformly from ``dataset`` (leaves ``[N, ...]``): ``--generator dataset``."""
    index = jax.random.randint(key, (), 0, jax.tree.leaves(dataset)[0].shape[0])
    return jax.tree.map(lambda x: x[index], dataset)


def _per_level(ctx, eval_returns) -> np.ndarray:
    """``[S, L*E]`` -> ``[S, L, E]`` held-out returns."""
    return eval_returns.reshape(eval_returns.shape[0], len(ctx.built.extra["names"]), -1)


def update_fields(ctx, metrics: dict) -> dict:
    return {k: float(np.mean(v)) for k, v in metrics.items()}


def eval_fields(ctx, eval_returns) -> dict:
    returns = _per_level(ctx, eval_returns)
    solve = (returns > ctx.built.extra["space"].solved_return).mean(-1)  # [S, L]
    row = dict(eval_return_mean=float(returns.mean()), eval_solve_rate=float(solve.mean()))
    row.update({f"solve_{n}": float(solve[:, j].mean()) for j, n in enumerate(ctx.built.extra["names"])})
    return row


def progress_fields(ctx, last: dict, eval_returns) -> dict:
    solve = (eval_returns > ctx.built.extra["space"].solved_return).mean()
    return {"solve": float(solve), "score": float(np.mean(last.get("level_score", np.nan)))}


def _solve_rates(ctx, eval_returns) -> np.ndarray:
    """``[C, G, S, L*E]`` held-out returns -> ``[C, G, S, L]`` solve rates."""
    per_level = eval_returns.reshape(*eval_returns.shape[:3], len(ctx.built.extra["names"]), -1)
    return (per_level > ctx.built.extra["space"].solved_return).mean(-1)


def summary(ctx, history: dict, state) -> dict:
    names = ctx.built.extra["names"]
    solve = _solve_rates(ctx, history["eval_returns"])[-1].reshape(-1, len(names))  # [M, L]
    return {"method": ctx.cfg.curriculum.method, "env": ctx.cfg.levels.env,
            "held_out_solve_rate": {n: float(solve[:, j].mean()) for j, n in enumerate(names)},
            "held_out_solve_rates": {n: [float(x) for x in solve[:, j]] for j, n in enumerate(names)},
            "solve_rate_mean": float(solve.mean())}


TRAINING_CURVES = ("gradient_updates", "train_solve_rate", "level_score")  # every method logs these (kept in checkpoints)


def curves(ctx, history: dict) -> dict:
    """``eval_env_steps [C]``, ``eval_gradient_updates [C, G, S]`` (PPO gradient updates made when each evaluation
    ran: the x-axis of the published curricula comparisons), ``eval_returns [C, G, S, L, E]``, ``level_names [L]``;
    per update ``env_steps [U]`` and the training statistics of :data:`TRAINING_CURVES` (``[U, G, S]``)."""
    eval_returns = history["eval_returns"]
    per_level = eval_returns.reshape(*eval_returns.shape[:3], len(ctx.built.extra["names"]), -1)
    chunks = ctx.evaluated_updates(eval_returns.shape[0])
    out = dict(eval_env_steps=chunks * ctx.steps_per_update, eval_returns=per_level,
               level_names=np.asarray(ctx.built.extra["names"]))
    updates = history["gradient_updates"].shape[0]
    out["env_steps"] = (np.arange(updates) + 1) * ctx.steps_per_update
    out["eval_gradient_updates"] = history["gradient_updates"][np.minimum(chunks, updates) - 1]
    out.update({name: history[name] for name in TRAINING_CURVES})
    return out


def figures(ctx, curves: dict) -> None:
    extra, cfg = ctx.built.extra, ctx.cfg
    solve = (curves["eval_returns"] > extra["space"].solved_return).mean(-1)  # [C, G, S, L]
    plot_solve_rates(ctx.run_dir.path / "solve_rate_curve.png", curves["eval_env_steps"],
                     solve.reshape(solve.shape[0], -1, solve.shape[-1]), extra["names"],
                     f"{cfg.curriculum.method} on {cfg.levels.env}: held-out levels")
    num = len(jax.tree.leaves(extra["eval_levels"])[0])  # the space's own set (extended sets differ in size)
    save_image(ctx.run_dir.path / "held_out_levels.png",
               level_grid(extra["eval_levels"], num, columns=num, render=extra["space"].render), " | ".join(extra["names"][:num]))


def on_chunk(ctx, chunks_done: int, states, eval_returns, checkpointed: bool) -> None:
    """At every checkpoint, seed 0's highest-scoring buffer levels as ``buffer_levels/chunk_NNN.png``."""
    if not checkpointed or ctx.cfg.curriculum.method not in BUFFER_METHODS:
        return
    snapshot = first_seed_to_host(states[0].agent_state.curriculum.buffer)  # seed 0 is in the first batch
    if ctx.run_dir is not None:
        (ctx.run_dir.path / "buffer_levels").mkdir(exist_ok=True)
        save_buffer_levels(ctx.run_dir.path / "buffer_levels" / f"chunk_{chunks_done:03d}.png", snapshot,
                           ctx.built.extra["space"].render, f"after chunk {chunks_done}: ")


def held_out_trajectories(agent, env, space, eval_levels, params, key) -> tuple[np.ndarray, np.ndarray]:
    """An RGB grid of the held-out levels, each with the path of one episode of the final policy
    (stochastic, as the held-out evaluation plays) of one seed, and those episodes' returns ``[L]``;
    ``params`` are that seed's policy parameters."""
    returns, env_states, playing = jax.jit(lambda k, p: play_levels(
        k, agent.act, p, env, eval_levels, initial_policy_state=agent.initial_policy_state))(key, params)
    positions, playing = np.asarray(space.agent_positions(env_states)), np.asarray(playing)  # [T, L, 2], [T, L]
    images = [space.render_trajectory(level_at(eval_levels, i), positions[playing[:, i], i], 6)
              for i in range(playing.shape[1])]
    return image_grid(images, len(images), 6), np.asarray(returns)


def artifacts(ctx, state) -> None:
    """Seed 0's final buffer levels and its final policy's paths on the held-out levels."""
    extra, cfg = ctx.built.extra, ctx.cfg
    space = extra["space"]
    has_buffer = cfg.curriculum.method in BUFFER_METHODS
    buffer = first_seed_to_host(state.agent_state.curriculum.buffer) if has_buffer else None
    params = None
    if space.agent_positions is not None:
        params = jax.tree.map(lambda x: x[0], first_seed_to_host(policy_parts(ctx.built.agent, state.agent_state)[0]))
    if ctx.run_dir is None:
        return
    if buffer is not None:
        save_buffer_levels(ctx.run_dir.path / "buffer_levels.png", buffer, space.render)
    if params is not None:
        names = extra["names"]
        image, returns = held_out_trajectories(ctx.built.agent, ctx.built.env, space, extra["eval_levels"], params,
                                               jax.random.fold_in(jax.random.PRNGKey(cfg.run.seed), 1))
        save_image(ctx.run_dir.path / "held_out_trajectories.png", image,
                   "seed 0, final policy: " + " | ".join(f"{n} {'solved' if r > space.solved_return else 'not solved'}"
                                                          for n, r in zip(names, returns)))


def level_set_name(level: str) -> str:
    """The held-out set a level name belongs to: ``PerfectMaze13-4`` -> ``PerfectMaze13``; a hand-designed level is
    its own set."""
    return level.rsplit("-", 1)[0] if level.rsplit("-", 1)[-1].isdigit() else level


def report(s: dict, cfg) -> str:
    """One line: the mean held-out solve rate, per hand-designed level and per procedural set (their means)."""
    sets: dict[str, list[float]] = {}
    for level, rate in s["held_out_solve_rate"].items():
        sets.setdefault(level_set_name(level), []).append(rate)
    parts = ", ".join(f"{name} {np.mean(rates):.2f}" + (f" (mean of {len(rates)})" if len(rates) > 1 else "")
                      for name, rates in sets.items())
    return f"{s['method']} on {s['env']}: held-out solve rate {s['solve_rate_mean']:.3f} ({parts}); results in {cfg.run.out_dir}"


def groups(raw: dict):
    return (("levels", "levels", LevelOptions), ("curriculum", "curriculum", CurriculumConfig), ("ppo", "ppo", PPOConfig))


def default_out_dir(cfg) -> str:
    return f"runs/ued_{cfg.curriculum.method}_{cfg.levels.env}"


PROGRAM = program_from_module(
    __name__, name="ued",
    description="Environment-design curricula (DR, PLR, robust PLR, ACCEL, PAIRED, SFL, DRED) with PPO in one compiled program.",
    skip=frozenset({"num_envs"}),  # PPO's envs are the curriculum's num_levels
    curve_metrics=TRAINING_CURVES,
    run_defaults={"num_chunks": 10, "eval_episodes": 8})
ued, resolve, run, main = entries(PROGRAM)
