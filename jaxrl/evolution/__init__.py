"""Direct policy search: evosax strategies and a Deep-GA behind one maximising ask/tell,
population fitness from rollouts, novelty search, and the generation as an agent update."""
from jaxrl.evolution.fitness import Rollouts, episode_rollout, final_observation, make_population_fitness
from jaxrl.evolution.novelty import NoveltyArchive, add_most_novel, archive_init, archive_insert, knn_novelty
from jaxrl.evolution.search import EvolutionConfig, EvolutionState, make_evolution, make_problem
from jaxrl.evolution.strategies import (
    FITNESS_SHAPINGS,
    STRATEGIES,
    EvolutionHParams,
    Strategy,
    centered_ranks,
    evolution_hparams,
    evosax_fitness,
    make_strategy,
    z_score,
)

__all__ = [
    "Rollouts", "episode_rollout", "final_observation", "make_population_fitness", "NoveltyArchive",
    "add_most_novel", "archive_init", "archive_insert", "knn_novelty", "EvolutionConfig", "EvolutionHParams", "EvolutionState",
    "make_evolution", "make_problem", "FITNESS_SHAPINGS", "STRATEGIES", "Strategy", "centered_ranks",
    "evolution_hparams", "evosax_fitness", "make_strategy", "z_score",
]
