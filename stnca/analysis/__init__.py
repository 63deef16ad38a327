"""Analysis of trained NCA: evaluation metrics and baselines."""

from .evaluate import Evaluation as Evaluation
from .evaluate import evaluate as evaluate
from .evaluate import predict as predict
from .evaluate import write_evaluation as write_evaluation
from .metrics import correlation_time as correlation_time
from .metrics import frame_metrics as frame_metrics
from .metrics import pearson as pearson
from .metrics import radial_power_spectrum as radial_power_spectrum
from .metrics import spectrum_distance as spectrum_distance
from .metrics import vrmse as vrmse
