"""``ntk_mlft.stax``: drop-in for ``neural_tangents.stax`` (0.6.5) on current JAX.

Every layer returns ``(init_fn, apply_fn, kernel_fn)``: the finite network and its
infinite-width NNGP/NTK, with the same signatures, defaults and ``parameterization`` semantics as
neural-tangents, so ``from neural_tangents import stax`` becomes ``from ntk_mlft import stax``.

>>> from ntk_mlft import stax
>>> init_fn, apply_fn, kernel_fn = stax.serial(stax.Dense(512), stax.Relu(), stax.Dense(1))
>>> import numpy as np
>>> kernel_fn(np.ones((3, 4)), np.ones((2, 4)), get="ntk").shape
(3, 2)
"""

from .kernels._activations import ABRelu as ABRelu
from .kernels._activations import Abs as Abs
from .kernels._activations import Erf as Erf
from .kernels._activations import Gelu as Gelu
from .kernels._activations import LeakyRelu as LeakyRelu
from .kernels._activations import Relu as Relu
from .kernels._activations import Sin as Sin
from .kernels._batching import batch as batch
from .kernels._combinators import FanInSum as FanInSum
from .kernels._combinators import FanOut as FanOut
from .kernels._combinators import Identity as Identity
from .kernels._combinators import parallel as parallel
from .kernels._combinators import serial as serial
from .kernels._conv import Conv as Conv
from .kernels._dense import Dense as Dense
from .kernels._kernel import Kernel as Kernel
from .kernels._pooling import Flatten as Flatten
from .kernels._pooling import GlobalAvgPool as GlobalAvgPool

__all__ = [
    "ABRelu", "Abs", "Conv", "Dense", "Erf", "FanInSum", "FanOut", "Flatten", "Gelu",
    "GlobalAvgPool", "Identity", "Kernel", "LeakyRelu", "Relu", "Sin", "batch", "parallel",
    "serial",
]
