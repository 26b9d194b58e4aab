"""Full-batch training of a network on mean squared error, with a jit-compiled step.

Loss on a training set ``(X, Y)`` with ``Y`` of shape (N, K):
``L(w) = (1/(N K)) Σ_{i,k} (f_k(w; x_i) − Y_ik)²``. Its Gauss–Newton matrix (the Hessian at
zero residual) is ``(2/(N K)) Jᵀ J`` with ``J = ∂f(X)/∂w``; its largest eigenvalue is
``2 λ_max(Θ̂)/(N K)`` where ``Θ̂ = J Jᵀ`` is the empirical NTK on the training set (N K × N K).
Gradient descent is stable when ``η < 2/λ_max(GN)``, so the default learning rate is
``η = c · (N K)/λ_max(Θ̂)`` (c = ``lr_factor`` < 1), with ``λ_max(Θ̂)`` from power iteration
using one jvp and one vjp per iteration (Jacot et al. 2018; Lee et al. 2019 for the NTK regime).

Optimisers: ``"gd"`` (plain full-batch GD at that rate), ``"sgd"`` (heavy-ball momentum, optax),
``"adam"`` (optax), ``"curveball"`` (:mod:`ntk_mlft.optim.curveball`). With ``center=True`` the
network trained is ``f(w; x) − f(w₀; x)`` (w₀ the initial params), so it starts at zero and in
the NTK regime gradient flow converges to deterministic kernel regression.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._progress import progress
from .._validation import check_choice, check_positive_int, check_positive_scalar
from ..optim import curveball
from .masks import apply_mask, make_mask

__all__ = ["OPTIMIZERS", "FitResult", "centered", "fit", "max_ntk_eigenvalue", "mse"]

OPTIMIZERS = ("gd", "sgd", "adam", "curveball")
PyTree = Any


@dataclasses.dataclass(frozen=True)
class FitResult:
    """Outcome of :func:`fit`.

    Attributes:
      params: trained parameters (pytree).
      losses: (steps + 1,) training loss before the first step and after each step.
      steps: number of steps taken.
      learning_rate: the learning rate used (``nan`` for CurveBall, which picks its own).
      stopped: ``"tol"`` (relative decrease below ``rtol`` over a chunk), ``"atol"``, or ``"max_steps"``.
      wall_seconds: wall time of the optimisation (including compilation).
    """

    params: PyTree
    losses: np.ndarray
    steps: int
    learning_rate: float
    stopped: str
    wall_seconds: float


def mse(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """``mean((outputs − targets)²)`` over all entries."""
    return jnp.mean((outputs - targets) ** 2)


def centered(apply_fn: Callable) -> Callable:
    """``(params, params0, x) ↦ f(w; x) − f(w₀; x)``: the network minus itself at initialisation.

    Training ``f − f₀`` on targets ``y`` is training ``f`` on ``y + f₀(X)`` (same loss, same
    gradients), which is how :func:`fit` does it (``offset``); this function is for predictions.
    """
    def apply(params, params0, x):
        return apply_fn(params, x) - apply_fn(params0, x)
    return apply


def max_ntk_eigenvalue(apply_fn: Callable, params: PyTree, x: jax.Array, *, iterations: int = 100,
                       seed: int = 0) -> float:
    """``λ_max(J Jᵀ)`` of the empirical NTK on ``x`` (outputs flattened) by power iteration on
    ``v ↦ J (Jᵀ v)`` (one vjp + one jvp each); no Jacobian is formed."""
    check_positive_int("iterations", iterations)

    def power(params, x, v0):
        def f(p):
            return apply_fn(p, x)

        _, pullback = jax.vjp(f, params)

        def ntk_vec(v):
            (jt_v,) = pullback(v)
            return jax.jvp(f, (params,), (jt_v,))[1]

        def body(_, v):
            w = ntk_vec(v)
            norm = jnp.sqrt(jnp.sum(w * w))
            return w / jnp.where(norm > 0, norm, 1.0)

        v = jax.lax.fori_loop(0, iterations, body, v0)
        return jnp.sum(v * ntk_vec(v))              # Rayleigh quotient at the converged vector

    shape = jax.eval_shape(apply_fn, params, x)
    v0 = jax.random.normal(jax.random.key(seed), shape.shape, shape.dtype)
    v0 = v0 / jnp.sqrt(jnp.sum(v0 * v0))
    return float(jax.jit(power)(params, x, v0))


def _make_step(optimizer: str, model: Callable, mask: PyTree, learning_rate: float,
               momentum: float, curveball_lambda: float):
    """Return ``(state0_fn, step(params, state, x, y) -> (params, state, loss_before))``."""
    def loss_fn(p, x, y):
        return mse(model(p, x), y)

    if optimizer == "curveball":
        init, update = curveball(model, "mse", lambda_init=curveball_lambda)

        def step(params, state, x, y):
            new, state, info = update(params, state, (x, y))
            return apply_mask(new, params, mask), state, info.loss
        return init, step

    import optax

    if optimizer == "gd":
        tx = optax.sgd(learning_rate)
    elif optimizer == "sgd":
        tx = optax.sgd(learning_rate, momentum=momentum)
    else:
        tx = optax.adam(learning_rate)

    def step(params, state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, state = tx.update(grads, state, params)
        new = optax.apply_updates(params, updates)
        return apply_mask(new, params, mask), state, loss
    return tx.init, step


def fit(apply_fn: Callable, params: PyTree, x: Any, y: Any, *, optimizer: str = "gd",
        max_steps: int = 1000, learning_rate: float | None = None, lr_factor: float = 0.5,
        momentum: float = 0.9, curveball_lambda: float | None = None, rtol: float = 1e-6,
        atol: float = 0.0, chunk: int = 50, trainable: Any = None, offset: Any = None,
        progress_desc: str = "train") -> FitResult:
    """Minimise ``mean((apply_fn(params, x) − y)²)`` full-batch.

    Args:
      apply_fn: ``apply_fn(params, x) -> (N, K)`` (wrap with :func:`centered` to train f − f₀).
      params: initial parameters (a ``stax`` params sequence when ``trainable`` is used).
      x: (N, *input_shape) inputs; y: (N, K) targets (other shapes are flattened to (N, -1)).
      optimizer: one of ``OPTIMIZERS``.
      max_steps: step limit (rounded up to a multiple of ``chunk``: steps run in jit-compiled
        ``lax.scan`` chunks, and the stopping rule is checked between chunks).
      learning_rate: for gd/sgd/adam; default for gd/sgd: ``lr_factor · N K / λ_max(Θ̂)``
        (see module docstring; for sgd also times ``1 − momentum``), for adam 1e-3.
      curveball_lambda: CurveBall's initial damping λ; default ``0.05 · λ_max(GN)`` with
        ``λ_max(GN) = 2 λ_max(Θ̂)/(N K)`` — λ relative to the curvature scale, so the choice does
        not depend on how the loss is normalised (the paper's λ = 1 assumes unit-scale curvature).
      rtol: stop when a chunk of ``chunk`` steps lowers the loss by less than ``rtol`` relative.
      atol: stop when the loss is ``<= atol``.
      trainable: group names to train (others frozen bitwise; see :mod:`.masks`), None = all.
      offset: (N, K) added to the targets; ``offset = f(w₀; x)`` trains the centred network
        ``f − f₀`` (the reported losses are then those of ``f − f₀``).
    """
    check_choice("optimizer", optimizer, OPTIMIZERS)
    check_positive_int("max_steps", max_steps, allow_zero=True)
    check_positive_int("chunk", chunk)
    lr_factor = check_positive_scalar("lr_factor", lr_factor)
    rtol = check_positive_scalar("rtol", rtol, allow_zero=True)
    atol = check_positive_scalar("atol", atol, allow_zero=True)
    leaves = jax.tree.leaves(params)
    dtype = jnp.result_type(*leaves) if leaves else jnp.float64
    x = jnp.asarray(x, dtype)
    y = jnp.asarray(y, dtype)
    if y.ndim != 2:
        y = y.reshape(y.shape[0], -1)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must have the same number of rows; got {x.shape[0]} and {y.shape[0]}")
    if offset is not None:
        y = y + jnp.asarray(offset, dtype).reshape(y.shape)
    chunk = min(chunk, max(max_steps, 1))
    mask = make_mask(params, trainable) if trainable is not None else jax.tree.map(lambda _: True, params)
    t0 = time.perf_counter()
    if optimizer == "curveball":
        lr = float("nan")
        if curveball_lambda is None:
            curveball_lambda = 0.05 * 2.0 * max_ntk_eigenvalue(apply_fn, params, x) / y.size
    elif learning_rate is not None:
        lr = check_positive_scalar("learning_rate", learning_rate)
    elif optimizer == "adam":
        lr = 1e-3
    else:
        lam = max_ntk_eigenvalue(apply_fn, params, x)
        lr = lr_factor * y.size / lam * ((1.0 - momentum) if optimizer == "sgd" else 1.0)
    init, step = _make_step(optimizer, apply_fn, mask, lr, momentum, curveball_lambda)
    state = init(params)

    @jax.jit
    def run_chunk(params, state, x, y):
        def body(carry, _):
            p, s = carry
            p, s, loss = step(p, s, x, y)
            return (p, s), loss
        (params, state), losses = jax.lax.scan(body, (params, state), None, length=chunk)
        return params, state, losses

    loss_at = jax.jit(lambda p, x, y: mse(apply_fn(p, x), y))
    losses = [float(loss_at(params, x, y))]
    stopped, steps = "max_steps", 0
    n_chunks = -(-max_steps // chunk)
    for _ in progress(range(n_chunks), total=n_chunks, desc=progress_desc):
        if losses[-1] <= atol:
            stopped = "atol"
            break
        before = losses[-1]
        params, state, chunk_losses = run_chunk(params, state, x, y)
        # chunk_losses[i] is the loss before step i of the chunk; record the loss after each step
        after = float(loss_at(params, x, y))
        losses.extend(np.asarray(chunk_losses[1:]).tolist() + [after])
        steps += chunk
        if not np.isfinite(after):
            raise FloatingPointError(f"training diverged (loss {after}) with optimizer={optimizer!r}, "
                                     f"learning_rate={lr}")
        if before > 0 and (before - after) <= rtol * before:
            stopped = "tol"
            break
    if losses[-1] <= atol and stopped == "max_steps" and atol > 0:
        stopped = "atol"
    return FitResult(params=params, losses=np.asarray(losses), steps=steps, learning_rate=lr,
                     stopped=stopped, wall_seconds=time.perf_counter() - t0)
