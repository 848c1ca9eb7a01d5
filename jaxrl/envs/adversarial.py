"""Two-player environments for robust adversarial RL (RARL, Pinto et al. 2017; QARL, Reddi et al. 2024).

A two-player env takes one joint action ``[A_p + A_a]`` in ``[-1, 1]``: the
protagonist's ``A_p`` features first, then the adversary's ``A_a``, which
are forces on a body (:func:`split_action`). The game is zero-sum: the
protagonist's reward is ``Timestep.reward`` and ``info["adversary_reward"]`` is
its negation. The adversary's force budget (``adversary_force``, Newtons) is
fixed when the env is built; 0 gives the task without an adversary.

As in QARL's dm_control tasks, the adversary pushes the pole's centre of mass
with a 2-D force ``(F_x, F_y)`` (gymnax's own dynamics otherwise, so the
physics parameters are gymnax's ``EnvParams`` and the CartPole level space of
:mod:`jaxrl.envs.levels.classic` gives held-out physics):

* ``CartPole-v1``: the protagonist's force ``a * force_mag`` on the cart
  (continuous CartPole); the generalised forces of the push are ``F_x`` on
  the cart coordinate and ``l (F_x cos th - F_y sin th)`` on the pole angle
  (``l``: gymnax's half pole length, the centre of mass).
* ``Pendulum-v1``: the protagonist's torque ``a * max_torque``; the push adds
  the torque ``(l / 2) (F_x cos th - F_y sin th)``; the control cost counts
  the protagonist's torque only.

:class:`AdversaryTemperature` appends the adversary's entropy temperature,
drawn per episode, to the observation (QARL's state-variable concatenation:
both players see it) and reports each finished episode's temperature and
discounted return for the curriculum's teacher.
"""
from __future__ import annotations

from typing import NamedTuple

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import spaces as gspaces
from gymnax.environments.classic_control.cartpole import CartPole, EnvState as CartPoleState
from gymnax.environments.classic_control.pendulum import EnvState as PendulumState, Pendulum, angle_normalize

from jaxrl.envs.core import Box, Env, Wrapper
from jaxrl.envs.gymnax_adapter import GymnaxEnv
from jaxrl.envs.levels.classic import cartpole_held_out_levels

ADVERSARY_ACTION_DIM = 2  # a 2-D force (F_x, F_y) on the pole's centre of mass

# Default force budgets (Newtons per axis): QARL's dm_control tasks use 2 (cartpole), 1 (pendulum) and 1 (hopper's
# foot); gymnax's CartPole pole weighs 0.1 kg, so 0.5 N already moves it as much as a third of gravity does; brax's
# hopper foot weighs 5.3 kg (the whole hopper 15.8 kg), against which 1 N is 2% of the foot's weight: 10 N there.
DEFAULT_ADVERSARY_FORCE = {"CartPole-v1": 0.5, "Pendulum-v1": 1.0, "brax/hopper": 10.0}


def split_action(action: jax.Array, protagonist_dim: int) -> tuple[jax.Array, jax.Array]:
    """``[..., A_p + A_a] -> ([..., A_p], [..., A_a])``: the protagonist's and the adversary's parts."""
    return action[..., :protagonist_dim], action[..., protagonist_dim:]


class _AdversarialCartPole(CartPole):
    """gymnax CartPole with a continuous force on the cart and an adversary's push on the pole."""

    def __init__(self, adversary_force: float):
        super().__init__()
        self.adversary_force = float(adversary_force)

    def step_env(self, key, state: CartPoleState, action, params):
        prev_terminal = self.is_terminal(state, params)
        action = jnp.clip(action, -1.0, 1.0)
        force = params.force_mag * action[0]
        push_x, push_y = self.adversary_force * action[1], self.adversary_force * action[2]
        cos, sin = jnp.cos(state.theta), jnp.sin(state.theta)
        # Barto's equations (gymnax) with the push's generalised forces: push_x on the cart coordinate and
        # length * (push_x cos - push_y sin) on the angle; the latter enters divided by masspole * length.
        temp = (force + push_x + params.polemass_length * state.theta_dot**2 * sin) / params.total_mass
        thetaacc = (params.gravity * sin - cos * temp + (push_x * cos - push_y * sin) / params.masspole) / (
            params.length * (4.0 / 3.0 - params.masspole * cos**2 / params.total_mass))
        xacc = temp - params.polemass_length * thetaacc * cos / params.total_mass
        state = CartPoleState(
            x=state.x + params.tau * state.x_dot,
            x_dot=state.x_dot + params.tau * xacc,
            theta=state.theta + params.tau * state.theta_dot,
            theta_dot=state.theta_dot + params.tau * thetaacc,
            time=state.time + 1,
        )
        done = self.is_terminal(state, params)
        reward = 1.0 - prev_terminal
        return (jax.lax.stop_gradient(self.get_obs(state)), jax.lax.stop_gradient(state), jnp.asarray(reward, jnp.float32),
                done, {"discount": self.discount(state, params)})

    def action_space(self, params=None):
        return gspaces.Box(-1.0, 1.0, (1 + ADVERSARY_ACTION_DIM,), jnp.float32)


class _AdversarialPendulum(Pendulum):
    """gymnax Pendulum with the protagonist's torque and an adversary's push on the pole."""

    def __init__(self, adversary_force: float):
        super().__init__()
        self.adversary_force = float(adversary_force)

    def step_env(self, key, state: PendulumState, action, params):
        action = jnp.clip(action, -1.0, 1.0)
        u = params.max_torque * action[0]
        push_x, push_y = self.adversary_force * action[1], self.adversary_force * action[2]
        push_torque = 0.5 * params.l * (push_x * jnp.cos(state.theta) - push_y * jnp.sin(state.theta))
        reward = -(angle_normalize(state.theta) ** 2 + 0.1 * state.theta_dot**2 + 0.001 * u**2)
        newthdot = state.theta_dot + (3 * params.g / (2 * params.l) * jnp.sin(state.theta)
                                      + 3.0 / (params.m * params.l**2) * (u + push_torque)) * params.dt
        newthdot = jnp.clip(newthdot, -params.max_speed, params.max_speed)
        state = PendulumState(theta=state.theta + newthdot * params.dt, theta_dot=newthdot, last_u=u, time=state.time + 1)
        done = self.is_terminal(state, params)
        return (jax.lax.stop_gradient(self.get_obs(state)), jax.lax.stop_gradient(state), jnp.asarray(reward, jnp.float32),
                done, {"discount": self.discount(state, params)})

    def action_space(self, params=None):
        return gspaces.Box(-1.0, 1.0, (1 + ADVERSARY_ACTION_DIM,), jnp.float32)


TWO_PLAYER_DYNAMICS = {"CartPole-v1": _AdversarialCartPole, "Pendulum-v1": _AdversarialPendulum}

PENDULUM_HELD_OUT = {
    "Default": {},
    "Heavy": {"m": 1.3},
    "Long": {"l": 1.25},
    "HighGravity": {"g": 13.0},
    "Light": {"m": 0.7},
}


class TwoPlayerEnv(GymnaxEnv):
    """A two-player gymnax task behind the :class:`~jaxrl.envs.core.Env` protocol (see the module docstring).

    Attributes:
        protagonist_dim: ``A_p``; adversary_dim: ``A_a``; adversary_force: the force budget per axis (N).
    """

    def __init__(self, env_id: str, adversary_force: float | None = None):
        if env_id not in TWO_PLAYER_DYNAMICS:
            raise ValueError(f"no two-player version of {env_id!r}; choose from {', '.join(TWO_PLAYER_DYNAMICS)}")
        force = DEFAULT_ADVERSARY_FORCE[env_id] if adversary_force is None else float(adversary_force)
        self.env_id = env_id
        self._env = TWO_PLAYER_DYNAMICS[env_id](force)
        self._default_params = gymnax.make(env_id)[1]
        self.adversary_force = force
        self.protagonist_dim = 1
        self.adversary_dim = ADVERSARY_ACTION_DIM

    def step(self, key, state, action, params):
        state, ts = super().step(key, state, action, params)
        return state, ts._replace(info={"adversary_reward": -ts.reward})  # zero-sum

    def held_out_physics(self) -> tuple[tuple[str, ...], object]:
        """``(names, params [L, ...])``: held-out physics (the first, ``Default``, is the nominal task)."""
        if self.env_id == "CartPole-v1":
            return cartpole_held_out_levels()
        names = tuple(PENDULUM_HELD_OUT)
        levels = [self._default_params.replace(**PENDULUM_HELD_OUT[n]) for n in names]
        return names, jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *levels)


class BraxPhysics(NamedTuple):
    """A brax task's physics as env params (scalars, traced): the pushed robot's torso mass and every geom's
    tangential friction, as multiples of the model's (QARL's two robustness axes on its MuJoCo tasks)."""

    torso_mass_scale: jax.Array
    friction_scale: jax.Array


BRAX_HELD_OUT = {
    "Default": (1.0, 1.0),
    "HeavyTorso": (1.5, 1.0),
    "LightTorso": (0.5, 1.0),
    "Slippery": (1.0, 0.5),
    "Grippy": (1.0, 1.5),
}
BRAX_PUSHED_BODY = {"hopper": "foot"}  # QARL's hopper adversary pushes the foot


class TwoPlayerBraxEnv(Env):
    """A brax task (MuJoCo physics through brax's ``mjx`` backend) whose adversary pushes a body with a force
    ``(F_x, F_z)`` at its centre of mass, as QARL's dm_control tasks do (MuJoCo's ``xfrc_applied``, kept through
    the frames of one env step). Params are :class:`BraxPhysics`; the time limit is a truncation and the env
    auto-resets (:class:`~jaxrl.envs.brax_adapter.BraxEnv` does the rest). Rewards and observations are brax's
    (its control cost counts the protagonist's action only)."""

    def __init__(self, task: str, adversary_force: float | None = None, episode_length: int = 1000):
        from jaxrl.envs.brax_adapter import BraxEnv

        if task not in BRAX_PUSHED_BODY:
            raise ValueError(f"no two-player version of brax/{task}; choose from {', '.join(BRAX_PUSHED_BODY)}")
        import mujoco

        self.env_id = f"brax/{task}"
        self._brax = BraxEnv(task, backend="mjx", episode_length=episode_length)
        sys = self._brax.sys
        self._sys = sys
        self._body = mujoco.mj_name2id(sys.mj_model, mujoco.mjtObj.mjOBJ_BODY, BRAX_PUSHED_BODY[task])
        self._torso = mujoco.mj_name2id(sys.mj_model, mujoco.mjtObj.mjOBJ_BODY, "torso")
        self.adversary_force = float(DEFAULT_ADVERSARY_FORCE[self.env_id] if adversary_force is None else adversary_force)
        self.protagonist_dim = int(self._brax.action_space(None).shape[0])
        self.adversary_dim = ADVERSARY_ACTION_DIM

    name = property(lambda self: self.env_id)

    @property
    def default_params(self) -> BraxPhysics:
        return BraxPhysics(jnp.float32(1.0), jnp.float32(1.0))

    def _physics(self, params: BraxPhysics):
        sys = self._sys
        return sys.replace(body_mass=sys.body_mass.at[self._torso].multiply(params.torso_mass_scale),
                           geom_friction=sys.geom_friction.at[:, 0].multiply(params.friction_scale))

    def _with_physics(self, params, fn):
        """``fn()`` with the brax env's system set to ``params``' physics for the trace (as brax's own
        domain-randomisation wrapper does), restored afterwards."""
        unwrapped = self._brax._env.unwrapped
        try:
            unwrapped.sys = self._physics(params)
            return fn()
        finally:
            unwrapped.sys = self._sys

    def reset(self, key, params):
        return self._with_physics(params, lambda: self._brax.reset(key, None))

    def step(self, key, state, action, params):
        action = jnp.clip(action, -1.0, 1.0)
        protagonist, adversary = split_action(action, self.protagonist_dim)
        force = self.adversary_force * adversary
        pipeline = state.brax_state.pipeline_state
        xfrc = jnp.zeros_like(pipeline.xfrc_applied).at[self._body, 0].set(force[0]).at[self._body, 2].set(force[1])
        pushed = state._replace(brax_state=state.brax_state.replace(pipeline_state=pipeline.replace(xfrc_applied=xfrc)))
        state, ts = self._with_physics(params, lambda: self._brax.step(key, pushed, protagonist, None))
        return state, ts._replace(info={"adversary_reward": -ts.reward})

    def observation_space(self, params):
        return self._brax.observation_space(None)

    def action_space(self, params):
        one = np.ones((self.protagonist_dim + self.adversary_dim,), np.float32)
        return Box(low=-one, high=one, shape=one.shape)

    def max_episode_steps(self, params):
        return self._brax.max_episode_steps(None)

    def held_out_physics(self) -> tuple[tuple[str, ...], BraxPhysics]:
        names = tuple(BRAX_HELD_OUT)
        values = np.asarray([BRAX_HELD_OUT[n] for n in names], np.float32)
        return names, BraxPhysics(jnp.asarray(values[:, 0]), jnp.asarray(values[:, 1]))


class TemperatureParams(NamedTuple):
    """Where each episode's adversary temperature comes from (leaves are scalars, traced).

    ``use_fixed``: every episode gets ``fixed``; else ``Gamma(concentration, rate)`` (mean ``concentration / rate``).
    """

    concentration: jax.Array
    rate: jax.Array
    fixed: jax.Array
    use_fixed: jax.Array


def fixed_temperature(value: float) -> TemperatureParams:
    return TemperatureParams(jnp.float32(1.0), jnp.float32(1.0), jnp.float32(value), jnp.asarray(True))


def gamma_temperature(concentration, rate) -> TemperatureParams:
    return TemperatureParams(jnp.asarray(concentration, jnp.float32), jnp.asarray(rate, jnp.float32), jnp.float32(0.0),
                             jnp.asarray(False))


def draw_temperature(key, params: TemperatureParams) -> jax.Array:
    """One temperature (scalar float32) from ``params``."""
    drawn = jax.random.gamma(key, params.concentration) / params.rate
    return jnp.where(params.use_fixed, params.fixed, drawn).astype(jnp.float32)


class ContextParams(NamedTuple):
    """Params of :class:`AdversaryTemperature`: the task's own params, the temperature source, and the discount of
    the returns it reports to the teacher."""

    env: object
    temperature: TemperatureParams
    gamma: jax.Array


class TemperatureState(NamedTuple):
    env_state: object
    temperature: jax.Array  # this episode's adversary temperature
    discounted_return: jax.Array  # of the protagonist's rewards so far in this episode
    discount: jax.Array  # gamma ** t


class AdversaryTemperature(Wrapper):
    """Draws the adversary's temperature at every episode start and appends it to the observation.

    ``obs [obs_dim + 1]``: the last feature is the episode's temperature (the final observation of an episode
    carries that episode's, the first observation of the next one its own). ``info`` adds
    ``episode_temperature`` and ``episode_discounted_return`` (the protagonist's, discounted with
    ``params.gamma``), meaningful where the episode ended.
    """

    def __init__(self, env, gamma: float = 0.99, temperature: TemperatureParams | None = None):
        super().__init__(env)
        self._default = ContextParams(env.default_params, temperature or fixed_temperature(0.0), jnp.float32(gamma))

    @property
    def default_params(self):
        return self._default

    def with_temperature(self, temperature: TemperatureParams, env_params=None) -> ContextParams:
        """The default params with another temperature source (and optionally other task params)."""
        env_params = self._default.env if env_params is None else env_params
        return self._default._replace(env=env_params, temperature=temperature)

    def reset(self, key, params: ContextParams):
        key_env, key_temp = jax.random.split(key)
        env_state, obs = self.env.reset(key_env, params.env)
        temperature = draw_temperature(key_temp, params.temperature)
        state = TemperatureState(env_state, temperature, jnp.float32(0.0), jnp.float32(1.0))
        return state, jnp.append(obs, temperature)

    def step(self, key, state: TemperatureState, action, params: ContextParams):
        key_env, key_temp = jax.random.split(key)
        env_state, ts = self.env.step(key_env, state.env_state, action, params.env)
        discounted = state.discounted_return + state.discount * ts.reward
        next_temperature = jnp.where(ts.done, draw_temperature(key_temp, params.temperature), state.temperature)
        info = dict(ts.info, episode_temperature=state.temperature, episode_discounted_return=discounted)
        new_state = TemperatureState(env_state, next_temperature, jnp.where(ts.done, 0.0, discounted),
                                     jnp.where(ts.done, 1.0, state.discount * params.gamma))
        return new_state, ts._replace(obs=jnp.append(ts.obs, next_temperature),
                                      final_obs=jnp.append(ts.final_obs, state.temperature), info=info)

    def observation_space(self, params):
        space = self.env.observation_space(params.env)
        low = np.append(np.broadcast_to(space.low, space.shape), 0.0).astype(np.float32)
        high = np.append(np.broadcast_to(space.high, space.shape), np.inf).astype(np.float32)
        return Box(low=low, high=high, shape=low.shape)

    def action_space(self, params):
        return self.env.action_space(params.env)

    def max_episode_steps(self, params):
        return self.env.max_episode_steps(params.env)


TWO_PLAYER_ENVS = (*TWO_PLAYER_DYNAMICS, *(f"brax/{t}" for t in BRAX_PUSHED_BODY))


def make_two_player(env_id: str, adversary_force: float | None = None, gamma: float = 0.99) -> AdversaryTemperature:
    """``env_id``'s two-player task (one of :data:`TWO_PLAYER_ENVS`) with the temperature observation (default
    params: temperature fixed at 0)."""
    if env_id.startswith("brax/"):
        return AdversaryTemperature(TwoPlayerBraxEnv(env_id.split("/", 1)[1], adversary_force), gamma)
    return AdversaryTemperature(TwoPlayerEnv(env_id, adversary_force), gamma)
