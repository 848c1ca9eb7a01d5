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
            observations (used for evaluation and by saved policies).
        num_updates: number of ``update`` calls in a full run (static).
        env_steps_per_update: environment steps one ``update`` takes (static).
        env: the vectorised training environment.
    """

    init: Callable
    update: Callable
    evaluate: Callable
    act: Callable
    num_updates: int
    env_steps_per_update: int
    env: Any
