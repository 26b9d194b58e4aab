"""Predicted vs measured: train finite-width networks with MLFT and compare with the NTK theory.

For a problem, an architecture and a budget ``B`` (seconds of solver time), each allocation rule
(``optimal`` from :func:`ntk_mlft.allocation.optimize_allocation`, ``single`` = finest level only,
``equal`` = equal spend per level) gives counts ``N_1..N_L``. For every width and seed we draw
independent level data sets of those sizes (``problems.generate``), train the centred network
``f − f₀`` level by level (:func:`ntk_mlft.training.train_mlft`) and measure the relative test
error ``Σ‖f(x) − u_L(x)‖² / Σ‖u_L(x)‖²`` on held-out finest-level data. Beside it we record

- ``ntk_error``: the infinite-width limit on the same data — chained kernel regression with the
  analytic NTK, ``f_l = f_{l−1} + Θ(·, X_l) Θ(X_l, X_l)⁻¹ (u_l(X_l) − f_{l−1}(X_l))``, ``f_0 = 0``
  (DESIGN.md, "The math in one place"); measured − ntk is the finite-width gap, which should
  shrink as the width grows;
- ``predicted_error``: the error model's expectation over data sets for these counts (the number
  the allocation optimises).

Without a user-supplied error model, :func:`fit_power_law_model` fits one from paired pilot data:
for each level difference ``d_l = u_l − u_{l−1}`` (``u_0 = 0``) the NTK regression error at a few
sample sizes, ``e_l(N) ≈ a_l N^{−p_l}``, relative to ``Σ‖u_L‖²`` on a test pool. This treats the
levels as independent (it ignores that later stages also re-fit the earlier residuals), so it is a
model of the error, not an identity; the table shows how well it predicts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._progress import progress
from ._validation import check_choice, check_positive_int, check_positive_scalar
from .training import relative_mse, train_mlft

__all__ = ["ALLOCATIONS", "ValidationResult", "ValidationRow", "allocation_counts",
           "chained_kernel_regression", "fit_power_law_model", "validate"]

ALLOCATIONS = ("optimal", "single", "equal")


@dataclasses.dataclass(frozen=True)
class ValidationRow:
    """One trained network: allocation rule, budget (s), counts (L,), width, seed, measured test
    error, the infinite-width (analytic NTK) error on the same data, the model's predicted error."""

    allocation: str
    budget: float
    counts: tuple[int, ...]
    width: int
    seed: int
    measured_error: float
    ntk_error: float
    predicted_error: float
    train_seconds: float


@dataclasses.dataclass(frozen=True)
class ValidationResult:
    """All rows plus the settings; :meth:`summary` aggregates over seeds."""

    problem: str
    architecture: str
    optimizer: str
    costs: tuple[float, ...]
    budgets: tuple[float, ...]
    widths: tuple[int, ...]
    seeds: tuple[int, ...]
    n_test: int
    error_model: str
    rows: tuple[ValidationRow, ...]

    def summary(self) -> list[dict[str, Any]]:
        """Per (budget, allocation, width): counts, mean/std measured error over seeds, mean NTK
        error, predicted error, and the relative finite-width gap mean(|measured − ntk|)/mean(ntk)."""
        out = []
        keys = sorted({(r.budget, r.allocation, r.width) for r in self.rows},
                      key=lambda k: (k[0], ALLOCATIONS.index(k[1]) if k[1] in ALLOCATIONS else 9, k[2]))
        for b, a, w in keys:
            rs = [r for r in self.rows if (r.budget, r.allocation, r.width) == (b, a, w)]
            m = np.array([r.measured_error for r in rs])
            k = np.array([r.ntk_error for r in rs])
            out.append({"budget": b, "allocation": a, "width": w, "counts": list(rs[0].counts),
                        "measured_mean": float(m.mean()), "measured_std": float(m.std()),
                        "ntk_mean": float(k.mean()), "predicted": rs[0].predicted_error,
                        "relative_gap": float(np.mean(np.abs(m - k)) / np.mean(k)), "n_seeds": len(rs)})
        return out

    def gains(self) -> list[dict[str, Any]]:
        """Per (budget, width): measured and NTK error ratio single/optimal (> 1: MLFT wins)."""
        s = {(d["budget"], d["allocation"], d["width"]): d for d in self.summary()}
        out = []
        for b in self.budgets:
            for w in self.widths:
                if (b, "optimal", w) in s and (b, "single", w) in s:
                    opt, sgl = s[(b, "optimal", w)], s[(b, "single", w)]
                    out.append({"budget": b, "width": w,
                                "measured_single_over_optimal": sgl["measured_mean"] / opt["measured_mean"],
                                "ntk_single_over_optimal": sgl["ntk_mean"] / opt["ntk_mean"],
                                "predicted_single_over_optimal": sgl["predicted"] / opt["predicted"]})
        return out

    def table(self) -> str:
        """Markdown table of :meth:`summary`."""
        lines = ["| budget (s) | allocation | counts | width | measured (mean ± std) | NTK same data | "
                 "predicted | rel. gap to NTK |", "|---|---|---|---|---|---|---|---|"]
        for d in self.summary():
            lines.append(f"| {d['budget']:.4g} | {d['allocation']} | {d['counts']} | {d['width']} | "
                         f"{d['measured_mean']:.4g} ± {d['measured_std']:.2g} | {d['ntk_mean']:.4g} | "
                         f"{d['predicted']:.4g} | {d['relative_gap']:.3g} |")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["summary"] = self.summary()
        d["gains"] = self.gains()
        return d


def chained_kernel_regression(kernel_fn: Any, levels: Sequence[tuple[np.ndarray, np.ndarray]],
                              x_test: np.ndarray, ridge: float = 0.0) -> np.ndarray:
    """Infinite-width MLFT prediction on ``x_test``: successive kernel regressions on the
    residuals, ``f_l = f_{l−1} + Θ(·, X_l)(Θ(X_l, X_l) + ridge·I)⁻¹ (Y_l − f_{l−1}(X_l))``, f₀ = 0.
    Levels with no samples are skipped. Returns (N_test, K)."""
    used = [(np.asarray(x), np.asarray(y).reshape(len(y), -1)) for x, y in levels if len(x)]
    if not used:
        raise ValueError("levels must contain at least one non-empty level")
    alphas = []

    def f(x):
        out = np.zeros((len(x), used[0][1].shape[1]))
        for (xl, _), a in zip(used, alphas):
            out += np.asarray(kernel_fn(x, xl, get="ntk")) @ a
        return out

    for xl, yl in used:
        k = np.asarray(kernel_fn(xl, xl, get="ntk"), np.float64)
        alphas.append(np.linalg.solve(k + ridge * np.eye(len(xl)), yl - f(xl)))
    return f(np.asarray(x_test))


def fit_power_law_model(problem: Any, kernel_fn: Any, *, n_pilot: int = 64, n_test: int = 100,
                        seed: int = 0, ridge: float = 1e-8):
    """Fit ``E(N) = Σ_l a_l N_l^{−p_l}`` from paired pilot data (see module docstring).

    For level l and N ∈ {n_pilot/8, /4, /2, n_pilot}: regress ``d_l`` on the first N pilot inputs
    with the analytic NTK, error on the test pool relative to ``Σ‖u_L‖²``; least-squares fit of
    ``log e = log a − p log N`` (p clipped to [0.05, 2]). Returns a ``PowerLawErrorModel``."""
    from .error_models import PowerLawErrorModel
    from .problems import generate

    n_pilot = check_positive_int("n_pilot", n_pilot)
    if n_pilot < 8:
        raise ValueError(f"n_pilot must be >= 8; got {n_pilot}")
    n_levels = problem.n_levels
    data = generate(problem, [n_pilot + n_test] * n_levels, seed=seed, paired=True)
    x = data.inputs[-1]
    ys = [y.reshape(len(y), -1) for y in data.outputs]
    xtr, xte = x[:n_pilot], x[n_pilot:]
    denom = float(np.sum(ys[-1][n_pilot:] ** 2))
    sizes = np.unique(np.maximum(2, (n_pilot / np.array([8, 4, 2, 1])).astype(int)))
    coef, expo = [], []
    for lev in range(n_levels):
        d = ys[lev] - (ys[lev - 1] if lev else 0.0)
        errs = []
        for n in sizes:
            pred = chained_kernel_regression(kernel_fn, [(xtr[:n], d[:n])], xte, ridge=ridge)
            errs.append(max(float(np.sum((pred - d[n_pilot:]) ** 2)) / denom, 1e-300))
        slope, intercept = np.polyfit(np.log(sizes), np.log(errs), 1)
        p = float(np.clip(-slope, 0.05, 2.0))
        a = float(np.exp(np.mean(np.log(errs) + p * np.log(sizes))))
        coef.append(a)
        expo.append(p)
    return PowerLawErrorModel(coef=np.array(coef), exponent=np.array(expo))


def allocation_counts(rule: str, model: Any, costs: np.ndarray, budget: float):
    """``Allocation`` for ``rule`` in ``ALLOCATIONS`` (helper E's optimiser and baselines)."""
    from .allocation import equal_split_allocation, optimize_allocation, single_level_allocation

    check_choice("allocation", rule, ALLOCATIONS)
    if rule == "optimal":
        return optimize_allocation(model, costs, budget)
    if rule == "single":
        return single_level_allocation(model, costs, budget)
    return equal_split_allocation(model, costs, budget)


def _level_data(problem: Any, counts: Sequence[int], seed: int):
    from .problems import generate

    data = generate(problem, [max(int(c), 1) for c in counts], seed=seed)
    return [(x[:c], y[:c].reshape(c, int(np.prod(y.shape[1:], dtype=int))))
            for x, y, c in zip(data.inputs, data.outputs, counts)]


def validate(problem: Any, *, architecture: str = "mlp-relu-3", budgets: Sequence[float],
             allocations: Sequence[str] = ALLOCATIONS, widths: Sequence[int] = (128, 512, 2048),
             seeds: Sequence[int] = (0, 1, 2), n_test: int = 200, optimizer: str = "gd",
             max_steps: int = 2000, costs: Any = None, error_model: Any = None, n_pilot: int = 64,
             seed: int = 0, architecture_options: dict | None = None) -> ValidationResult:
    """Run the predicted-vs-measured experiment (module docstring). ``problem`` is a ``Problem``
    (``problems.get_problem``); ``costs`` default to ``problems.measure_costs(problem)``;
    ``error_model`` defaults to :func:`fit_power_law_model` on the analytic NTK. Data seeds:
    level data for seed s use ``seed + 1000·(s + 1)``, the test set ``seed + 7``, the pilot ``seed``."""
    from .architectures import get_architecture
    from .costs import as_cost_array
    from .problems import generate, measure_costs

    for a in allocations:
        check_choice("allocations", a, ALLOCATIONS)
    if not allocations:
        raise ValueError("allocations must name at least one rule")
    widths = tuple(check_positive_int("widths", w) for w in widths)
    seeds = tuple(check_positive_int("seeds", s, allow_zero=True) for s in seeds)
    budgets = tuple(check_positive_scalar("budgets", b) for b in budgets)
    if not widths or not seeds or not budgets:
        raise ValueError("widths, seeds and budgets must each have at least one entry")
    n_test = check_positive_int("n_test", n_test)
    c = as_cost_array(costs if costs is not None else measure_costs(problem), problem.n_levels)
    test = generate(problem, [1] * (problem.n_levels - 1) + [n_test], seed=seed + 7)
    x_test, y_test = test.inputs[-1], test.outputs[-1].reshape(n_test, -1)
    out_dim = y_test.shape[1]
    kernel_fn = get_architecture(architecture, output_dim=out_dim, width=widths[0],
                                 **(architecture_options or {})).kernel_fn
    model_name = "user-supplied"
    if error_model is None:
        error_model = fit_power_law_model(problem, kernel_fn, n_pilot=n_pilot, seed=seed)
        model_name = (f"power law fitted to NTK regression of level differences on {n_pilot} paired "
                      f"pilot samples: coef={np.round(error_model.coef, 6).tolist()}, "
                      f"exponent={np.round(error_model.exponent, 3).tolist()}")
    rows = []
    jobs = [(b, a) for b in budgets for a in allocations]
    for b, a in progress(jobs, total=len(jobs), desc="validate"):
        alloc = allocation_counts(a, error_model, c, b)
        counts = tuple(int(n) for n in alloc.counts)
        predicted = float(error_model.error(np.asarray(counts, float)))
        for s in seeds:
            levels = _level_data(problem, counts, seed + 1000 * (s + 1))
            ntk_err = relative_mse(chained_kernel_regression(kernel_fn, levels, x_test), y_test)
            for w in widths:
                arch = get_architecture(architecture, output_dim=out_dim, width=w,
                                        **(architecture_options or {}))
                res = train_mlft(arch, levels, x_test=x_test, y_test=y_test, optimizer=optimizer,
                                 seed=s, center=True, max_steps=max_steps, rtol=1e-7)
                rows.append(ValidationRow(allocation=a, budget=b, counts=counts, width=w, seed=s,
                                          measured_error=res.test_error, ntk_error=ntk_err,
                                          predicted_error=predicted, train_seconds=res.wall_seconds))
    return ValidationResult(problem=getattr(problem, "name", str(problem)), architecture=architecture,
                            optimizer=optimizer, costs=tuple(float(v) for v in c), budgets=budgets,
                            widths=widths, seeds=seeds, n_test=n_test, error_model=model_name,
                            rows=tuple(rows))
