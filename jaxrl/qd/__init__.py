"""Quality-diversity search: repertoires, Iso+Line-DD, PGA-ME's and DCG-ME's learned variation, and tasks
with behaviour descriptors; one iteration is an :class:`~jaxrl.agents.base.Agent` update on the shared loop."""
from jaxrl.qd.repertoire import (QDMetrics, Repertoire, cell_indices, cvt_centroids, empty_repertoire, grid_centroids,
                                 insert, qd_metrics, select_uniform)
from jaxrl.qd.search import EMITTERS, QDConfig, QDState, distillation_scores, distilled_policy, make_qd, qd_hparams
from jaxrl.qd.tasks import QD_TASKS, make_task
from jaxrl.qd.variation import iso_line_dd

__all__ = [
    "QDMetrics", "Repertoire", "cell_indices", "cvt_centroids", "empty_repertoire", "grid_centroids", "insert",
    "qd_metrics", "select_uniform", "EMITTERS", "QDConfig", "QDState", "distillation_scores", "distilled_policy",
    "make_qd", "qd_hparams", "QD_TASKS", "make_task", "iso_line_dd",
]
