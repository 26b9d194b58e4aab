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

Frozen groups (``trainable``, :mod:`.masks`): the optimiser sees only the trainable leaves
``w_G``, i.e. it trains the restricted model ``w_G ↦ f(w_G, w_frozen; x)`` whose NTK is
``Θ_G = Σ_{g ∈ G} Θ_g`` (``ntk_mlft.empirical.empirical_ntk_by_group``): λ_max, the learning
rate, CurveBall's curvature products and the ridge term are all those of ``Θ_G``, and in the NTK
regime the fit converges to kernel (ridge) regression with ``Θ_G``.

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
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_choice, check_positive_int, check_positive_scalar
from .._progress import progress
from ..optim import curveball
from .masks import combine, make_mask, partition

__all__ = ["OPTIMIZERS", "FitOptions", "FitResult", "centered", "fit", "max_ntk_eigenvalue", "mse"]

OPTIMIZERS = ("gd", "sgd", "adam", "curveball")
PyTree = Any


@dataclasses.dataclass(frozen=True)
class FitOptions:
    """How :func:`fit` (and each stage of :func:`ntk_mlft.training.train_mlft`) trains; checked on
    construction (a bad value raises a ValueError/TypeError naming the field).

    Attributes:
      optimizer: one of ``OPTIMIZERS``.
      max_steps: step limit, exact: steps run in jit-compiled ``lax.scan`` chunks of ``chunk``
        steps (the last one shorter when ``chunk`` does not divide it; one more compilation), and
        the stopping rule is checked between chunks.
      learning_rate: for gd/sgd/adam; default for gd/sgd: ``lr_factor · N K / λ_max(Θ̂)``
        (see module docstring; for sgd also times ``1 − momentum``), for adam 1e-3.
      lr_factor, momentum: the gd/sgd step-size factor and sgd's heavy-ball momentum.
      curveball_lambda: CurveBall's initial damping λ; default ``0.05 · λ_max(GN)`` with
        ``λ_max(GN) = 2 (λ_max(Θ̂) + ridge)/(N K)`` — λ relative to the curvature scale, so the
        choice does not depend on how the loss is normalised (the paper's λ = 1 assumes
        unit-scale curvature). ``λ_max(Θ̂)`` is then estimated to 1e-3 relative (a scale is
        all that is needed); for gd/sgd to 1e-6 (it sets the step size), at most 100 power steps.
      rtol: stop (``"tol"``) when a chunk of ``chunk`` steps changes the loss by at most ``rtol``
        relative, ``|before − after| <= rtol · before``. A chunk that raises the loss by more is
        not convergence and training goes on (to ``max_steps``, or ``FloatingPointError`` when
        it diverges) — unless the loss is at the round-off floor, ``<= eps · initial loss``.
      atol: stop when the loss is ``<= atol``.
      chunk: steps per jit-compiled chunk.
      ridge: unnormalised ridge λ of the proximal term (module docstring); the reported losses
        include the term. 0 = plain MSE.
      trainable: group names to train (the others frozen bitwise; see :mod:`.masks`), None = all.
        Only the trainable leaves are optimised (λ_max, learning rate, CurveBall's curvature and
        the ridge term are those of the restricted model).
      groups: how params are split into groups, as in :func:`ntk_mlft.empirical.resolve_groups`
        (None: one group per parameterised stax layer, ``"layer_00_Dense"``, ...).

    >>> FitOptions(optimizer="curveball", ridge=0.1).max_steps
    1000
    """

    optimizer: str = "gd"
    max_steps: int = 1000
    learning_rate: float | None = None
    lr_factor: float = 0.5
    momentum: float = 0.9
    curveball_lambda: float | None = None
    rtol: float = 1e-6
    atol: float = 0.0
    chunk: int = 50
    ridge: float = 0.0
    trainable: Any = None
    groups: Any = None

    def __post_init__(self) -> None:
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_positive_int("max_steps", self.max_steps, allow_zero=True)
        check_positive_int("chunk", self.chunk)
        for name in ("lr_factor", "rtol", "atol", "ridge"):
            object.__setattr__(self, name, check_positive_scalar(name, getattr(self, name),
                                                                 allow_zero=name != "lr_factor"))
        if self.learning_rate is not None:
            check_positive_scalar("learning_rate", self.learning_rate)
        if self.curveball_lambda is not None:
            check_positive_scalar("curveball_lambda", self.curveball_lambda, allow_zero=True)

    def replace(self, **changes: Any) -> FitOptions:
        """A copy with ``changes`` (checked again)."""
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class FitResult:
    """Outcome of :func:`fit`.

    Attributes:
      params: trained parameters (pytree).
      losses: (steps + 1,) training loss before the first step and after each step.
      steps: number of steps taken.
      learning_rate: the learning rate used (``nan`` for CurveBall, which picks its own).
      stopped: ``"tol"`` (a chunk changed the loss by at most ``rtol`` relative), ``"atol"``, or
        ``"max_steps"`` (not converged by the stopping rule).
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
def _power_iteration(apply_fn: Callable, treedef: Any, flags: tuple, iterations: int, rtol: float):
    """Jitted ``(trainable, frozen, x, v0) ↦ vᵀ Θ̂ v`` (cached per model and mask): power steps
    ``v ← Θ̂ v/‖Θ̂ v‖`` on the NTK of the trainable leaves, at most ``iterations`` of them, stopping
    early once the Rayleigh quotient changes by at most ``rtol`` relative."""
    def power(trainable, frozen, x, v0):
        def f(p):
            return apply_fn(combine(treedef, flags, p, frozen), x)

        _, pullback = jax.vjp(f, trainable)

        def ntk_vec(v):
            (jt_v,) = pullback(v)
            return jax.jvp(f, (trainable,), (jt_v,))[1]

        def body(carry):
            i, v, _, rho = carry
            w = ntk_vec(v)
            norm = jnp.sqrt(jnp.sum(w * w))
            return i + 1, w / jnp.where(norm > 0, norm, 1.0), rho, jnp.sum(v * w)

        def cond(carry):
            # carry after i products: v = v_i, rho = v_{i-1}ᵀ Θ̂ v_{i-1}, prev = the one before
            i, _, prev, rho = carry
            return (i <= iterations) & ((i < 2) | (jnp.abs(rho - prev) > rtol * jnp.abs(rho)))

        zero = jnp.zeros((), v0.dtype)
        return jax.lax.while_loop(cond, body, (0, v0, zero, zero))[3]
    return jax.jit(power)


def max_ntk_eigenvalue(apply_fn: Callable, params: PyTree, x: jax.Array, *, iterations: int = 100,
                       seed: int = 0, rtol: float = 0.0, trainable: Sequence[str] | None = None,
                       groups: Any = None) -> float:
    """``λ_max(J Jᵀ)`` of the empirical NTK on ``x`` (outputs flattened) by power iteration on
    ``v ↦ J (Jᵀ v)`` (one vjp + one jvp each); no Jacobian is formed.

    ``iterations`` power steps (the Rayleigh quotient of the last vector is returned; it
    approaches ``λ_max`` from below), fewer when the quotient changes by at most ``rtol``
    relative between steps. ``trainable``/``groups`` restrict ``J`` to those parameter groups
    (:mod:`.masks`): the NTK ``Θ_G`` of the network with the other groups frozen."""
    check_positive_int("iterations", iterations)
    rtol = check_positive_scalar("rtol", rtol, allow_zero=True)
    mask = make_mask(params, trainable, groups)
    flags = tuple(jax.tree.leaves(mask))
    train_leaves, frozen = partition(params, mask)
    shape = jax.eval_shape(apply_fn, params, x)
    v0 = jax.random.normal(jax.random.key(seed), shape.shape, shape.dtype)
    v0 = v0 / jnp.sqrt(jnp.sum(v0 * v0))
    power = _power_iteration(apply_fn, jax.tree.structure(params), flags, iterations, rtol)
    return float(power(train_leaves, frozen, x, v0))


def _objective(apply_fn: Callable, treedef: Any, flags: tuple, penalised: bool):
    """``(t, fr, x, y, anchor, penalty) ↦ mse(f(combine(t, fr), x), y) + penalty · ‖t − anchor‖²``
    over the trainable leaves ``t`` (the frozen ones ``fr`` do not move, so they add nothing)."""
    def loss_fn(t, frozen, x, y, anchor, penalty):
        loss = mse(apply_fn(combine(treedef, flags, t, frozen), x), y)
        if penalised:
            sq = [jnp.sum((a - b) ** 2) for a, b in zip(t, anchor)]
            loss = loss + penalty * sum(sq[1:], sq[0])
        return loss
    return loss_fn


@functools.lru_cache(maxsize=32)
def _jit_objective(apply_fn: Callable, treedef: Any, flags: tuple, penalised: bool):
    return jax.jit(_objective(apply_fn, treedef, flags, penalised))


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
def _chunk_runner(optimizer: str, apply_fn: Callable, treedef: Any, flags: tuple, penalised: bool,
                  chunk: int):
    """Jitted ``(t, frozen, state, x, y, anchor, penalty) -> (t, state, losses (chunk,))`` running
    ``chunk`` steps of ``optimizer`` on the trainable leaves ``t`` of
    ``mse + penalty · ‖t − anchor‖²`` (losses before each step); the optimiser never sees the
    frozen leaves, so a masked fit is the fit of the restricted model ``t ↦ f(combine(t, frozen))``.

    Cached per (model, optimizer, mask, chunk): numbers that change between fits (learning rate,
    damping, penalty, the frozen leaves) live in the state or are arguments, so a new fit of the
    same model with the same data shapes reuses the compiled code."""
    loss_fn = _objective(apply_fn, treedef, flags, penalised)

    def step(t, frozen, state, x, y, anchor, penalty):
        if optimizer == "curveball":
            def model(p, xx):
                return apply_fn(combine(treedef, flags, p, frozen), xx)
            _, update = curveball(model, "mse", l2=2.0 * penalty if penalised else 0.0)
            t, state, info = update(t, state, (x, y))
            return t, state, info.loss
        import optax

        tx = _optax_transform(optimizer, 1.0, 0.0)       # hyperparameters come from the state
        loss, grads = jax.value_and_grad(loss_fn)(t, frozen, x, y, anchor, penalty)
        updates, state = tx.update(grads, state, t)
        return optax.apply_updates(t, updates), state, loss

    @jax.jit
    def run_chunk(t, frozen, state, x, y, anchor, penalty):
        def body(carry, _):
            p, st = carry
            p, st, loss = step(p, frozen, st, x, y, anchor, penalty)
            return (p, st), loss
        (t, state), losses = jax.lax.scan(body, (t, state), None, length=chunk)
        return t, state, losses
    return run_chunk


def fit(apply_fn: Callable, params: PyTree, x: Any, y: Any, options: FitOptions = FitOptions(), *,
        offset: Any = None, progress_desc: str = "train") -> FitResult:
    """Minimise ``mean((apply_fn(params, x) − y)²) + ridge/(N K) · ‖w − params‖²`` full-batch.

    Args:
      apply_fn: ``apply_fn(params, x) -> (N, K)`` (wrap with :func:`centered` to train f − f₀).
      params: initial parameters (any pytree; groups as in :mod:`.masks`).
      x: (N, *input_shape) inputs; y: (N, K) targets (other shapes are flattened to (N, -1)).
      options: a :class:`FitOptions` (optimizer, step limit, stopping rule, ridge, frozen groups).
      offset: (N, K) added to the targets; ``offset = f(w₀; x)`` trains the centred network
        ``f − f₀`` (the reported losses are then those of ``f − f₀``).
      progress_desc: the progress bar's label.
    """
    if not isinstance(options, FitOptions):
        raise TypeError(f"options must be a FitOptions; got {type(options).__name__}")
    o = options
    optimizer, max_steps, chunk, rtol, atol, ridge = o.optimizer, o.max_steps, o.chunk, o.rtol, o.atol, o.ridge
    trainable, groups, momentum, curveball_lambda = o.trainable, o.groups, o.momentum, o.curveball_lambda
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
    mask = make_mask(params, trainable, groups)
    treedef, flags = jax.tree.structure(params), tuple(jax.tree.leaves(mask))
    t_leaves, frozen = partition(params, mask)
    penalised = ridge > 0
    penalty = jnp.asarray(ridge / y.size, dtype)
    anchor = t_leaves                                   # the proximal term's anchor: the start
    t0 = time.perf_counter()

    def lam_max(rel):
        return max_ntk_eigenvalue(apply_fn, params, x, rtol=rel, trainable=trainable, groups=groups)

    if optimizer == "curveball":
        lr = float("nan")
        if curveball_lambda is None:
            curveball_lambda = 0.05 * 2.0 * (lam_max(1e-3) + ridge) / y.size
        state = curveball(apply_fn, "mse", lambda_init=float(curveball_lambda), l2=2.0 * ridge / y.size)[0](t_leaves)
    else:
        if o.learning_rate is not None:
            lr = float(o.learning_rate)
        elif optimizer == "adam":
            lr = 1e-3
        else:
            lr = o.lr_factor * y.size / (lam_max(1e-6) + ridge)
            lr *= (1.0 - momentum) if optimizer == "sgd" else 1.0
        state = _optax_transform(optimizer, lr, momentum).init(t_leaves)
    run_chunk = _chunk_runner(optimizer, apply_fn, treedef, flags, penalised, chunk)
    loss_at = _jit_objective(apply_fn, treedef, flags, penalised)
    losses = [float(loss_at(t_leaves, frozen, x, y, anchor, penalty))]
    floor = float(jnp.finfo(dtype).eps) * losses[0]
    stopped, steps = "max_steps", 0
    n_chunks = -(-max_steps // chunk)
    for _ in progress(range(n_chunks), total=n_chunks, desc=progress_desc):
        if losses[-1] <= atol:
            stopped = "atol"
            break
        before = losses[-1]
        size = min(chunk, max_steps - steps)  # the last chunk is shorter: max_steps is exact
        runner = run_chunk if size == chunk else _chunk_runner(optimizer, apply_fn, treedef, flags, penalised,
                                                                 size)
        t_leaves, state, chunk_losses = runner(t_leaves, frozen, state, x, y, anchor, penalty)
        # chunk_losses[i] is the loss before step i of the chunk; record the loss after each step
        after = float(loss_at(t_leaves, frozen, x, y, anchor, penalty))
        losses.extend(np.asarray(chunk_losses[1:]).tolist() + [after])
        steps += size
        if not np.isfinite(after):
            raise FloatingPointError(f"training diverged (loss {after}) with optimizer={optimizer!r}, "
                                     f"learning_rate={lr}")
        change = before - after
        # converged: a chunk changed the loss by at most rtol relative, or it rose but only at
        # the round-off floor (eps x the initial loss); a real rise (e.g. divergence) goes on
        if before > 0 and (abs(change) <= rtol * before or (change < 0 and after <= floor)):
            stopped = "tol"
            break
    if losses[-1] <= atol and stopped == "max_steps" and atol > 0:
        stopped = "atol"
    return FitResult(params=combine(treedef, flags, t_leaves, frozen), losses=np.asarray(losses),
                     steps=steps, learning_rate=lr, stopped=stopped,
                     wall_seconds=time.perf_counter() - t0)
