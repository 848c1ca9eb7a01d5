"""Run directories, metrics files, figures and progress reporting."""
from jaxrl.io.plots import mean_and_ci95, plot_learning_curves
from jaxrl.io.progress import Progress
from jaxrl.io.run_dir import RunDirectory, read_metrics

__all__ = ["mean_and_ci95", "plot_learning_curves", "Progress", "RunDirectory", "read_metrics"]
