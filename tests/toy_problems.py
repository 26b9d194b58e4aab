"""Small :class:`~ntk_mlft.problems.Problem` subclasses shared by the data-pipeline tests:
standard-normal inputs of ``INPUT_DIM`` entries, one output; each test defines the solve."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ntk_mlft.problems import Problem


@dataclass(frozen=True)
class GaussianInputs(Problem):
    """Inputs (n, INPUT_DIM) ~ N(0, 1), outputs (n, 1); subclasses give ``_solve_one``/``_solve_batch``."""

    name: ClassVar[str] = "gaussian-inputs"
    INPUT_DIM: ClassVar[int] = 2
    levels: int = 2

    @property
    def input_shape(self):
        return (self.INPUT_DIM,)

    @property
    def output_shape(self):
        return (1,)

    def _sample(self, rng, n):
        return rng.standard_normal((n, self.INPUT_DIM))


@dataclass(frozen=True)
class NaNAbove(GaussianInputs):
    """Label NaN for inputs whose first entry exceeds ``threshold``, else the sum of the input."""

    name: ClassVar[str] = "nan-above"
    threshold: float = np.inf

    def _solve_one(self, x, n_cells):
        return np.array([np.nan if x[0] > self.threshold else x.sum()])
