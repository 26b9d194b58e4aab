"""Reading a pilot ``.npz`` file: which keys it must hold and what each must be.

Contract (README "Bring your own solver"): ``x`` (n_p, *input_shape), ``y_level1`` ..
``y_levelL`` (n_p, *output_shape) with consecutive level numbers from 1, optional
``x_unlabeled`` (m, *input_shape); every array real and numeric. :func:`read_pilot_arrays`
returns them or raises one ValueError naming the file and what is wrong (damaged archive, missing
or non-consecutive levels, complex or non-numeric arrays, unknown keys); shapes and finiteness
are checked by ``pilot._check_pilot``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ntk_mlft._io import read_npz_strict

__all__ = ["read_pilot_arrays"]

_LEVEL_KEY = re.compile(r"y_level(\d+)$")


def read_pilot_arrays(path: str | Path) -> tuple[np.ndarray, list[np.ndarray], np.ndarray | None]:
    """``(x, [y_level1, .., y_levelL], x_unlabeled or None)`` of the pilot file ``path``."""
    arrays = read_npz_strict(path, "pilot file")
    keys = sorted(arrays)
    levels = sorted(int(m.group(1)) for k in keys if (m := _LEVEL_KEY.match(k)))
    if "x" not in arrays or not levels:
        raise ValueError(f"pilot file {path} must contain 'x' and 'y_level1'..'y_levelL'; got {keys}")
    if levels != list(range(1, len(levels) + 1)):
        missing = sorted(set(range(1, max(levels) + 1)) - set(levels))
        raise ValueError(f"pilot file {path}: the levels must be numbered 1..L without gaps (y_level1, "
                         f"y_level2, ...); got {[f'y_level{l}' for l in levels]}, missing "
                         f"{[f'y_level{l}' for l in missing]}")
    unknown = sorted(set(keys) - {"x", "x_unlabeled", *(f"y_level{l}" for l in levels)})
    if unknown:
        raise ValueError(f"pilot file {path} has unknown key(s) {unknown}; allowed: x, y_level1..y_levelL, "
                         "x_unlabeled")
    for key, arr in arrays.items():
        if np.iscomplexobj(arr):
            raise ValueError(f"pilot file {path}: {key} is complex ({arr.dtype}); the error model needs real "
                             "arrays (store real and imaginary parts as separate output components)")
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"pilot file {path}: {key} must be a numeric array; got dtype {arr.dtype}")
    ys = [arrays[f"y_level{l}"] for l in levels]
    return arrays["x"], ys, arrays.get("x_unlabeled")
