"""Environment-design curricula: DR, PLR, robust PLR and ACCEL over levels that are env params.

PAIRED, which designs levels with a trained adversary instead of sampling them, is
:mod:`jaxrl.curricula.paired`; the UED iteration around PPO is :mod:`jaxrl.curricula.ued`.
"""
from jaxrl.curricula.buffer import (
    LevelBuffer,
    empty_buffer,
    insert_level,
    insert_levels,
    replay_distribution,
    score_weights,
    staleness_weights,
    update_replayed,
)
from jaxrl.curricula.curriculum import (
    METHODS,
    MUTATE,
    NEW,
    REPLAY,
    BUFFER_METHODS,
    UED_METHODS,
    Curriculum,
    CurriculumConfig,
    CurriculumHParams,
    CurriculumState,
    LevelInfo,
    LevelScores,
    curriculum_hparams,
    make_curriculum,
    validate_curriculum,
)
from jaxrl.curricula.scores import best_returns, max_mc, positive_value_loss

__all__ = [
    "LevelBuffer", "empty_buffer", "insert_level", "insert_levels", "replay_distribution", "score_weights", "staleness_weights",
    "update_replayed", "METHODS", "MUTATE", "NEW", "REPLAY", "BUFFER_METHODS", "UED_METHODS", "Curriculum", "CurriculumConfig", "CurriculumHParams", "CurriculumState",
    "LevelInfo", "LevelScores", "curriculum_hparams", "make_curriculum", "validate_curriculum", "best_returns", "max_mc", "positive_value_loss",
]
