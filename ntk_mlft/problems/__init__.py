"""PDE solution maps with grid hierarchies, measured cost tables and cached multi-level datasets.

>>> from ntk_mlft.problems import get_problem, generate
>>> p = get_problem("elliptic-rough", levels=3)
>>> data = generate(p, [40, 10, 5], seed=0)          # independent draws per level (MLFT training)
>>> pilot = generate(p, [20, 20, 20], seed=1, paired=True)  # same inputs at every level
"""

from ntk_mlft.problems._base import Problem as Problem
from ntk_mlft.problems._base import SolverError as SolverError
from ntk_mlft.problems.datasets import MultiLevelDataset as MultiLevelDataset
from ntk_mlft.problems.datasets import generate as generate
from ntk_mlft.problems.registry import DEFAULT_PROBLEM as DEFAULT_PROBLEM
from ntk_mlft.problems.registry import available_problems as available_problems
from ntk_mlft.problems.registry import get_problem as get_problem
from ntk_mlft.problems.registry import problem_from_params as problem_from_params
from ntk_mlft.problems.timing import measure_costs as measure_costs

__all__ = [
    "DEFAULT_PROBLEM",
    "MultiLevelDataset",
    "Problem",
    "SolverError",
    "available_problems",
    "generate",
    "get_problem",
    "measure_costs",
    "problem_from_params",
]
