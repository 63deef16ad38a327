"""Training an NCA on trajectories: Algorithm 2, configs, checkpoints, resume, metrics."""

from .algorithm import accumulate_gradients as accumulate_gradients
from .algorithm import initial_states as initial_states
from .algorithm import make_epoch as make_epoch
from .algorithm import make_optimizer as make_optimizer
from .algorithm import propagate as propagate
from .config import Config as Config
from .config import config_from_dict as config_from_dict
from .config import load_config as load_config
from .loop import TrainingDiverged as TrainingDiverged
from .loop import TrainResult as TrainResult
from .loop import build_model as build_model
from .loop import train as train
from .presets import images_config as images_config
from .run_folder import read_metrics as read_metrics
from .seeds import train_seeds as train_seeds
