"""Training: the loop (`loop.train`), one iteration's phases (`steps`), the run's settings (`config`), recipes and
schedules (`recipes`, `schedules`), ADA's augmentation of what D sees (`augment`), EMA, checkpoints, the shared
batch stream, config A's extras, distributed helpers and the files a run writes (`run_files`).

    from r3gan_core.training import TrainConfig, train
"""

from .config import (AMP_CHOICES, CHECKPOINT_NAME, LOG_NAME, METRICS_NAME, SPECTRAL_NAME, TrainConfig, TrainResult,
                     build_networks, copy_config, dataset_spec, load_data, recipe_for)
from .loop import crossed, initial_networks, load_generator, train
from .run_files import read_log

__all__ = ["AMP_CHOICES", "CHECKPOINT_NAME", "LOG_NAME", "METRICS_NAME", "SPECTRAL_NAME", "TrainConfig", "TrainResult",
           "build_networks", "copy_config", "crossed", "dataset_spec", "initial_networks", "load_data", "load_generator", "read_log",
           "recipe_for", "train"]
