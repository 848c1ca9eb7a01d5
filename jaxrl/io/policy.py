"""Loading saved runs: the policy of a run directory for notebooks and evaluation."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.agents.base import policy_parts
from jaxrl.envs import find_obs_stats
from jaxrl.networks.recurrent import reset_where
from jaxrl.io.checkpoint import CheckpointError, Checkpointer, restore_run_state


@dataclasses.dataclass
class LoadedRun:
    """A run directory rebuilt: config, program pieces and the newest intact checkpoint's state.

    Attributes:
        config: the run's :class:`~jaxrl.programs.options.Config`.
        program: the :class:`~jaxrl.programs.driver.Program` that wrote the run.
        grid: the sweep's grid points (``[{}]`` without a sweep).
        hparams: every member's hyperparameters (leaves ``[M, ...]``).
        state: runner state of every member, leaves ``[M, ...]`` (``M`` = grid points x seeds).
        step: the checkpoint's step (chunks done).
        extra: the program's own pieces (a curriculum run's held-out level names and level space).
    """

    config: Any
    env: Any
    agent: Any
    runner: Any
    grid: list
    hparams: Any
    state: Any
    step: int
    program: Any = None
    extra: dict = dataclasses.field(default_factory=dict)


def load_run(run_dir, num_eval_episodes: int | None = None, deterministic: bool | None = None) -> LoadedRun:
    """Rebuilds the run in ``run_dir`` (any program's) from its ``config.yaml`` and newest intact checkpoint.

    Args:
        num_eval_episodes: override the evaluation episodes of the rebuilt agent (per held-out level
            for a curriculum run).
        deterministic: override a training run's evaluation policy (mode or sample).
    """
    from jaxrl.programs import PROGRAMS, get_program, program_for_config
    from jaxrl.programs.driver import members, resolve
    from jaxrl.programs.options import load_yaml_config

    run = Path(run_dir)
    if not (run / "config.yaml").is_file():
        raise CheckpointError(f"{run_dir!r} is not a run directory (no config.yaml)")
    values = load_yaml_config(str(run / "config.yaml"))
    name = program_for_config(values)
    if name not in PROGRAMS:
        raise CheckpointError(f"{run_dir!r} was written by an unknown program {name!r}")
    program = get_program(name)
    argv = ["--config", str(run / "config.yaml"), "--out-dir", str(run), "--quiet"]
    if num_eval_episodes is not None:
        argv += ["--eval-episodes", str(num_eval_episodes)]
    if deterministic is not None and "eval_stochastic" in values:
        argv += ["--no-eval-stochastic" if deterministic else "--eval-stochastic"]
    cfg = resolve(program, argv)
    built = program.build(cfg)
    grid, keys, hparams = members(cfg, built)
    checkpointer = Checkpointer(run / "checkpoints", keep=cfg.run.keep_checkpoints)
    step, saved, _ = restore_run_state(checkpointer, built.runner, keys, hparams)
    state = jax.device_put(saved["runner"])
    return LoadedRun(cfg, built.env, built.agent, built.runner, grid, hparams, state, step, program, dict(built.extra))


@dataclasses.dataclass
class Policy:
    """A saved policy: ``policy(obs, key)`` -> action for raw observations of ``jaxrl.envs.make(env)``.

    Observations are normalised with the run's saved statistics when the run
    normalised them. ``params`` are one member's network parameters.

    A recurrent policy (``policy.recurrent``) carries its state through an
    episode: ``action, state = policy(obs, key, state=state)`` (``state=None``
    starts from :meth:`initial_state`), and after a step that ended an episode
    ``state = policy.reset(state, done)`` so the next episode starts fresh.

    Attributes:
        params: network parameters of the chosen member.
        act: ``(params, obs, key, deterministic) -> action`` (the agent's act function).
        obs_stats: running observation statistics, or None.
        env: the environment (``jaxrl.envs.make`` of the run's env).
        member: index of the member (grid point x seed) these parameters belong to.
        initial_state_fn: a recurrent agent's ``batch_size -> state``, None for a feedforward one.
    """

    params: Any
    act: Any
    obs_stats: Any
    env: Any
    member: int
    deterministic: bool = True
    initial_state_fn: Any = None

    @property
    def recurrent(self) -> bool:
        return self.initial_state_fn is not None

    def initial_state(self, batch_size: int | None = None):
        """A recurrent policy's initial state: leaves ``[batch_size, ...]``, or unbatched for ``batch_size=None``."""
        if not self.recurrent:
            raise ValueError("a feedforward policy has no state")
        if batch_size is None:
            return jax.tree.map(lambda x: x[0], self.initial_state_fn(1))
        return self.initial_state_fn(batch_size)

    def reset(self, state, done):
        """``state`` with the envs whose episode ended (``done``, ``[batch_size]`` or scalar) back at the initial state."""
        done = jnp.asarray(done, bool)
        initial = self.initial_state(None if done.ndim == 0 else done.shape[0])
        return reset_where(done, state, initial)

    def __call__(self, obs, key=None, deterministic: bool | None = None, state=None):
        """The action for ``obs`` (``[obs_dim]`` or ``[batch_size, obs_dim]``); ``(action, state)`` if recurrent."""
        deterministic = self.deterministic if deterministic is None else deterministic
        if key is None:
            if not deterministic:
                raise ValueError("a stochastic policy needs a key")
            key = jax.random.PRNGKey(0)
        obs = jnp.asarray(obs, jnp.float32)
        if self.obs_stats is not None:
            obs = self.obs_stats.normalize(obs, 10.0)
        if not self.recurrent:
            return self.act(self.params, obs, key, deterministic)
        if state is None:
            state = self.initial_state(obs.shape[0] if obs.ndim > 1 else None)
        return self.act(self.params, obs, key, deterministic, state)


def load_policy(run_dir, member: int = 0, deterministic: bool = True, **choice) -> Policy:
    """The policy of member ``member`` (grid point ``member // num_seeds``, seed ``member % num_seeds``) of a run.

    ``choice`` picks another policy of that member where its program holds several: a quality-diversity run's
    ``cell=i`` (the elite in cell ``i``), ``descriptor=d`` (the elite of the cell ``d`` falls in) or
    ``distilled=d`` (DCG-ME's descriptor-conditioned actor for target ``d``); without it, its best elite.
    """
    run = load_run(run_dir)
    num_members = jax.tree.leaves(run.state)[0].shape[0]
    if not 0 <= member < num_members:
        raise ValueError(f"member must be in [0, {num_members}), got {member}")
    agent_state = jax.tree.map(lambda x: x[member], run.state.agent_state)
    params, env_state = policy_parts(run.agent, agent_state)
    if choice:
        if run.program.select_policy is None:
            raise ValueError(f"a {run.program.name} run holds one policy per member; {', '.join(sorted(choice))} "
                             "do not apply")
        params = run.program.select_policy(run, agent_state, **choice)
    return Policy(params, run.agent.act, find_obs_stats(env_state), run.env, member, deterministic,
                  run.agent.initial_policy_state)


def evaluate_run(run_dir, episodes: int, deterministic: bool = True, seed: int = 0) -> tuple[LoadedRun, np.ndarray]:
    """Evaluation returns ``[M, episodes]`` of every member's saved policy, in one compiled program."""
    run = load_run(run_dir, num_eval_episodes=episodes, deterministic=deterministic)
    num_members = jax.tree.leaves(run.state)[0].shape[0]
    keys = jax.random.split(jax.random.PRNGKey(seed), num_members)
    returns = jax.jit(jax.vmap(run.runner.evaluate))(run.state, run.hparams, keys)
    return run, np.asarray(returns)
