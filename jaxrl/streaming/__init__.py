"""Streaming deep RL (Elsayed et al. 2024): learning from one transition at a time. The pieces: the ObGD
optimiser (:mod:`jaxrl.streaming.obgd`), sparse initialisation (:mod:`jaxrl.streaming.init`) and the
running observation / reward statistics of one stream (:mod:`jaxrl.streaming.normalization`)."""
from jaxrl.streaming.init import sparse_init
from jaxrl.streaming.normalization import SampleMeanStd, RewardScaler, normalize_sample, scale_reward, update_sample_stats
from jaxrl.streaming.obgd import ObGDState, obgd_init, obgd_step

__all__ = ["sparse_init", "SampleMeanStd", "RewardScaler", "normalize_sample", "scale_reward", "update_sample_stats",
           "ObGDState", "obgd_init", "obgd_step"]
