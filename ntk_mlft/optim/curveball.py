"""CurveBall: a second-order optimiser with one state vector and no stored curvature.

Henriques, Ehrhardt, Albanie, Vedaldi, "Small steps and giant leaps: Minimal Newton solvers for
deep learning", ICCV 2019 (arXiv 1805.08095). Our own JAX implementation of the update in the
paper (checked against the authors' description of their MATLAB/PyTorch code; nothing copied).

For a model ``y = f(w; x)`` (outputs y, shape of ``model_fn``'s result) and a loss ``L(y)``,
write ``J = ∂y/∂w`` (model Jacobian), ``g = ∇_y L`` and ``H_L = ∇²_y L`` (loss Hessian w.r.t. the
outputs). CurveBall keeps one vector ``z`` (a pytree shaped like the parameters) and at each step

    Δz = Jᵀ H_L J z + λ z + Jᵀ g                      (one jvp for J z, one vjp for Jᵀ(·))
    (β, ρ) = argmin over span{z, Δz} of the damped Gauss–Newton model
             m(s) = gᵀ J s + ½ sᵀ (Jᵀ H_L J + λ I) s,  s = ρ z − β Δz
    z ← ρ z − β Δz,     w ← w + α z.

With ``u = J Δz`` and ``v = J z`` (a second jvp) the 2×2 system is

    A = [[uᵀH_L u + λ‖Δz‖²,  vᵀH_L u + λ Δzᵀz],
         [vᵀH_L u + λ Δzᵀz,  vᵀH_L v + λ‖z‖² ]],    b = [gᵀu, gᵀv],    [β, −ρ] = A⁺ b,

solved with the pseudo-inverse so that a singular A (e.g. z = 0 at the first step, or g = 0 at an
optimum) gives the minimum-norm minimiser instead of NaNs. The model's predicted change of the
loss is ``m = −½ [β, −ρ]·b``. Every ``lambda_interval`` steps the damping λ adapts from the ratio
r = (actual change)/(predicted change): r < ``lambda_low`` → λ ← λ/ω (more damping),
r > ``lambda_high`` → λ ← λ·ω, with ω = ``lambda_factor ** lambda_interval`` (0.999⁵ by default,
as in the authors' code).

``H_L`` is never formed: ``H_L p`` is the forward-mode derivative (jvp) of ``∇_y L`` in direction
``p``. For ``loss_fn="mse"`` (``mean((y − t)²)`` over all output entries) the closed forms
``g = 2 (y − t)/n`` and ``H_L = (2/n) I`` (n = number of output entries) are used.

Proximal term (``l2 = μ > 0``): the objective becomes ``L(f(w)) + (μ/2)‖w − a‖²`` with the anchor
``a`` = the parameters given to ``init``. Its gradient ``μ (w − a)`` joins ``Jᵀ g`` and its Hessian
``μ I`` joins the Gauss–Newton matrix (so λ → λ + μ in Δz and A, and ``b`` gains
``μ (w − a)ᵀ[Δz, z]``). For a model linear in w this is ridge regression; in the NTK regime it
makes training converge to kernel *ridge* regression (see ``ntk_mlft.training.fit``).

Cost per step: one forward pass, two jvps (``J z``, ``J Δz``) and one vjp (``Jᵀ(·)``) — XLA
shares the forward pass between them, measured at ≈ 2.1× a gradient step — plus one forward pass
every ``lambda_interval`` steps for λ's adaptation. Interfaces: :func:`curveball` returns
``(init, update)`` with ``update(params, state, batch)``, since the update needs the model and the
batch, not a gradient; :func:`curveball_transformation` wraps the same update as an optax
``GradientTransformationExtraArgs`` (``batch`` as an extra argument) for use in ``optax.chain``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._checks import check_positive_int, check_positive_scalar

__all__ = [
    "CurveBallInfo",
    "CurveBallState",
    "QuadraticModel",
    "curveball",
    "curveball_transformation",
    "mse_loss",
    "quadratic_model",
]

PyTree = Any
ModelFn = Callable[[PyTree, Any], jax.Array]
LossFn = Callable[[jax.Array, Any], jax.Array]


class CurveBallState(NamedTuple):
    """Optimiser state: the CurveBall vector ``z`` (pytree like params), damping λ, step count,
    and the anchor ``a`` of the proximal term (the initial params; None when ``l2 = 0``)."""

    z: PyTree
    lam: jax.Array
    count: jax.Array
    anchor: PyTree = None


class CurveBallInfo(NamedTuple):
    """Per-step diagnostics: loss before the step, the chosen ρ and β, the model's predicted
    loss change, and λ used for this step (before adaptation)."""

    loss: jax.Array
    rho: jax.Array
    beta: jax.Array
    predicted_change: jax.Array
    lam: jax.Array


class QuadraticModel(NamedTuple):
    """The pieces of one CurveBall step (see module docstring): ``delta_z`` (pytree), the 2×2
    matrix ``a``, the vector ``b`` (2,) and the loss ``L(f(w))`` at the current parameters."""

    delta_z: PyTree
    a: jax.Array
    b: jax.Array
    loss: jax.Array


def mse_loss(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean squared error ``mean((y − t)²)`` over all output entries (a scalar)."""
    return jnp.mean((outputs - targets) ** 2)


def _tree_dot(a: PyTree, b: PyTree) -> jax.Array:
    leaves = jax.tree.leaves(jax.tree.map(lambda x, y: jnp.sum(x * y), a, b))
    return sum(leaves[1:], leaves[0]) if leaves else jnp.zeros(())


def _loss_derivatives(loss_fn: LossFn | str, outputs: jax.Array, targets: Any):
    """``(L(y), g = ∇_y L, p ↦ H_L p)`` at ``y = outputs``."""
    if isinstance(loss_fn, str):  # "mse": closed forms
        n = outputs.size
        resid = outputs - targets
        return jnp.mean(resid ** 2), 2.0 * resid / n, (lambda p: (2.0 / n) * p)

    def loss_of_y(y):
        return loss_fn(y, targets)

    loss, grad = jax.value_and_grad(loss_of_y)(outputs)
    grad_fn = jax.grad(loss_of_y)

    def hvp(p):
        return jax.jvp(grad_fn, (outputs,), (p,))[1]

    return loss, grad, hvp


def quadratic_model(model_fn: ModelFn, loss_fn: LossFn | str, params: PyTree, z: PyTree,
                    lam: jax.Array | float, batch: tuple[Any, Any], l2: float = 0.0,
                    anchor: PyTree = None) -> QuadraticModel:
    """Compute ``Δz = Jᵀ H_L J z + λ z + Jᵀ g`` and the 2×2 system ``(A, b)`` of the module
    docstring at ``params`` for ``batch = (inputs, targets)``: two jvps and one vjp of
    ``model_fn``; no Jacobian or Hessian is formed. With ``l2 = μ > 0`` and ``anchor = a`` the
    objective includes ``(μ/2)‖w − a‖²`` (module docstring); ``loss`` then includes it too."""
    inputs, targets = batch

    def f(p):
        return model_fn(p, inputs)

    outputs, vout = jax.jvp(f, (params,), (z,))            # v = J z
    loss, g, hvp = _loss_derivatives(loss_fn, outputs, targets)
    h_v = hvp(vout)
    _, pullback = jax.vjp(f, params)
    (delta_z,) = pullback(h_v + g)                          # Jᵀ (H_L J z + g)
    damp = lam + l2
    if anchor is not None:
        shift = jax.tree.map(lambda w, w0: w - w0, params, anchor)      # w − a
        delta_z = jax.tree.map(lambda dz, zz, sh: dz + damp * zz + l2 * sh, delta_z, z, shift)
        loss = loss + 0.5 * l2 * _tree_dot(shift, shift)
    else:
        delta_z = jax.tree.map(lambda dz, zz: dz + damp * zz, delta_z, z)
    _, uout = jax.jvp(f, (params,), (delta_z,))            # u = J Δz
    h_u = hvp(uout)
    a11 = jnp.sum(uout * h_u) + damp * _tree_dot(delta_z, delta_z)
    a12 = jnp.sum(vout * h_u) + damp * _tree_dot(delta_z, z)
    a22 = jnp.sum(vout * h_v) + damp * _tree_dot(z, z)
    a = jnp.stack([jnp.stack([a11, a12]), jnp.stack([a12, a22])])
    b = jnp.stack([jnp.sum(g * uout), jnp.sum(g * vout)])
    if anchor is not None:
        b = b + l2 * jnp.stack([_tree_dot(shift, delta_z), _tree_dot(shift, z)])
    return QuadraticModel(delta_z=delta_z, a=a, b=b, loss=loss)


def _solve_2x2(a: jax.Array, b: jax.Array) -> jax.Array:
    """``A⁺ b`` for symmetric A (eigen pseudo-inverse; zero where A is (numerically) singular)."""
    evals, evecs = jnp.linalg.eigh(a)
    scale = jnp.max(jnp.abs(evals))
    cutoff = 1e3 * jnp.finfo(a.dtype).eps * scale
    safe = jnp.where(jnp.abs(evals) > cutoff, evals, 1.0)
    inv = jnp.where(jnp.abs(evals) > cutoff, 1.0 / safe, 0.0)
    return evecs @ (inv * (evecs.T @ b))


def curveball(model_fn: ModelFn, loss_fn: LossFn | str = "mse", *, lambda_init: float = 1.0,
              learning_rate: float = 1.0, auto_lambda: bool = True, lambda_factor: float = 0.999,
              lambda_low: float = 0.5, lambda_high: float = 1.5, lambda_interval: int = 5,
              l2: float = 0.0):
    """Build the CurveBall optimiser for ``model_fn(params, inputs) -> outputs`` and
    ``loss_fn(outputs, targets) -> scalar`` (or ``"mse"``).

    Returns ``(init, update)``, both pure and jit-able:

    - ``init(params) -> CurveBallState`` with ``z = 0``, ``λ = lambda_init``;
    - ``update(params, state, batch) -> (new_params, new_state, CurveBallInfo)`` with
      ``batch = (inputs, targets)``; ``w ← w + learning_rate · z`` (α in the paper).

    ``H_L`` must be positive semi-definite (convex loss in the outputs) for the Gauss–Newton
    model to be meaningful. ``l2 = μ ≥ 0`` adds the proximal term ``(μ/2)‖w − w_init‖²`` to the
    objective (anchor = the params given to ``init``; the term is active when the state has an
    anchor, i.e. ``l2 > 0`` at ``init`` — ``l2`` may be a traced scalar in ``update``). See the module docstring
    for the equations.
    """
    if not callable(model_fn):
        raise TypeError(f"model_fn must be callable(params, inputs); got {type(model_fn).__name__}")
    if isinstance(loss_fn, str):
        if loss_fn != "mse":
            raise ValueError(f"loss_fn must be a callable(outputs, targets) or 'mse'; got {loss_fn!r}")
    elif not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable(outputs, targets) or 'mse'; got {type(loss_fn).__name__}")
    lambda_init = check_positive_scalar("lambda_init", lambda_init, allow_zero=True)
    learning_rate = check_positive_scalar("learning_rate", learning_rate)
    lambda_factor = check_positive_scalar("lambda_factor", lambda_factor)
    if lambda_factor >= 1.0:
        raise ValueError(f"lambda_factor must be in (0, 1); got {lambda_factor!r}")
    lambda_low = check_positive_scalar("lambda_low", lambda_low, allow_zero=True)
    lambda_high = check_positive_scalar("lambda_high", lambda_high)
    if lambda_high <= lambda_low:
        raise ValueError(f"lambda_high must exceed lambda_low; got {lambda_high} <= {lambda_low}")
    lambda_interval = check_positive_int("lambda_interval", lambda_interval)
    if isinstance(l2, (int, float)):      # a traced array is allowed (used inside jit by training.fit)
        l2 = check_positive_scalar("l2", l2, allow_zero=True)
    omega = lambda_factor ** lambda_interval

    def init(params: PyTree) -> CurveBallState:
        leaves = jax.tree.leaves(params)
        if not leaves:
            raise ValueError("params must contain at least one array leaf")
        dtype = jnp.result_type(*leaves)
        z = jax.tree.map(jnp.zeros_like, params)
        anchor = jax.tree.map(jnp.asarray, params) if isinstance(l2, jax.Array) or l2 > 0 else None
        return CurveBallState(z=z, lam=jnp.asarray(lambda_init, dtype), count=jnp.zeros((), jnp.int32),
                              anchor=anchor)

    def update(params: PyTree, state: CurveBallState, batch: tuple[Any, Any]):
        lam = state.lam
        qm = quadratic_model(model_fn, loss_fn, params, state.z, lam, batch, l2, state.anchor)
        coef = _solve_2x2(qm.a, qm.b)                      # [β, −ρ]
        beta, rho = coef[0], -coef[1]
        predicted = -0.5 * jnp.sum(coef * qm.b)
        z = jax.tree.map(lambda zz, dz: rho * zz - beta * dz, state.z, qm.delta_z)
        new_params = jax.tree.map(lambda w, zz: w + learning_rate * zz, params, z)
        if auto_lambda:
            def adapt(lam_):
                inputs, targets = batch
                outputs = model_fn(new_params, inputs)
                new_loss = mse_loss(outputs, targets) if isinstance(loss_fn, str) else loss_fn(outputs, targets)
                if state.anchor is not None:
                    shift = jax.tree.map(lambda w, w0: w - w0, new_params, state.anchor)
                    new_loss = new_loss + 0.5 * l2 * _tree_dot(shift, shift)
                ok = predicted < 0
                ratio = (new_loss - qm.loss) / jnp.where(ok, predicted, -1.0)
                lam_ = jnp.where(ok & (ratio < lambda_low), lam_ / omega, lam_)
                return jnp.where(ok & (ratio > lambda_high), lam_ * omega, lam_)

            new_lam = jax.lax.cond(state.count % lambda_interval == 0, adapt, lambda l: l, lam)
        else:
            new_lam = lam
        info = CurveBallInfo(loss=qm.loss, rho=rho, beta=beta, predicted_change=predicted, lam=lam)
        return new_params, state._replace(z=z, lam=new_lam, count=state.count + 1), info

    return init, update


def curveball_transformation(model_fn: ModelFn, loss_fn: LossFn | str = "mse", **options: Any):
    """CurveBall as an ``optax.GradientTransformationExtraArgs`` (usable in ``optax.chain``).

    ``init(params) -> CurveBallState``; ``update(updates, state, params, *, batch, **extra)
    -> (step, new_state)`` with ``step = learning_rate · z`` (apply with
    ``optax.apply_updates``), ``batch = (inputs, targets)``; ``options`` are those of
    :func:`curveball`. The incoming ``updates`` (gradients) are not used: CurveBall's
    ``Δz = Jᵀ(H_L J z + g) + λ z`` gets the gradient ``Jᵀ g`` from the same backward pass as the
    curvature product, so a separately computed gradient would be one wasted backward pass —
    pass anything with the params' structure (e.g. ``params`` itself). Hence CurveBall belongs
    first in a chain. Transformations after it may rescale or clip the step, but λ's
    adaptation compares the loss at ``params + step`` as CurveBall computed it, and the next
    ``z`` continues from CurveBall's own step, so the result is then no longer CurveBall.
    """
    import optax

    learning_rate = check_positive_scalar("learning_rate", options.get("learning_rate", 1.0))
    init_fn, update_fn = curveball(model_fn, loss_fn, **options)

    def update(updates: PyTree, state: CurveBallState, params: PyTree = None, *,
               batch: tuple[Any, Any] | None = None, **extra_args: Any):
        del updates, extra_args
        if params is None:
            raise ValueError("CurveBall's update needs params (update(updates, state, params, batch=...))")
        if batch is None:
            raise ValueError("CurveBall's update needs batch=(inputs, targets)")
        _, new_state, _ = update_fn(params, state, batch)
        return jax.tree.map(lambda z: learning_rate * z, new_state.z), new_state

    return optax.GradientTransformationExtraArgs(init_fn, update)
