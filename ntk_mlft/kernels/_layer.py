"""The layer record behind every ``(init_fn, apply_fn, kernel_fn)`` triple, and the public
``kernel_fn(x1, x2=None, get=None)`` built from it.

A layer is four pure functions over the same architecture:

* ``init_fn(key, input_shape) -> (output_shape, params)`` and ``apply_fn(params, x)``: the
  finite network;
* ``shape_fn(input_shape) -> output_shape``: static shape propagation that raises a
  ``ValueError`` naming the layer when it cannot take the shape;
* ``kernel_map(Kernel) -> Kernel``: the infinite-width recursion of the NNGP and NTK;
* ``diag_req(downstream_ok) -> upstream_ok``: whether storing only same-position (diagonal)
  spatial covariances is enough. ``Flatten`` needs only the diagonal, ``GlobalAvgPool`` needs the
  full covariance, every other layer passes the downstream answer through (a convolution maps
  diagonal entries to diagonal entries because the same weight multiplies both positions).
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._kernel import Kernel, default_dtype, input_kernel

__all__ = ["Layer", "KernelFn", "make_layer", "layer_of", "check_std", "GET_NAMES"]

GET_NAMES = ("nngp", "ntk", "cov1", "cov2", "shape1", "shape2", "diagonal_spatial",
             "is_gaussian")

Shape = Any  # a tuple of ints, or a list of them for multi-branch (FanOut/parallel) layers


def _pass_through(downstream_ok: bool) -> bool:
    return downstream_ok


@dataclasses.dataclass(frozen=True)
class Layer:
    """Internal description of one layer (see the module docstring)."""

    name: str
    init_fn: Callable
    apply_fn: Callable
    shape_fn: Callable[[Shape], Shape]
    kernel_map: Callable[[Any], Any]
    diag_req: Callable[[bool], bool] = _pass_through


def _with_shapes(kernels: Any, shapes1: Shape, shapes2: Shape) -> Any:
    if isinstance(kernels, Kernel):
        return kernels.replace(shape1=tuple(shapes1), shape2=tuple(shapes2))
    return [_with_shapes(k, s1, s2) for k, s1, s2 in zip(kernels, shapes1, shapes2)]


def _shapes_of(kernels: Any, which: str) -> Shape:
    if isinstance(kernels, Kernel):
        return getattr(kernels, which)
    return [_shapes_of(k, which) for k in kernels]


def make_layer(name: str, init_fn: Callable, apply_fn: Callable, shape_fn: Callable,
               kernel_map: Callable, diag_req: Callable[[bool], bool] = _pass_through
               ) -> tuple[Callable, Callable, KernelFn]:
    """Wrap a leaf layer's functions into an NT-style triple.

    ``kernel_map`` sees the kernel with ``shape1``/``shape2`` equal to its *input* shapes; the
    returned kernel gets the output shapes from ``shape_fn`` here.
    """
    def mapped(k):
        out = kernel_map(k)
        return _with_shapes(out, shape_fn(_shapes_of(k, "shape1")),
                            shape_fn(_shapes_of(k, "shape2")))

    layer = Layer(name, init_fn, apply_fn, shape_fn, mapped, diag_req)
    return init_fn, apply_fn, KernelFn(layer)


def layer_of(triple: Any, where: str) -> Layer:
    """The ``Layer`` behind a triple made by this package (TypeError otherwise)."""
    if not (isinstance(triple, (tuple, list)) and len(triple) == 3
            and isinstance(triple[2], KernelFn)):
        raise TypeError(f"{where}: every layer must be an (init_fn, apply_fn, kernel_fn) triple "
                        f"from ntk_mlft.stax; got {type(triple).__name__}")
    return triple[2].layer


def check_std(layer: str, name: str, value: Any, *, allow_none: bool) -> float | None:
    """``W_std``/``b_std`` must be finite reals >= 0 (``b_std`` may be None: no bias)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not np.isscalar(value) or not np.isreal(value):
        allowed = "a real number >= 0" + (" or None" if allow_none else "")
        raise TypeError(f"{layer}: {name} must be {allowed}; got {value!r}")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{layer}: {name} must be finite and >= 0; got {value!r}")
    return float(value)


def _normalize_get(get: Any) -> tuple[str, ...] | None:
    if get is None:
        return None
    names = (get,) if isinstance(get, str) else tuple(get)
    for n in names:
        if n not in GET_NAMES:
            raise ValueError(f"kernel_fn: get must be None, one of {list(GET_NAMES)} or a tuple "
                             f"of them; got {n!r}")
    return names


def _as_input(name: str, x: Any) -> jax.Array:
    if isinstance(x, (list, tuple)):
        raise TypeError(f"kernel_fn: {name} must be an array (N, *input_shape); "
                        f"got a {type(x).__name__}")
    try:
        arr = jnp.asarray(x, dtype=default_dtype())
    except TypeError as err:
        raise TypeError(f"kernel_fn: {name} must be a numeric array; got {type(x).__name__}") \
            from err
    if arr.ndim < 2:
        raise ValueError(f"kernel_fn: {name} must have a batch and a feature axis "
                         f"(ndim >= 2); got shape {arr.shape}")
    return arr


def _finish(k: Kernel) -> Kernel:
    if k.ntk is not None and k.ntk.ndim == 0:  # no parameter seen yet: NTK is identically 0
        k = k.replace(ntk=jnp.broadcast_to(k.ntk, k.nngp.shape))
    return k


def _select(k: Any, names: tuple[str, ...] | None, single: bool) -> Any:
    if isinstance(k, list):
        return [_select(ki, names, single) for ki in k]
    if names is None:
        return k
    if single:
        return getattr(k, names[0])
    return collections.namedtuple("AnalyticKernel", names)(*(getattr(k, n) for n in names))


class KernelFn:
    """The public ``kernel_fn(x1, x2=None, get=None)`` of a layer (neural-tangents contract).

    ``x1`` is ``(N1, *input_shape)``, ``x2`` ``(N2, *input_shape)`` or ``None`` (then ``x2 = x1``
    and ``cov2`` is ``None``). ``get=None`` returns the ``Kernel``; a name returns that field; a
    tuple of names returns a namedtuple ``AnalyticKernel``. Arrays are float64 when
    ``jax_enable_x64`` is on, float32 otherwise. The computation is jitted internally and the
    function may also be called under ``jax.jit`` (with ``get`` static).
    """

    def __init__(self, layer: Layer):
        self.layer = layer
        self._compute = jax.jit(self._raw, static_argnums=(2, 3))

    def __repr__(self) -> str:
        return f"KernelFn({self.layer.name})"

    def _raw(self, x1, x2, diagonal_spatial: bool, compute_ntk: bool):
        k = input_kernel(x1, x2, diagonal_spatial=diagonal_spatial, compute_ntk=compute_ntk)
        out = self.layer.kernel_map(k)
        return [_finish(o) for o in out] if isinstance(out, list) else _finish(out)

    def __call__(self, x1: Any, x2: Any = None, get: str | Sequence[str] | None = None) -> Any:
        names = _normalize_get(get)
        x1 = _as_input("x1", x1)
        if x2 is not None:
            x2 = _as_input("x2", x2)
            if x2.shape[1:] != x1.shape[1:]:
                raise ValueError(f"kernel_fn of {self.layer.name}: x1 and x2 must have the same "
                                 f"shape apart from the batch axis; got x1 {x1.shape}, "
                                 f"x2 {x2.shape}")
        self.layer.shape_fn(tuple(x1.shape))  # raises naming the layer and the shape
        diagonal = bool(self.layer.diag_req(False))
        compute_ntk = names is None or "ntk" in names
        out = self._compute(x1, x2, diagonal, compute_ntk)
        return _select(out, names, isinstance(get, str))
