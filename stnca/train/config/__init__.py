"""Training configuration: TOML files validated into frozen, typed settings.

A config has three tables::

    [model]      the NCA's structure (observable channels come from the data)
    [data]       where the training trajectories come from: source = "gray_scott" | "file"
                 | "images" | "pde"
    [training]   Algorithm 2's settings

Unknown tables or keys, wrong types and out-of-range values raise ``ValueError`` with a
message naming the key. Every default lives here once.
"""

from .data import DATA_SOURCES as DATA_SOURCES
from .data import GRAY_SCOTT_CONDITIONS as GRAY_SCOTT_CONDITIONS
from .data import FileData as FileData
from .data import GrayScottData as GrayScottData
from .data import ImageData as ImageData
from .data import PdeData as PdeData
from .model import ModelConfig as ModelConfig
from .toml import Config as Config
from .toml import config_from_dict as config_from_dict
from .toml import load_config as load_config
from .training import MAX_EPOCHS as MAX_EPOCHS
from .training import SELECTIONS as SELECTIONS
from .training import UPDATES as UPDATES
from .training import TrainingConfig as TrainingConfig
