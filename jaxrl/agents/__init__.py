"""Agents on the shared loop. ``ALGORITHMS`` maps ``--algo`` names to their builders."""
from __future__ import annotations

import functools
from typing import Callable, NamedTuple

from jaxrl.agents.base import Agent
from jaxrl.agents.lpg import LPGTrainConfig, lpg_train_hparams, make_lpg_from_config, validate_lpg
from jaxrl.agents.dqn import DQNConfig, DQNHParams, dqn_hparams, make_dqn, validate_dqn
from jaxrl.agents.ppo import PPOConfig, PPOHParams, hparams_from_config, make_ppo, validate_ppo
from jaxrl.agents.pqn import PQNConfig, PQNHParams, make_pqn, pqn_hparams, validate_pqn
from jaxrl.agents.sac import SACConfig, SACHParams, make_sac, sac_hparams, validate_sac
from jaxrl.agents.stream import (StreamACConfig, StreamQConfig, make_stream_ac, make_stream_q, stream_ac_hparams,
                                 stream_q_hparams, validate_stream_ac, validate_stream_q)


class AlgorithmSpec(NamedTuple):
    """How the experiment driver builds an algorithm.

    Attributes:
        config_cls: frozen dataclass of the algorithm's options (static and traced).
        make_agent: ``(cfg, env, total_timesteps, num_eval_episodes, deterministic_eval) -> Agent``.
        make_hparams: ``cfg -> HParams`` pytree of traced scalars.
        validate: optional ``(cfg, env, total_timesteps) -> message or None``: host-side checks
            that need the environment (the message names the flag).
    """

    config_cls: type
    make_agent: Callable
    make_hparams: Callable
    validate: Callable | None = None


ALGORITHMS = {
    "ppo": AlgorithmSpec(PPOConfig, make_ppo, hparams_from_config, validate_ppo),
    "dqn": AlgorithmSpec(DQNConfig, make_dqn, dqn_hparams, validate_dqn),
    "sac": AlgorithmSpec(SACConfig, make_sac, sac_hparams, validate_sac),
    "pqn": AlgorithmSpec(PQNConfig, make_pqn, pqn_hparams, validate_pqn),
    # streaming Q(lambda): one transition per update, ObGD, no replay (Elsayed et al. 2024)
    "stream_q": AlgorithmSpec(StreamQConfig, make_stream_q, stream_q_hparams, validate_stream_q),
    "stream_ac": AlgorithmSpec(StreamACConfig, make_stream_ac, stream_ac_hparams, validate_stream_ac),
    "stream_sarsa": AlgorithmSpec(StreamQConfig, functools.partial(make_stream_q, sarsa=True), stream_q_hparams,
                                  validate_stream_q),
    # a fresh agent trained by a meta-learned update rule (meta_train.py --objective lpg / ta_lpg)
    "lpg": AlgorithmSpec(LPGTrainConfig, make_lpg_from_config, lpg_train_hparams, validate_lpg),
}

__all__ = ["Agent", "ALGORITHMS", "AlgorithmSpec", "PPOConfig", "PPOHParams", "hparams_from_config", "make_ppo",
           "DQNConfig", "DQNHParams", "dqn_hparams", "make_dqn", "SACConfig", "SACHParams", "make_sac", "sac_hparams",
           "PQNConfig", "PQNHParams", "make_pqn", "pqn_hparams"]
