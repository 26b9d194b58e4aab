"""Named network architectures shared by the CLI, training and validation.

Each is an ``ntk_mlft.stax`` triple, so the finite network (``init_fn``/``apply_fn``) and its
infinite-width kernel (``kernel_fn``) describe the same model (NTK parameterisation by default).
Inputs are arrays ``(N, *input_shape)``; the MLPs flatten them internally, the CNN expects
``(N, n_x, channels)`` (e.g. a 1-D grid function with one channel).

| name | layers |
| --- | --- |
| ``mlp-relu-3`` | Flatten, 3 x [Dense(width), Relu], Dense(output_dim) |
| ``mlp-erf-2`` | Flatten, 2 x [Dense(width), Erf], Dense(output_dim) |
| ``cnn-relu-2`` | 2 x [Conv(width, (kernel_size,), padding), Relu], Flatten, Dense(output_dim) |
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from . import stax
from ._checks import check_choice, check_positive_int

__all__ = ["Architecture", "available_architectures", "get_architecture"]


@dataclasses.dataclass(frozen=True)
class Architecture:
    """A finite network and its infinite-width kernel.

    Attributes:
      init_fn: ``init_fn(key, input_shape) -> (output_shape, params)``; ``input_shape`` includes
        the batch axis, e.g. ``(-1, n_x)``.
      apply_fn: ``apply_fn(params, x) -> (N, output_dim)``.
      kernel_fn: ``kernel_fn(x1, x2=None, get=None)``; NNGP/NTK of shape ``(N1, N2)``.
      name, description: the registry name and a one-line summary.
      options: the resolved keyword options (width, W_std, b_std, parameterization, ...).
    """

    init_fn: Callable
    apply_fn: Callable
    kernel_fn: Callable
    name: str
    description: str
    options: dict[str, Any] = dataclasses.field(default_factory=dict)


def _mlp(activation, depth: int, output_dim: int, width: int, W_std: float, b_std: float | None,
         parameterization: str, readout_W_std: float = 1.0):
    layers: list = [stax.Flatten()]
    for _ in range(depth):
        layers += [stax.Dense(width, W_std=W_std, b_std=b_std,
                              parameterization=parameterization), activation()]
    layers.append(stax.Dense(output_dim, W_std=readout_W_std, b_std=b_std,
                             parameterization=parameterization))
    return stax.serial(*layers)


def _cnn(output_dim: int, width: int, W_std: float, b_std: float | None, parameterization: str,
         kernel_size: int = 3, padding: str = "CIRCULAR", readout_W_std: float = 1.0):
    check_positive_int("kernel_size", kernel_size)
    check_choice("padding", padding, ("VALID", "SAME", "CIRCULAR"))
    layers: list = []
    for _ in range(2):
        layers += [stax.Conv(width, (kernel_size,), padding=padding, W_std=W_std, b_std=b_std,
                             parameterization=parameterization), stax.Relu()]
    layers += [stax.Flatten(), stax.Dense(output_dim, W_std=readout_W_std, b_std=b_std,
                                          parameterization=parameterization)]
    return stax.serial(*layers)


# name -> (builder, description, default options)
_REGISTRY: dict[str, tuple[Callable, str, dict[str, Any]]] = {
    "mlp-relu-3": (lambda **kw: _mlp(stax.Relu, 3, **kw),
                   "MLP, 3 hidden ReLU layers, NTK parameterisation, input flattened",
                   {"W_std": 2 ** 0.5, "b_std": 0.1, "parameterization": "ntk"}),
    "mlp-erf-2": (lambda **kw: _mlp(stax.Erf, 2, **kw),
                  "MLP, 2 hidden erf layers, NTK parameterisation, input flattened",
                  {"W_std": 1.5, "b_std": 0.1, "parameterization": "ntk"}),
    "cnn-relu-2": (_cnn,
                   "1-D CNN, 2 ReLU conv layers (kernel 3, circular padding), flatten + Dense",
                   {"W_std": 2 ** 0.5, "b_std": 0.1, "parameterization": "ntk",
                    "kernel_size": 3, "padding": "CIRCULAR"}),
}


def available_architectures() -> tuple[str, ...]:
    """Registered architecture names, sorted."""
    return tuple(sorted(_REGISTRY))


def get_architecture(name: str, *, output_dim: int, width: int = 512,
                     **options: Any) -> Architecture:
    """Build a registered architecture.

    Args:
      name: one of ``available_architectures()``.
      output_dim: number of outputs (e.g. the points of the output grid).
      width: hidden width / channels of the finite network (the kernel ignores it under the
        NTK parameterisation).
      **options: ``W_std``, ``b_std``, ``parameterization``, ``readout_W_std`` and for the CNN
        ``kernel_size``, ``padding`` (defaults per architecture in the module table).
    """
    check_choice("architecture (--arch)", name, available_architectures())
    check_positive_int("output_dim", output_dim)
    check_positive_int("width", width)
    builder, description, defaults = _REGISTRY[name]
    allowed = set(defaults) | {"readout_W_std"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(f"get_architecture({name!r}): unknown option(s) {unknown}; "
                         f"allowed: {sorted(allowed)}")
    resolved = {**defaults, **options}
    init_fn, apply_fn, kernel_fn = builder(output_dim=output_dim, width=width, **resolved)
    return Architecture(init_fn=init_fn, apply_fn=apply_fn, kernel_fn=kernel_fn, name=name,
                        description=description,
                        options={"output_dim": output_dim, "width": width, **resolved})
