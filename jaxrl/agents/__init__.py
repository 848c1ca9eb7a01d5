"""Agents on the shared loop. ``ALGORITHMS`` maps ``--algo`` names to their builders."""
from __future__ import annotations

from typing import Callable, NamedTuple

from jaxrl.agents.base import Agent
from jaxrl.agents.ppo import PPOConfig, PPOHParams, hparams_from_config, make_ppo


class AlgorithmSpec(NamedTuple):
    """How the experiment driver builds an algorithm.

    Attributes:
        config_cls: frozen dataclass of the algorithm's options (static and traced).
        make_agent: ``(cfg, env, total_timesteps, num_eval_episodes, deterministic_eval) -> Agent``.
        make_hparams: ``cfg -> HParams`` pytree of traced scalars.
    """

    config_cls: type
    make_agent: Callable
    make_hparams: Callable


ALGORITHMS = {"ppo": AlgorithmSpec(PPOConfig, make_ppo, hparams_from_config)}

__all__ = ["Agent", "ALGORITHMS", "AlgorithmSpec", "PPOConfig", "PPOHParams", "hparams_from_config", "make_ppo"]
