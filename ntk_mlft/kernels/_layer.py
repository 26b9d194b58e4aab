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
  diagonal entries to diagonal entries because the same weight multiplies both positions);
* ``tapped_apply(params, x, tap, path) -> y``: ``apply_fn`` that also exposes the structure the
  structured-derivative empirical NTK (``ntk_mlft.empirical._structured``) needs. Every layer linear in its
  parameters (``Dense``, ``Conv``) computes ``z = w_scale * u W + b_scale * b`` with ``u`` its
  input (or input patches) and calls ``z = tap(LinearTap(...), z)``; the returned ``z`` is used
  downstream (an additive zero probe there gives ``df/dz``). Parameter-free layers apply
  themselves; combinators recurse, extending ``path`` (the position of a layer's params in the
  params pytree). A layer configuration that is not batch-first raises ``UnsupportedStructure``.

The public triple is ``(ApplyFn(layer), ...)``: ``init_fn``, an ``ApplyFn`` and a ``KernelFn``,
both callables that carry the ``Layer``.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _layout
from ._kernel import Kernel, default_dtype, input_kernel

__all__ = ["Layer", "KernelFn", "ApplyFn", "LinearTap", "UnsupportedStructure", "make_layer",
           "layer_of", "check_std", "check_positive_int", "check_single_input", "GET_NAMES"]

GET_NAMES = ("nngp", "ntk", "cov1", "cov2", "shape1", "shape2", "diagonal_spatial",
             "is_gaussian")

Shape = Any  # a tuple of ints, or a list of them for multi-branch (FanOut/parallel) layers


def _pass_through(downstream_ok: bool) -> bool:
    return downstream_ok


class UnsupportedStructure(ValueError):
    """A layer configuration the structured-derivative NTK cannot handle (e.g. not batch-first)."""


@dataclasses.dataclass(frozen=True)
class LinearTap:
    """What a layer linear in its params ``(W, b)`` tells the structured-derivative NTK.

    The layer computes ``z[i, p, :] = w_scale * u[i, p, :] @ W + b_scale * b`` for every example
    ``i`` and output position ``p`` (``W`` reshaped to ``(A, B)``), so for any cotangent
    ``d[i, p, :] = df/dz[i, p, :]``: ``df/dW = w_scale sum_p u[i, p] (x) d[i, p]`` and
    ``df/db = b_scale sum_p d[i, p]``.

    Attributes:
      layer: the layer's name (for error messages).
      path: position of the layer's ``(W, b)`` in the params pytree (``W`` at ``path + (0,)``,
        ``b`` at ``path + (1,)``).
      inputs: ``u``, shape ``(N, P, A)``: the layer input (``Dense``: ``P`` = positions other than
        batch and channel, ``A`` = input features) or its patches (``Conv``: ``P`` = output
        positions, ``A = C_in * prod(filter_shape)``).
      w_scale: ``dz/d(u W)``: ``W_std / sqrt(fan_in)`` (ntk) or ``1 / sqrt(s0)`` (standard).
      b_scale: ``dz/db``: ``b_std`` (ntk) or ``1`` (standard); ``None`` when there is no bias.
      channel_axis: the output feature axis of ``z`` (its other non-batch axes are the ``P``
        positions, in ``u``'s order).
    """

    layer: str
    path: tuple[int, ...]
    inputs: jax.Array
    w_scale: float
    b_scale: float | None
    channel_axis: int


TapFn = Callable[[LinearTap, jax.Array], jax.Array]


def _no_params_tapped(apply_fn: Callable) -> Callable:
    def tapped_apply(params, inputs, tap: TapFn, path: tuple[int, ...], **kwargs):
        return apply_fn(params, inputs, **kwargs)
    return tapped_apply


@dataclasses.dataclass(frozen=True)
class Layer:
    """Internal description of one layer (see the module docstring)."""

    name: str
    init_fn: Callable
    apply_fn: Callable
    shape_fn: Callable[[Shape], Shape]
    kernel_map: Callable[[Any], Any]
    diag_req: Callable[[bool], bool] = _pass_through
    tapped_apply: Callable | None = None  # None: a parameter-free layer that only applies itself

    def tapped(self, params, inputs, tap: TapFn, path: tuple[int, ...] = (), **kwargs):
        """``apply_fn(params, inputs)`` calling ``tap`` at every linear layer (module docstring)."""
        fn = self.tapped_apply or _no_params_tapped(self.apply_fn)
        return fn(params, inputs, tap, path, **kwargs)


def _with_shapes(kernels: Any, shapes1: Shape, shapes2: Shape) -> Any:
    if isinstance(kernels, Kernel):
        return kernels.replace(shape1=tuple(shapes1), shape2=tuple(shapes2))
    return [_with_shapes(k, s1, s2) for k, s1, s2 in zip(kernels, shapes1, shapes2)]


def _shapes_of(kernels: Any, which: str) -> Shape:
    if isinstance(kernels, Kernel):
        return getattr(kernels, which)
    return [_shapes_of(k, which) for k in kernels]


def make_layer(name: str, init_fn: Callable, apply_fn: Callable, shape_fn: Callable,
               kernel_map: Callable, diag_req: Callable[[bool], bool] = _pass_through,
               tapped_apply: Callable | None = None) -> tuple[Callable, ApplyFn, KernelFn]:
    """Wrap a leaf layer's functions into an NT-style triple.

    ``kernel_map`` sees the kernel with ``shape1``/``shape2`` equal to its *input* shapes; the
    returned kernel gets the output shapes from ``shape_fn`` here.
    """
    def mapped(k):
        out = kernel_map(k)
        return _with_shapes(out, shape_fn(_shapes_of(k, "shape1")),
                            shape_fn(_shapes_of(k, "shape2")))

    layer = Layer(name, init_fn, apply_fn, shape_fn, mapped, diag_req, tapped_apply)
    return init_fn, ApplyFn(layer), KernelFn(layer)


def check_positive_int(layer: str, name: str, value: Any) -> int:
    """``value`` must be an integer >= 1 (not a bool); returns it as ``int``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{layer}: {name} must be an integer >= 1; got {value!r}")
    return int(value)


def check_single_input(layer: str, shape: Shape) -> None:
    """A layer that takes one input must not receive a list of branches (from ``FanOut``)."""
    if isinstance(shape, list):
        raise ValueError(f"{layer}: takes one input, got {len(shape)} branches with shapes "
                         f"{shape}; combine them first (FanInSum) or apply one layer per branch "
                         f"(parallel)")


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


def _normalize_get(get: Any, where: str) -> tuple[str, ...] | None:
    if get is None:
        return None
    allowed = f"None, one of {list(GET_NAMES)} or a non-empty tuple of them"
    if isinstance(get, str):
        names = (get,)
    elif isinstance(get, (tuple, list)):
        names = tuple(get)
    else:
        raise ValueError(f"{where}: get must be {allowed}; got {get!r}")
    if not names:
        raise ValueError(f"{where}: get must be {allowed}; got an empty {type(get).__name__}")
    for n in names:
        if n not in GET_NAMES:
            raise ValueError(f"{where}: get must be {allowed}; got {n!r}")
    return names


def _as_input(where: str, name: str, x: Any) -> jax.Array:
    if isinstance(x, (list, tuple)):
        raise TypeError(f"{where}: {name} must be an array (N, *input_shape); "
                        f"got a {type(x).__name__}")
    try:
        arr = jnp.asarray(x, dtype=default_dtype())
    except TypeError as err:
        raise TypeError(f"{where}: {name} must be a numeric array; got {type(x).__name__}") \
            from err
    if arr.ndim < 2:
        raise ValueError(f"{where}: {name} must have a batch and a feature axis "
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
    function may also be called under ``jax.jit`` (with ``get`` static). ``x2=None`` kernels with
    an ``(N, N)`` output compute only the upper block triangle, and with several JAX devices the
    rows are sharded over all of them, any ``N1`` (padding): ``_layout.py``.
    """

    def __init__(self, layer: Layer):
        self.layer = layer
        self._compute = jax.jit(self._raw, static_argnums=(2, 3, 4))

    def __repr__(self) -> str:
        return f"KernelFn({self.layer.name})"

    def _raw(self, x1, x2, diagonal_spatial: bool, compute_ntk: bool, plan: _layout.Plan):
        def one(a, b):
            k = input_kernel(a, b, diagonal_spatial=diagonal_spatial, compute_ntk=compute_ntk)
            out = self.layer.kernel_map(k)
            return [_finish(o) for o in out] if isinstance(out, list) else _finish(out)

        out = _layout.run(one, x1, x2, plan)
        shape2 = x1.shape if x2 is None else x2.shape
        return _with_shapes(out, self.layer.shape_fn(tuple(x1.shape)),
                            self.layer.shape_fn(tuple(shape2)))

    def __call__(self, x1: Any, x2: Any = None, get: str | Sequence[str] | None = None) -> Any:
        where = f"kernel_fn of {self.layer.name}"
        names = _normalize_get(get, where)
        x1 = _as_input(where, "x1", x1)
        if x2 is not None:
            x2 = _as_input(where, "x2", x2)
            if x2.shape[1:] != x1.shape[1:]:
                raise ValueError(f"{where}: x1 and x2 must have the same "
                                 f"shape apart from the batch axis; got x1 {x1.shape}, "
                                 f"x2 {x2.shape}")
        diagonal = bool(self.layer.diag_req(False))
        compute_ntk = names is None or "ntk" in names
        out_shape = self.layer.shape_fn(tuple(x1.shape))
        flat = not isinstance(out_shape, list) and len(out_shape) == 2
        plan = _layout.make_plan(x1.shape[0], x2 is None, flat)
        out = self._compute(x1, x2, diagonal, compute_ntk, plan)
        return _select(out, names, isinstance(get, str))


class ApplyFn:
    """The public ``apply_fn(params, inputs, **kwargs)`` of a layer: the finite network.

    A plain callable (jit/grad/vmap it like a function) that, like ``KernelFn``, carries its
    ``Layer``, so ``ntk_mlft.empirical`` can read the architecture's structure
    (``Layer.tapped``) for the structured-derivative NTK.
    """

    def __init__(self, layer: Layer):
        self.layer = layer

    def __repr__(self) -> str:
        return f"ApplyFn({self.layer.name})"

    def __call__(self, params, inputs, **kwargs):
        return self.layer.apply_fn(params, inputs, **kwargs)
