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

Ridge (``ridge = λ ≥ 0``, unnormalised): the objective is
``(1/(N K)) [Σ (f(w; x_i) − Y_i)² + λ ‖w − w_s‖²]`` with ``w_s`` the parameters at the start of
the fit. For the linearised model ``f ≈ f(w_s) + J (w − w_s)`` its minimiser predicts
``f(w_s; x) + Θ(x, X) (Θ(X, X) + λ I)⁻¹ (Y − f(w_s; X))`` — kernel ridge regression with the same
unnormalised λ as ``ntk_mlft.predict`` / the spectral estimator — and the conditioning of the
problem is bounded by ``(λ_max(Θ̂) + λ)/λ``, so training reaches that limit in few steps.
"""

from __future__ import annotations

import dataclasses
import functools
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


@functools.lru_cache(maxsize=32)
def _power_iteration(apply_fn: Callable, iterations: int):
    """Jitted ``(params, x, v0) ↦ vᵀ Θ̂ v`` after ``iterations`` power steps (cached per model)."""
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
    return jax.jit(power)


def max_ntk_eigenvalue(apply_fn: Callable, params: PyTree, x: jax.Array, *, iterations: int = 100,
                       seed: int = 0) -> float:
    """``λ_max(J Jᵀ)`` of the empirical NTK on ``x`` (outputs flattened) by power iteration on
    ``v ↦ J (Jᵀ v)`` (one vjp + one jvp each); no Jacobian is formed."""
    check_positive_int("iterations", iterations)
    shape = jax.eval_shape(apply_fn, params, x)
    v0 = jax.random.normal(jax.random.key(seed), shape.shape, shape.dtype)
    v0 = v0 / jnp.sqrt(jnp.sum(v0 * v0))
    return float(_power_iteration(apply_fn, iterations)(params, x, v0))


def _objective(model: Callable, penalised: bool):
    """``(p, x, y, anchor, penalty) ↦ mse(model(p, x), y) + penalty · ‖p − anchor‖²``."""
    def loss_fn(p, x, y, anchor, penalty):
        loss = mse(model(p, x), y)
        if penalised:
            sq = jax.tree.leaves(jax.tree.map(lambda a, b: jnp.sum((a - b) ** 2), p, anchor))
            loss = loss + penalty * sum(sq[1:], sq[0])
        return loss
    return loss_fn


@functools.lru_cache(maxsize=32)
def _jit_objective(model: Callable, penalised: bool):
    return jax.jit(_objective(model, penalised))


def _optax_transform(optimizer: str, learning_rate: float, momentum: float):
    """optax transformation with the learning rate (and momentum) in its state
    (``optax.inject_hyperparams``), so compiled steps are reused across learning rates."""
    import optax

    if optimizer == "gd":
        return optax.inject_hyperparams(optax.sgd)(learning_rate=learning_rate)
    if optimizer == "sgd":
        return optax.inject_hyperparams(optax.sgd)(learning_rate=learning_rate, momentum=momentum)
    return optax.inject_hyperparams(optax.adam)(learning_rate=learning_rate)


@functools.lru_cache(maxsize=32)
def _chunk_runner(optimizer: str, model: Callable, mask_def: Any, mask_leaves: tuple, penalised: bool,
                  chunk: int):
    """Jitted ``(params, state, x, y, anchor, penalty) -> (params, state, losses (chunk,))`` running
    ``chunk`` steps of ``optimizer`` on ``mse + penalty · ‖w − anchor‖²`` (losses before each step).

    Cached per (model, optimizer, mask, chunk): numbers that change between fits (learning rate,
    damping, penalty) live in the state or are arguments, so a new fit of the same model with the
    same data shapes reuses the compiled code."""
    mask = jax.tree.unflatten(mask_def, mask_leaves)
    loss_fn = _objective(model, penalised)

    def step(params, state, x, y, anchor, penalty):
        if optimizer == "curveball":
            _, update = curveball(model, "mse", l2=2.0 * penalty if penalised else 0.0)
            new, state, info = update(params, state, (x, y))
            return apply_mask(new, params, mask), state, info.loss
        import optax

        tx = _optax_transform(optimizer, 1.0, 0.0)       # hyperparameters come from the state
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y, anchor, penalty)
        updates, state = tx.update(grads, state, params)
        return apply_mask(optax.apply_updates(params, updates), params, mask), state, loss

    @jax.jit
    def run_chunk(params, state, x, y, anchor, penalty):
        def body(carry, _):
            p, st = carry
            p, st, loss = step(p, st, x, y, anchor, penalty)
            return (p, st), loss
        (params, state), losses = jax.lax.scan(body, (params, state), None, length=chunk)
        return params, state, losses
    return run_chunk


def fit(apply_fn: Callable, params: PyTree, x: Any, y: Any, *, optimizer: str = "gd",
        max_steps: int = 1000, learning_rate: float | None = None, lr_factor: float = 0.5,
        momentum: float = 0.9, curveball_lambda: float | None = None, rtol: float = 1e-6,
        atol: float = 0.0, chunk: int = 50, trainable: Any = None, offset: Any = None,
        ridge: float = 0.0, progress_desc: str = "train") -> FitResult:
    """Minimise ``mean((apply_fn(params, x) − y)²) + ridge/(N K) · ‖w − params‖²`` full-batch.

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
      ridge: unnormalised ridge λ of the proximal term (module docstring); the reported losses
        include the term. 0 = plain MSE.
    """
    check_choice("optimizer", optimizer, OPTIMIZERS)
    check_positive_int("max_steps", max_steps, allow_zero=True)
    check_positive_int("chunk", chunk)
    lr_factor = check_positive_scalar("lr_factor", lr_factor)
    rtol = check_positive_scalar("rtol", rtol, allow_zero=True)
    atol = check_positive_scalar("atol", atol, allow_zero=True)
    ridge = check_positive_scalar("ridge", ridge, allow_zero=True)
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
    penalised = ridge > 0
    penalty = jnp.asarray(ridge / y.size, dtype)
    anchor = params
    t0 = time.perf_counter()
    if optimizer == "curveball":
        lr = float("nan")
        if curveball_lambda is None:
            curveball_lambda = 0.05 * 2.0 * (max_ntk_eigenvalue(apply_fn, params, x) + ridge) / y.size
        # the anchor (proximal term) is the params at the start of this fit
        state = curveball(apply_fn, "mse", lambda_init=curveball_lambda, l2=2.0 * ridge / y.size)[0](params)
    else:
        if learning_rate is not None:
            lr = check_positive_scalar("learning_rate", learning_rate)
        elif optimizer == "adam":
            lr = 1e-3
        else:
            lam = max_ntk_eigenvalue(apply_fn, params, x) + ridge
            lr = lr_factor * y.size / lam * ((1.0 - momentum) if optimizer == "sgd" else 1.0)
        state = _optax_transform(optimizer, lr, momentum).init(params)
    mask_leaves, mask_def = jax.tree.flatten(mask)
    run_chunk = _chunk_runner(optimizer, apply_fn, mask_def, tuple(mask_leaves), penalised, chunk)
    loss_at = _jit_objective(apply_fn, penalised)
    losses = [float(loss_at(params, x, y, anchor, penalty))]
    stopped, steps = "max_steps", 0
    n_chunks = -(-max_steps // chunk)
    for _ in progress(range(n_chunks), total=n_chunks, desc=progress_desc):
        if losses[-1] <= atol:
            stopped = "atol"
            break
        before = losses[-1]
        params, state, chunk_losses = run_chunk(params, state, x, y, anchor, penalty)
        # chunk_losses[i] is the loss before step i of the chunk; record the loss after each step
        after = float(loss_at(params, x, y, anchor, penalty))
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
