"""Optimisers that need the model, not only its gradient (second-order methods).

- :mod:`ntk_mlft.optim.curveball` — CurveBall (Henriques et al., ICCV 2019): ``curveball`` (init, update
  taking the model), ``curveball_transformation`` (the same as an optax GradientTransformationExtraArgs).
"""

from .curveball import CurveBallInfo as CurveBallInfo
from .curveball import CurveBallState as CurveBallState
from .curveball import QuadraticModel as QuadraticModel
from .curveball import curveball as curveball
from .curveball import curveball_transformation as curveball_transformation
from .curveball import mse_loss as mse_loss
from .curveball import quadratic_model as quadratic_model

__all__ = ["CurveBallInfo", "CurveBallState", "QuadraticModel", "curveball", "curveball_transformation", "mse_loss",
           "quadratic_model"]
