"""Run directories, metrics files, figures and progress reporting."""
from jaxrl.io.plots import mean_and_ci95, plot_fitness_curves, plot_learning_curves
from jaxrl.io.progress import Progress
from jaxrl.io.run_dir import RunDirectory, read_metrics

__all__ = ["mean_and_ci95", "plot_fitness_curves", "plot_learning_curves", "Progress", "RunDirectory", "read_metrics"]
from jaxrl.io.checkpoint import CheckpointError, Checkpointer  # noqa: E402
from jaxrl.io.policy import LoadedRun, Policy, evaluate_run, load_policy, load_run  # noqa: E402

__all__ += ["CheckpointError", "Checkpointer", "LoadedRun", "Policy", "evaluate_run", "load_policy", "load_run"]
