"""Quality-diversity tasks: an environment, a behaviour descriptor with its bounds, and a fitness offset.

A task's descriptor is a reduction of a per-step *state descriptor* over the
first episode of a rollout: its mean over the episode's steps (feet-contact
proportions) or its value at the episode's last step (a final position). The
tasks and their constants follow QDax's ``qdax.tasks.brax``:

============== ============ ==================================== ============= ===================
task           environment  descriptor                           bounds        reward offset / step
============== ============ ==================================== ============= ===================
DeceptiveMaze  jaxrl's maze final (x, y) of the point             [-1, 1]^2     (fitness offset 2)
hopper_uni     brax hopper  proportion of steps the foot touches [0, 1]        0.9
walker2d_uni   brax walker  ... each of the two feet touches     [0, 1]^2      1.413
ant_omni       brax ant     final (x, y) of the torso, clipped   [-30, 30]^2   3.0
============== ============ ==================================== ============= ===================

The fitness offset (reward offset x episode length for brax) keeps every
``fitness + offset`` non-negative, so QD-score never drops when a cell fills.
``ant_omni`` drops the forward-progress reward term (QDax's ``NoForwardRewardWrapper``):
with any direction counting, only survival and costs are rewarded.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.envs import make


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """How a registered task is built.

    Attributes:
        env: jaxrl environment name.
        descriptor: ``feet_contact`` | ``torso_xy`` | ``position``: the per-step state descriptor.
        reduce: ``mean`` over the episode's steps or ``final``: its value after the episode's last step.
        minval / maxval: descriptor bounds ``[D]``.
        reward_offset: per-step offset (brax, times the episode length) ...
        fitness_offset: ... or a whole-episode offset (the maze's reward comes once).
        episode_length: default steps per evaluation episode.
        feet: brax link names whose ground contact is recorded (``feet_contact``).
        drop_forward_reward: subtract brax's ``reward_forward`` term (omni tasks).
    """

    env: str
    descriptor: str
    reduce: str
    minval: tuple
    maxval: tuple
    reward_offset: float = 0.0
    fitness_offset: float = 0.0
    episode_length: int = 1000
    feet: tuple = ()
    drop_forward_reward: bool = False


QD_TASKS = {
    "DeceptiveMaze-v0": TaskSpec("DeceptiveMaze-v0", "position", "final", (-1.0, -1.0), (1.0, 1.0),
                                 fitness_offset=2.0, episode_length=100),
    "hopper_uni": TaskSpec("brax/hopper", "feet_contact", "mean", (0.0,), (1.0,), reward_offset=0.9,
                           episode_length=1000, feet=("foot",)),
    "walker2d_uni": TaskSpec("brax/walker2d", "feet_contact", "mean", (0.0, 0.0), (1.0, 1.0), reward_offset=1.413,
                             episode_length=1000, feet=("foot", "foot_left")),
    "ant_omni": TaskSpec("brax/ant", "torso_xy", "final", (-30.0, -30.0), (30.0, 30.0), reward_offset=3.0,
                         episode_length=1000, drop_forward_reward=True),
}


class QDTask(NamedTuple):
    """A built task.

    Attributes:
        env: the jaxrl environment (single); its ``Timestep.info["state_descriptor"]`` is the per-step
            state descriptor for brax tasks.
        state_descriptor: ``Timestep -> [D]`` after a step.
        reduce: ``mean`` | ``final``.
        minval / maxval: ``[D]`` float32 numpy descriptor bounds.
        fitness_offset: added to every fitness in the QD-score.
        episode_length: steps per evaluation episode.
    """

    name: str
    env: object
    state_descriptor: Callable
    reduce: str
    minval: np.ndarray
    maxval: np.ndarray
    fitness_offset: float
    episode_length: int

    @property
    def descriptor_dim(self) -> int:
        return int(self.minval.shape[0])

    def normalize(self, descriptors):
        """Descriptors scaled to ``[-1, 1]`` per dimension (the conditioning input of DCG-ME's networks)."""
        return 2.0 * (descriptors - self.minval) / (self.maxval - self.minval) - 1.0


def feet_contact_info(link_names, feet: tuple) -> Callable:
    """``brax_state -> {"state_descriptor": [F]}``: 1 where a foot link is in contact with the ground (QDax's
    ``FeetContactWrapper``: a contact of that link with penetration distance <= 0). Needs brax's ``debug=True``."""
    feet_idx = jnp.asarray([i for i, name in enumerate(link_names) if name in feet])

    def info(brax_state):
        contact = brax_state.pipeline_state.contact
        touching = (contact.link_idx[1][None, :] == feet_idx[:, None]) & (contact.dist[None, :] <= 0)
        return {"state_descriptor": jnp.any(touching, axis=-1).astype(jnp.float32)}

    return info


def torso_xy_info(link_names, minval, maxval) -> Callable:
    """``brax_state -> {"state_descriptor": [2]}``: the torso's (x, y), clipped to the bounds (QDax's ``XYPositionWrapper``)."""
    torso = list(link_names).index("torso")

    def info(brax_state):
        return {"state_descriptor": jnp.clip(brax_state.pipeline_state.x.pos[torso, :2], minval, maxval)}

    return info


def without_forward_reward(brax_state):
    return brax_state.reward - brax_state.metrics["reward_forward"]


def make_task(name: str, episode_length: int = 0, backend: str = "spring") -> QDTask:
    """Builds registered task ``name``; ``episode_length`` 0 keeps the task's default; ``backend`` is brax's pipeline."""
    spec = QD_TASKS[name]
    length = int(episode_length or spec.episode_length)
    minval, maxval = np.asarray(spec.minval, np.float32), np.asarray(spec.maxval, np.float32)
    if spec.descriptor == "position":
        env = make(spec.env, max_steps=length)
        state_descriptor = lambda ts: ts.final_obs  # noqa: E731  the point's position after the step
    else:
        from brax import envs as brax_envs  # the link names decide which contacts count

        base = spec.env.split("/", 1)[1]
        link_names = brax_envs.get_environment(base, backend=backend).sys.link_names
        kwargs = dict(backend=backend, episode_length=length)
        if spec.descriptor == "feet_contact":
            kwargs.update(debug=True, step_info=feet_contact_info(link_names, spec.feet))
        else:
            kwargs.update(step_info=torso_xy_info(link_names, minval, maxval))
        if spec.drop_forward_reward:
            kwargs["reward_fn"] = without_forward_reward
        env = make(spec.env, **kwargs)
        state_descriptor = lambda ts: ts.info["state_descriptor"]  # noqa: E731
    offset = spec.fitness_offset + spec.reward_offset * length
    return QDTask(name, env, state_descriptor, spec.reduce, minval, maxval, float(offset), length)


class Transitions(NamedTuple):
    """One rollout's steps, leaves ``[..., T, ...]``; ``alive`` marks the steps of the first episode."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array  # the observation the step reached (the true final one at an episode's end)
    terminated: jax.Array
    alive: jax.Array


class Evaluation(NamedTuple):
    """What evaluating a batch of policies gives.

    Attributes:
        fitness: ``[N]`` return of each first episode; descriptor: ``[N, D]``;
        transitions: leaves ``[N, T, ...]`` (for the replay buffer of gradient emitters).
    """

    fitness: jax.Array
    descriptor: jax.Array
    transitions: Transitions


def make_evaluate_batch(task: QDTask, apply_policy: Callable) -> Callable:
    """``evaluate(reset_key, params [N, ...]) -> Evaluation``: one episode per policy, all from the state
    ``reset_key`` resets to (QDax's deterministic scoring: a fixed start, so a policy's fitness and
    descriptor are a function of its parameters and an elite's place is not luck).

    Args:
        apply_policy: ``(params, obs [obs_dim]) -> action [A]``.
    """
    env, length = task.env, task.episode_length
    params0 = env.default_params

    def one(params, reset_key):
        state, obs = env.reset(reset_key, params0)

        def step(carry, step_key):
            state, obs, alive = carry
            action = apply_policy(params, obs)
            state, ts = env.step(step_key, state, action, params0)
            out = (Transitions(obs, action, ts.reward, ts.final_obs, ts.terminated, alive), task.state_descriptor(ts))
            return (state, ts.obs, alive & ~ts.done), out

        keys = jax.random.split(jax.random.fold_in(reset_key, 1), length)
        _, (tr, state_desc) = jax.lax.scan(step, (state, obs, jnp.ones((), bool)), keys)
        weights = tr.alive.astype(jnp.float32)
        fitness = jnp.sum(tr.reward * weights)
        if task.reduce == "mean":
            descriptor = jnp.sum(state_desc * weights[:, None], 0) / jnp.maximum(jnp.sum(weights), 1.0)
        else:  # the value after the first episode's last step
            last = jnp.maximum(jnp.sum(tr.alive) - 1, 0)
            descriptor = state_desc[last]
        return fitness, descriptor, tr

    def evaluate(reset_key, population_params) -> Evaluation:
        fitness, descriptor, tr = jax.vmap(one, in_axes=(0, None))(population_params, reset_key)
        return Evaluation(fitness, descriptor, tr)

    return evaluate
