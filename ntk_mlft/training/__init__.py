"""Finite-width training: full-batch MSE loop, MLFT level-by-level schedule, layer masks.

- :mod:`.loop` — ``fit`` with one ``FitOptions`` (gd with η from the NTK's λ_max, sgd, adam,
  curveball), ``centered``.
- :mod:`.schedule` — ``train_mlft`` / ``train_mlft_ensemble`` returning frozen result dataclasses.
- :mod:`.masks` — parameter groups (``ntk_mlft.empirical.resolve_groups``'s partition, e.g.
  ``layer_01_Dense``) and freeze masks.
"""

from .loop import OPTIMIZERS as OPTIMIZERS
from .loop import FitOptions as FitOptions
from .loop import FitResult as FitResult
from .loop import centered as centered
from .loop import fit as fit
from .loop import max_ntk_eigenvalue as max_ntk_eigenvalue
from .loop import mse as mse
from .masks import apply_mask as apply_mask
from .masks import combine as combine
from .masks import make_mask as make_mask
from .masks import parameter_groups as parameter_groups
from .masks import partition as partition
from .schedule import MLFT_OPTIONS as MLFT_OPTIONS
from .schedule import EnsembleResult as EnsembleResult
from .schedule import LevelRecord as LevelRecord
from .schedule import TrainingResult as TrainingResult
from .schedule import level_pairs as level_pairs
from .schedule import relative_mse as relative_mse
from .schedule import train_mlft as train_mlft
from .schedule import train_mlft_ensemble as train_mlft_ensemble

__all__ = [
    "MLFT_OPTIONS", "OPTIMIZERS", "EnsembleResult", "FitOptions", "FitResult", "LevelRecord", "TrainingResult",
    "apply_mask",
    "centered", "combine", "fit", "level_pairs", "make_mask", "max_ntk_eigenvalue", "mse",
    "parameter_groups", "partition", "relative_mse", "train_mlft", "train_mlft_ensemble",
]
