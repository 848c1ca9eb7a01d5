"""MuJoCo Playground (Zakka et al. 2025) behind the Env protocol: ``playground/CartpoleBalance``,
``playground/CheetahRun``, ``playground/Go1JoystickFlatTerrain`` ...

Playground's environments are MJX environments: ``reset(key) -> State`` and ``step(State, action) -> State``, with
``State.done`` set by the task's own termination (a fallen robot, a NaN) and no time limit and no auto-reset (its
training wrappers add both, folding the time limit into ``done``). The adapter counts steps itself: an episode
that reaches ``episode_length`` (the task's config, 1000 for every task here) is *truncated*, an episode whose
``done`` is set is *terminated*, and the observation the episode ended in is returned as ``final_obs`` before
jaxrl's auto-reset. ``action_repeat`` (1 for every task here) repeats an action inside one step, summing rewards.

Physics runs on MJX's pure-JAX implementation (``impl="jax"``, the default here, runs on CPU; Playground's own
default is ``warp``, NVIDIA only). Actions are in ``[-1, 1]`` (the tasks' control range). Locomotion tasks
observe a dict (``state`` for the policy, ``privileged_state`` for an asymmetric critic); jaxrl's agents take one
observation, the policy's ``state``.

Locomotion robots load their meshes from MuJoCo Menagerie, which Playground clones from GitHub at run time.
jaxrl never downloads at run time: when no menagerie checkout is present, the robot's meshes that are only drawn
(visual geoms: no contact, bodies with explicit inertials) are given a placeholder mesh. The dynamics do not
depend on them (``tests/test_suites.py`` rolls the same actions out with two different placeholders and gets the
same trajectory); a task whose dynamics would depend on a missing mesh is refused with a one-line error.
"""
from __future__ import annotations

import contextlib
import importlib
import re
import struct
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from mujoco_playground._src import dm_control_suite, locomotion, mjx_env

from jaxrl.envs.core import Box, Env, auto_reset, pooled_auto_reset
from jaxrl.types import Timestep

IMPLEMENTATIONS = ("jax", "warp")
DM_CONTROL_TASKS = tuple(dm_control_suite.ALL_ENVS)
# Locomotion tasks whose robots simulate the same without their menagerie meshes (checked by the test suite).
LOCOMOTION_TASKS = ("Go1JoystickFlatTerrain", "Go1JoystickRoughTerrain", "Go1Getup", "Go1Handstand",
                    "Go1Footstand", "G1JoystickFlatTerrain", "G1JoystickRoughTerrain",
                    "BerkeleyHumanoidJoystickFlatTerrain", "BerkeleyHumanoidJoystickRoughTerrain")
# The module whose ``get_assets`` loads a locomotion robot: task-name prefix -> module.
_ROBOT_MODULES = {"Go1": "go1", "G1": "g1", "BerkeleyHumanoid": "berkeley_humanoid"}


class PlaygroundState(NamedTuple):
    env_state: object  # Playground's mjx_env.State
    time: jax.Array  # steps taken in the current episode


def policy_observation(obs) -> jax.Array:
    """A Playground observation (an array, or a dict whose ``state`` entry is the policy's) -> the policy's array."""
    return obs["state"] if isinstance(obs, dict) else obs


class PlaygroundEnv(Env):
    """One Playground task with its time limit as truncation and jaxrl's auto-reset.

    Args:
        task: a DM Control suite or locomotion task name (``CartpoleBalance``, ``Go1JoystickFlatTerrain``).
        impl: MJX implementation, ``jax`` (any device) or ``warp`` (NVIDIA GPUs).
        episode_length: time limit in steps; the task's config when None.
        reset_ratio: 1 (the default) draws every finished env a fresh initial state, exactly; ``N > 1`` draws
            ``ceil(num_envs / N)`` a step under ``vmap`` and shares them out (:func:`jaxrl.envs.core.pooled_auto_reset`),
            cheaper where a reset costs much more than a step. Envs that finish together (every DM Control episode
            ends at the time limit on the same step) then share initial states.
        **config_overrides: further entries of the task's config (``ctrl_dt``, ``reward_config`` ...).
    """

    def __init__(self, task: str, impl: str = "jax", episode_length: int | None = None, reset_ratio: int = 1,
                 **config_overrides):
        if int(reset_ratio) < 1:
            raise ValueError(f"reset_ratio must be at least 1, got {reset_ratio}")
        self.reset_ratio = int(reset_ratio)
        if impl not in IMPLEMENTATIONS:
            raise ValueError(f"impl must be one of {', '.join(IMPLEMENTATIONS)}, got {impl!r}")
        if impl == "warp" and jax.default_backend() != "gpu":
            raise ValueError(f"impl warp runs on NVIDIA GPUs only (jax's backend here is {jax.default_backend()}); use impl=jax")
        self.task = task
        overrides = {"impl": impl, **config_overrides}
        if task in DM_CONTROL_TASKS:
            self._env = dm_control_suite.load(task, config_overrides=overrides)
            config = dm_control_suite.get_default_config(task)
        else:
            with menagerie_free_assets(task):
                self._env = locomotion._envs[task](config=locomotion.get_default_config(task),
                                                   config_overrides=overrides)
            if not has_menagerie():
                check_meshes_only_drawn(self._env.mj_model, task)
            config = locomotion.get_default_config(task)
        config = getattr(self._env, "_config", config)  # the task's config with the overrides applied
        self.episode_length = int(episode_length or config.get("episode_length", 1000))
        self.action_repeat = int(config.get("action_repeat", 1))
        sizes = self._env.observation_size
        self._obs_shape = tuple(int(n) for n in np.atleast_1d(sizes["state"] if isinstance(sizes, dict) else sizes))
        self._action_size = int(self._env.action_size)

    @property
    def name(self):  # type: ignore[override]
        return "playground/" + self.task

    def reset(self, key, params):
        env_state = self._env.reset(key)
        return PlaygroundState(env_state, jnp.zeros((), jnp.int32)), policy_observation(env_state.obs)

    def _repeat_step(self, env_state, action):
        """``action_repeat`` Playground steps (stopping at a termination); rewards summed."""
        def one(carry, _):
            env_state, total = carry
            nxt = self._env.step(env_state, action)
            keep = env_state.done > 0.5  # already terminated: stay
            nxt = jax.tree.map(lambda a, b: jnp.where(keep, a, b), env_state, nxt)
            return (nxt, total + jnp.where(keep, 0.0, nxt.reward)), None

        if self.action_repeat == 1:
            nxt = self._env.step(env_state, action)
            return nxt, nxt.reward
        (nxt, total), _ = jax.lax.scan(one, (env_state, jnp.zeros(())), None, length=self.action_repeat)
        return nxt, total

    def step(self, key, state, action, params):
        nxt, reward = self._repeat_step(state.env_state, jnp.asarray(action, jnp.float32))
        time = state.time + 1
        terminated = jnp.asarray(nxt.done) > 0.5
        truncated = (time >= self.episode_length) & ~terminated
        ended = terminated | truncated
        final_obs = policy_observation(nxt.obs)
        # Playground copies ``done`` into the state; clear it so a kept state steps on.
        stepped = PlaygroundState(nxt.replace(done=jnp.zeros_like(nxt.done)), time)
        if self.reset_ratio == 1:
            state, obs = auto_reset(ended, self.reset(key, params), (stepped, final_obs))
        else:
            state, obs = pooled_auto_reset(self.reset, self.reset_ratio)(ended, key, params, (stepped, final_obs))
        return state, Timestep(obs=obs, reward=jnp.asarray(reward, jnp.float32), terminated=terminated,
                               truncated=truncated, final_obs=final_obs, info={})

    def observation_space(self, params):
        inf = np.full(self._obs_shape, np.inf, np.float32)
        return Box(low=-inf, high=inf, shape=self._obs_shape)

    def action_space(self, params):
        one = np.ones((self._action_size,), np.float32)
        return Box(low=-one, high=one, shape=(self._action_size,))

    def max_episode_steps(self, params):
        return self.episode_length


# ---------------------------------------------------------------------------------------------------------------
# Locomotion robots without a menagerie checkout
# ---------------------------------------------------------------------------------------------------------------

def placeholder_mesh(file_name: str, size: float = 0.01) -> bytes:
    """A tetrahedron of edge ~``size`` m in the format ``file_name``'s extension names (binary STL or OBJ)."""
    vertices = np.array([[0, 0, 0], [size, 0, 0], [0, size, 0], [0, 0, size]], np.float32)
    faces = [(0, 2, 1), (0, 1, 3), (0, 3, 2), (1, 2, 3)]
    if file_name.lower().endswith(".obj"):
        lines = [f"v {x} {y} {z}" for x, y, z in vertices] + [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces]
        return ("\n".join(lines) + "\n").encode()
    body = b"".join(struct.pack("<3f", 0, 0, 0) + vertices[list(face)].tobytes() + b"\0\0" for face in faces)
    return b"\0" * 80 + struct.pack("<I", len(faces)) + body


def referenced_meshes(xml_texts) -> set[str]:
    """The base names of every ``<mesh file=...>`` in the given MJCF texts."""
    names = set()
    for text in xml_texts:
        for tag in re.findall(r"<mesh\b[^>]*>", text):
            found = re.search(r'\bfile="([^"]+)"', tag)
            if found:
                names.add(found.group(1).rsplit("/", 1)[-1])
    return names


def robot_module(task: str):
    """The Playground module whose ``get_assets`` loads ``task``'s robot."""
    prefix = next(p for p in sorted(_ROBOT_MODULES, key=len, reverse=True) if task.startswith(p))
    return importlib.import_module(f"mujoco_playground._src.locomotion.{_ROBOT_MODULES[prefix]}.base")


@contextlib.contextmanager
def menagerie_free_assets(task: str, mesh_size: float = 0.01):
    """While open, ``task``'s robot loads with placeholder meshes for the menagerie files that are absent.

    Nothing is fetched; with a menagerie checkout in place (Playground's ``MENAGERIE_PATH``) the real meshes load.
    """
    module = robot_module(task)
    original = module.get_assets

    def with_placeholders():
        assets = original()
        xmls = [value.decode(errors="ignore") for name, value in assets.items() if name.endswith(".xml")]
        for mesh in referenced_meshes(xmls) - set(assets):
            assets[mesh] = placeholder_mesh(mesh, mesh_size)
        return assets

    module.get_assets = with_placeholders
    try:
        yield
    finally:
        module.get_assets = original


def check_meshes_only_drawn(mj_model, task: str) -> None:
    """Refuses (ValueError) a robot whose mesh geoms collide: its dynamics would depend on the absent meshes."""
    mesh = mj_model.geom_type == 7  # mjGEOM_MESH
    if np.any((mj_model.geom_contype[mesh] | mj_model.geom_conaffinity[mesh]) > 0):
        raise ValueError(f"{task} collides with menagerie meshes, which are not installed; place a MuJoCo "
                         f"Menagerie checkout at {mjx_env.MENAGERIE_PATH.name} in Playground's external_deps")


def has_menagerie() -> bool:
    return mjx_env.MENAGERIE_PATH.exists()


def make(task: str, **kwargs) -> PlaygroundEnv:
    return PlaygroundEnv(task, **kwargs)
