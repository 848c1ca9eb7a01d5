"""The agent interface shared by every algorithm and the one training loop."""
from __future__ import annotations

from typing import Any, Callable, NamedTuple


class Agent(NamedTuple):
    """Pure functions of one agent, with everything static closed over.

    Attributes:
        init: ``(key, hparams) -> state``; ``state`` holds params, optimiser
            state, environment state and counters.
        update: ``(key, state, env_params, hparams) -> (state, metrics)``: one
            iteration (collect experience and learn from it). ``metrics`` is a
            dict of scalars.
        evaluate: ``(key, state, env_params, hparams) -> returns [num_episodes]``.
        act: ``(params, obs, key, deterministic) -> action`` for one batch of
            observations (used for evaluation and by saved policies). For a
            recurrent agent ``(params, obs, key, deterministic, policy_state)
            -> (action, policy_state)``: the state after processing ``obs``,
            to be reset to the initial state where the episode ended. None
            for an agent whose state holds no policy (the meta-search over
            objectives: its program says what it saves instead).
        num_updates: number of ``update`` calls in a full run (static).
        env_steps_per_update: environment steps one ``update`` takes (static).
        env: the vectorised training environment.
        initial_policy_state: None for a feedforward agent; for a recurrent
            one ``batch_size -> policy_state`` (leaves ``[batch_size, ...]``).
        policy_of: ``state -> (params, env_state)`` of the policy that
            ``evaluate`` plays and a saved policy would use (``env_state``
            holds any observation statistics); None means ``(state.params,
            state.env_state)``. It only selects parts of the state, so it
            applies as well to a state with leading member axes. Read it
            through :func:`policy_parts`.
    """

    init: Callable
    update: Callable
    evaluate: Callable
    act: Callable | None
    num_updates: int
    env_steps_per_update: int
    env: Any
    initial_policy_state: Callable | None = None
    policy_of: Callable | None = None


def policy_parts(agent: Agent, state) -> tuple[Any, Any]:
    """``(params, env_state)`` of the policy in ``state``, an ``agent.init`` / ``agent.update`` state (or a stack
    of them, leaves ``[M, ...]``): ``agent.policy_of(state)``, by default ``(state.params, state.env_state)``."""
    if agent.policy_of is not None:
        return agent.policy_of(state)
    return state.params, state.env_state
