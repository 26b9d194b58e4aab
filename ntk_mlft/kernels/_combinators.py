"""Composition: ``serial``, ``parallel``, ``FanOut``, ``FanInSum``, ``Identity``.

Multi-branch values (inputs, shapes, kernels) are Python lists, one entry per branch, as in
neural-tangents. ``FanInSum`` adds the kernels of its branches: each branch ends in an affine
layer with independent zero-mean weights, so cross-covariances (and cross NTK terms) between
branches vanish at infinite width (the residual-block argument of Yang 2019 / Novak et al. 2020).
"""

from __future__ import annotations

import jax

from ._kernel import Kernel
from ._layer import ApplyFn, KernelFn, Layer, layer_of, make_layer

__all__ = ["serial", "parallel", "FanOut", "FanInSum", "Identity"]


def serial(*layers):
    """Compose layers in sequence; returns ``(init_fn, apply_fn, kernel_fn)``."""
    parts: list[Layer] = [layer_of(t, "serial") for t in layers]
    name = "serial(" + ", ".join(p.name for p in parts) + ")"

    def init_fn(key, input_shape):
        params = []
        shape = input_shape
        for p in parts:
            key, layer_key = jax.random.split(key)
            shape, param = p.init_fn(layer_key, shape)
            params.append(param)
        return shape, params  # a list, as neural-tangents' serial (same pytree structure)

    def apply_fn(params, inputs, **kwargs):
        if len(params) != len(parts):
            raise ValueError(f"{name}: expected params for {len(parts)} layers, got {len(params)}")
        out = inputs
        for p, param in zip(parts, params):
            out = p.apply_fn(param, out, **kwargs)
        return out

    def tapped_apply(params, inputs, tap, path, **kwargs):
        if len(params) != len(parts):
            raise ValueError(f"{name}: expected params for {len(parts)} layers, got {len(params)}")
        out = inputs
        for i, (p, param) in enumerate(zip(parts, params)):
            out = p.tapped(param, out, tap, path + (i,), **kwargs)
        return out

    def shape_fn(input_shape):
        shape = input_shape
        for p in parts:
            shape = p.shape_fn(shape)
        return shape

    def kernel_map(k):
        for p in parts:
            k = p.kernel_map(k)
        return k

    def diag_req(downstream_ok: bool) -> bool:
        ok = downstream_ok
        for p in reversed(parts):
            ok = p.diag_req(ok)
        return ok

    layer = Layer(name, init_fn, apply_fn, shape_fn, kernel_map, diag_req, tapped_apply)
    return init_fn, ApplyFn(layer), KernelFn(layer)


def parallel(*layers):
    """Apply layer ``i`` to input branch ``i`` (inputs are a list, e.g. from ``FanOut``)."""
    parts: list[Layer] = [layer_of(t, "parallel") for t in layers]
    name = "parallel(" + ", ".join(p.name for p in parts) + ")"

    def check(values, what):
        # branches are lists (a tuple of ints is one shape); arrays may come in tuples
        kinds = list if what == "input shape" else (list, tuple)
        if not isinstance(values, kinds) or len(values) != len(parts):
            got = f"{len(values)} branches" if isinstance(values, kinds) else \
                f"a single {what} {values if what == 'input shape' else ''}".rstrip()
            raise ValueError(f"{name}: needs a list of {len(parts)} {what}s (use FanOut); "
                             f"got {got}")

    def init_fn(key, input_shape):
        check(input_shape, "input shape")
        keys = jax.random.split(key, len(parts))
        out = [p.init_fn(kk, s) for p, kk, s in zip(parts, keys, input_shape)]
        return [o[0] for o in out], tuple(o[1] for o in out)

    def apply_fn(params, inputs, **kwargs):
        check(inputs, "input")
        return [p.apply_fn(pp, x, **kwargs) for p, pp, x in zip(parts, params, inputs)]

    def tapped_apply(params, inputs, tap, path, **kwargs):
        check(inputs, "input")
        return [p.tapped(pp, x, tap, path + (i,), **kwargs)
                for i, (p, pp, x) in enumerate(zip(parts, params, inputs))]

    def shape_fn(input_shape):
        check(input_shape, "input shape")
        return [p.shape_fn(s) for p, s in zip(parts, input_shape)]

    def kernel_map(ks):
        check(ks, "kernel")
        return [p.kernel_map(k) for p, k in zip(parts, ks)]

    def diag_req(downstream_ok: bool) -> bool:
        return all(p.diag_req(downstream_ok) for p in parts)

    layer = Layer(name, init_fn, apply_fn, shape_fn, kernel_map, diag_req, tapped_apply)
    return init_fn, ApplyFn(layer), KernelFn(layer)


def FanOut(num: int):
    """Copy the input into ``num`` branches."""
    name = f"FanOut({num})"
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        raise ValueError(f"{name}: num must be an integer >= 1; got {num!r}")

    def shape_fn(input_shape):
        if isinstance(input_shape, list):
            raise ValueError(f"{name}: takes one input, got branches with shapes {input_shape}")
        return [tuple(input_shape)] * num

    def init_fn(key, input_shape):
        return shape_fn(input_shape), ()

    def apply_fn(params, inputs, **kwargs):
        return [inputs] * num

    def kernel_map(k):
        return [k] * num

    return make_layer(name, init_fn, apply_fn, shape_fn, kernel_map)


def FanInSum():
    """Sum the branches (all of the same shape, each Gaussian unless there is only one)."""
    name = "FanInSum"

    def shape_fn(input_shape):
        if not isinstance(input_shape, list) or not input_shape:
            raise ValueError(f"{name}: needs a list of branches; got shape {input_shape}")
        shapes = [tuple(s) for s in input_shape]
        if any(s != shapes[0] for s in shapes):
            raise ValueError(f"{name}: all branches must have the same shape; got {shapes}")
        return shapes[0]

    def init_fn(key, input_shape):
        return shape_fn(input_shape), ()

    def apply_fn(params, inputs, **kwargs):
        out = inputs[0]
        for x in inputs[1:]:
            out = out + x
        return out

    def kernel_map(ks):
        if len(ks) > 1 and not all(k.is_gaussian for k in ks):
            raise ValueError(f"{name}: every branch must end in an affine layer (Gaussian "
                             f"output) to be summed; got is_gaussian="
                             f"{[k.is_gaussian for k in ks]} for shapes {[k.shape1 for k in ks]}")

        def total(field):
            vals = [getattr(k, field) for k in ks]
            if vals[0] is None:
                return None
            out = vals[0]
            for v in vals[1:]:
                out = out + v
            return out

        first: Kernel = ks[0]
        return first.replace(nngp=total("nngp"), ntk=total("ntk"), cov1=total("cov1"),
                             cov2=total("cov2"), is_gaussian=all(k.is_gaussian for k in ks))

    return make_layer(name, init_fn, apply_fn, shape_fn, kernel_map)


def Identity():
    """``x -> x`` (kernels unchanged)."""
    def shape_fn(input_shape):
        return input_shape

    def init_fn(key, input_shape):
        return input_shape, ()

    def apply_fn(params, inputs, **kwargs):
        return inputs

    def kernel_map(k):
        return k

    return make_layer("Identity", init_fn, apply_fn, shape_fn, kernel_map)
