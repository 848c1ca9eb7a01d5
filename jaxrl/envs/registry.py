"""``jaxrl.envs.make(name)``: one registry for gymnax, brax and probe environments.

Names:
    * any gymnax id (``CartPole-v1``, ``Breakout-MinAtar``, ``Pendulum-v1`` ...)
    * ``brax/<name>`` (``brax/hopper``, ``brax/ant``, ``brax/inverted_pendulum`` ...)
    * ``probe/<name>`` (see :mod:`jaxrl.envs.probes`)
    * partially observable variants of gymnax tasks (``MaskedCartPole-v1``, see ``MASKED_ENVS``)
    * ``<suite>/<id>`` of the optional suites (``xminigrid/MiniGrid-DoorKey-8x8``; :mod:`jaxrl.envs.suites`)
    * sparse-goal variants (``MountainCarSparse-v0``: 1 at the goal, 0 otherwise; see ``GOAL_REWARD_ENVS``)
"""
from __future__ import annotations

import difflib

import gymnax

from jaxrl.envs.core import Box, Env
from jaxrl.envs.gymnax_adapter import GymnaxEnv
from jaxrl.envs.probes import PROBES
from jaxrl.envs.suites import is_suite_name, make_suite_env, suite_names
from jaxrl.envs.wrappers import FlattenObservation, GoalReward, MaskObservation, RescaleAction

BRAX_ENVS = (
    "ant",
    "halfcheetah",
    "hopper",
    "humanoid",
    "humanoidstandup",
    "inverted_pendulum",
    "inverted_double_pendulum",
    "pusher",
    "reacher",
    "swimmer",
    "walker2d",
)


# Partially observable variants: name -> (gymnax id, observation features kept).
# MaskedCartPole-v1 sees cart position and pole angle, not their velocities (POPGym's stateless CartPole).
MASKED_ENVS = {"MaskedCartPole-v1": ("CartPole-v1", (0, 2))}
# Sparse-goal variants: name -> gymnax id whose reward becomes 1 at a terminal state, 0 otherwise.
GOAL_REWARD_ENVS = {"MountainCarSparse-v0": "MountainCar-v0"}

_CUSTOM: dict = {}

# gymnax ids whose construction downloads a data set: jaxrl never fetches data at run time.
DOWNLOADING_GYMNAX_ENVS = ("MNISTBandit-bsuite",)


def register(name: str, factory) -> None:
    """Makes ``factory(**kwargs) -> Env`` available as ``make(name)`` (and ``--env name`` in-process)."""
    _CUSTOM[name] = factory


def registered_envs() -> list[str]:
    """Every name :func:`make` accepts."""
    gymnax_ids = [n for n in gymnax.registered_envs if n not in DOWNLOADING_GYMNAX_ENVS]
    return gymnax_ids + [f"brax/{n}" for n in BRAX_ENVS] + [f"probe/{n}" for n in PROBES] + list(MASKED_ENVS) + list(GOAL_REWARD_ENVS) + suite_names() + list(_CUSTOM)


class UnknownEnvironmentError(ValueError):
    pass


def unknown_env_message(name: str) -> str:
    close = difflib.get_close_matches(name, registered_envs(), n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return f"unknown environment {name!r}{hint}; see jaxrl.envs.registered_envs()"


def make_raw(name: str, **kwargs) -> Env:
    """The adapted environment without jaxrl's standard wrappers."""
    if name in _CUSTOM:
        return _CUSTOM[name](**kwargs)
    if is_suite_name(name):
        if name not in suite_names():
            raise UnknownEnvironmentError(unknown_env_message(name))
        return make_suite_env(name, **kwargs)
    if name.startswith("brax/"):
        brax_name = name.split("/", 1)[1]
        if brax_name not in BRAX_ENVS:
            raise UnknownEnvironmentError(unknown_env_message(name))
        from jaxrl.envs.brax_adapter import BraxEnv

        return BraxEnv(brax_name, **kwargs)
    if name.startswith("probe/"):
        probe = PROBES.get(name.split("/", 1)[1])
        if probe is None:
            raise UnknownEnvironmentError(unknown_env_message(name))
        return probe(**kwargs)
    if name in MASKED_ENVS:
        base, keep = MASKED_ENVS[name]
        return MaskObservation(GymnaxEnv(base, **kwargs), keep)
    if name in GOAL_REWARD_ENVS:
        return GoalReward(GymnaxEnv(GOAL_REWARD_ENVS[name], **kwargs))
    if name in DOWNLOADING_GYMNAX_ENVS:
        raise UnknownEnvironmentError(f"environment {name!r} downloads a data set when built, which jaxrl does not do at run time")
    if name in gymnax.registered_envs:
        return GymnaxEnv(name, **kwargs)
    raise UnknownEnvironmentError(unknown_env_message(name))


def make(name: str, **kwargs) -> Env:
    """Makes ``name`` with jaxrl's standard single-env wrappers.

    Observations are flattened to ``[obs_dim]`` float32; bounded continuous
    actions are taken in ``[-1, 1]`` and rescaled to the env's bounds.
    Vectorisation, episode statistics and normalisation are added by the agent
    (:func:`jaxrl.envs.make_vec_env`).
    """
    env = FlattenObservation(make_raw(name, **kwargs))
    space = env.action_space(env.default_params)
    if isinstance(space, Box) and space.is_bounded:
        low, high = space.low, space.high
        if not ((low == -1).all() and (high == 1).all()):
            env = RescaleAction(env)
    return env
