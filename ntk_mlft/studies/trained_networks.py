"""Predicted vs measured: train finite-width networks with MLFT and compare with the NTK theory.

For a problem, an architecture and a budget ``B`` (seconds of solver time), each allocation rule
of :data:`ntk_mlft.allocation.RULES` (``optimal`` on the error model, ``single`` = finest level
only, ``equal`` = equal spend per level) gives counts ``N_1..N_L``. For every seed
we draw independent level data sets of those sizes (``problems.generate``, fresh inputs per
level), and for every width train the centred network ``f − f₀`` level by level
(:func:`ntk_mlft.training.train_mlft`, each stage to its stopping rule, ridge λ) and measure the
relative test error ``Σ‖f(x) − u_L(x)‖² / Σ‖u_L(x)‖²`` on held-out finest-level data. Beside
each measurement we record

- ``ntk_error``: the infinite-width limit on the same data — chained kernel ridge regression with
  the analytic NTK, ``f_l = f_{l−1} + Θ(·, X_l)(Θ(X_l, X_l) + λI)⁻¹ (u_l(X_l) − f_{l−1}(X_l))``,
  ``f_0 = 0`` (:func:`ntk_mlft.predict.multilevel.mlft_predict`; docs/design.md). A centred network trained to
  convergence with the proximal ridge term of :func:`ntk_mlft.training.fit` tends to exactly this
  as the width grows, so ``|measured − ntk|/ntk`` is the finite-width gap;
- ``predicted_error``: the error model's expectation over data sets for these counts — the number
  the allocation optimises: the expected fresh-input (held-out) error. By default the estimator of
  :func:`ntk_mlft.studies.error_model.build_error_model` (``n_pilot`` paired pilot solves +
  ``n_unlabeled`` cheap unlabeled inputs, the same construction as ``ntk-mlft allocate
  --problem`` and ``ntk-mlft demo``); with ``n_unlabeled`` 0 the spectral estimator on the pilot
  inputs alone; a user-supplied ``ErrorModel`` may replace either.

One ridge λ = ``ridge`` · mean NTK diagonal (over the estimator's pool, ``ErrorModelSetup.ridge_absolute``;
over the pilot inputs for a user model, :func:`ntk_mlft.studies.error_model.absolute_ridge`) is used
by the estimator, the kernel
regression and the training, so the three columns describe the same regularised method. Counts
of every rule are capped at the estimator's :func:`ntk_mlft.studies.error_model.sample_cap` (the coverage of
its pool up to which its accuracy is documented), as in ``allocate``.

Nothing is lost: with ``checkpoint_dir`` every trained network's row is appended atomically to
``<checkpoint_dir>/validation-<problem>-<key>.json``, where ``key`` is a content hash of everything
that determines the rows (problem parameters, architecture, optimizer, costs, budgets' counts,
training settings, ridge, seeds of data and test set, package version). A re-run with the same
settings skips the rows already there, so an interrupted multi-hour run resumes where it stopped;
different settings get a different file and never mix. The MLFT chain and the error it is judged
by: ``docs/theory.md`` section 1; the error model: section 6.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ntk_mlft._checks import check_choice, check_positive_int, check_positive_scalar
from ntk_mlft._format import plus_minus
from ntk_mlft._io import content_key, write_json_atomic
from ntk_mlft._progress import progress
from ntk_mlft.allocation.rules import RULES
from ntk_mlft.training import FitOptions, relative_mse, train_mlft

__all__ = ["ALLOCATIONS", "ValidationResult", "ValidationRow", "level_data", "validate"]

ALLOCATIONS = tuple(RULES)
"""The rules a validation may compare (:data:`ntk_mlft.allocation.RULES`)."""


@dataclasses.dataclass(frozen=True)
class ValidationRow:
    """One trained network: allocation rule, budget (s), counts (L,), width, seed, measured test
    error, the infinite-width (analytic NTK) error on the same data, the model's predicted error,
    training wall time (s) and the largest number of steps any stage took."""

    allocation: str
    budget: float
    counts: tuple[int, ...]
    width: int
    seed: int
    measured_error: float
    ntk_error: float
    predicted_error: float
    train_seconds: float
    max_stage_steps: int = 0


def _order(key: tuple) -> tuple:
    b, a, w = key
    return b, ALLOCATIONS.index(a) if a in ALLOCATIONS else len(ALLOCATIONS), w


def _stderr(v: np.ndarray) -> float:
    return float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else float("nan")


@dataclasses.dataclass(frozen=True)
class ValidationResult:
    """All rows plus the settings; :meth:`summary`, :meth:`gains` and :meth:`gaps` aggregate over
    seeds. ``ridge`` is the unnormalised λ used everywhere; ``settings`` records the rest."""

    problem: str
    architecture: str
    optimizer: str
    costs: tuple[float, ...]
    budgets: tuple[float, ...]
    widths: tuple[int, ...]
    seeds: tuple[int, ...]
    n_test: int
    error_model: str
    ridge: float
    rows: tuple[ValidationRow, ...]
    settings: dict = dataclasses.field(default_factory=dict)

    def summary(self) -> list[dict[str, Any]]:
        """Per (budget, allocation, width): counts, mean and standard error over seeds of the
        measured and NTK errors, the predicted error, and the relative finite-width gap
        mean_seeds(|measured − ntk| / ntk)."""
        out = []
        for b, a, w in sorted({(r.budget, r.allocation, r.width) for r in self.rows}, key=_order):
            rs = [r for r in self.rows if (r.budget, r.allocation, r.width) == (b, a, w)]
            m = np.array([r.measured_error for r in rs])
            k = np.array([r.ntk_error for r in rs])
            out.append({"budget": b, "allocation": a, "width": w, "counts": list(rs[0].counts),
                        "measured_mean": float(m.mean()), "measured_se": _stderr(m),
                        "ntk_mean": float(k.mean()), "ntk_se": _stderr(k),
                        "predicted": rs[0].predicted_error,
                        "relative_gap": float(np.mean(np.abs(m - k) / k)), "n_seeds": len(rs)})
        return out

    def gains(self) -> list[dict[str, Any]]:
        """Per (budget, width): error ratio single/optimal (> 1: MLFT wins) measured, in the NTK
        limit on the same data, and predicted; also equal/optimal when present."""
        s = {(d["budget"], d["allocation"], d["width"]): d for d in self.summary()}
        out = []
        for b in self.budgets:
            for w in self.widths:
                if (b, "optimal", w) not in s:
                    continue
                opt = s[(b, "optimal", w)]
                g = {"budget": b, "width": w}
                for other in (r for r in RULES if r != "optimal"):
                    if (b, other, w) in s:
                        o = s[(b, other, w)]
                        g[f"measured_{other}_over_optimal"] = o["measured_mean"] / opt["measured_mean"]
                        g[f"ntk_{other}_over_optimal"] = o["ntk_mean"] / opt["ntk_mean"]
                        g[f"predicted_{other}_over_optimal"] = o["predicted"] / opt["predicted"]
                out.append(g)
        return out

    def gaps(self) -> list[dict[str, Any]]:
        """Per width, over all budgets and allocations: mean relative finite-width gap
        |measured − ntk|/ntk; the mean excess error measured − ntk (relative-MSE units) and its
        standard error; and mean |log(measured/predicted)| (how far the model's prediction is from
        the trained networks).

        The excess is what the NTK theory says must vanish like 1/width for centred networks
        trained to convergence: the trained function is the kernel regressor with the empirical
        kernel, which differs from the analytic NTK by O(width^-1/2) at initialisation and moves
        by O(width^-1/2) in training, so f − f_ntk = O(width^-1/2) and E‖f − u‖² − ‖f_ntk − u‖²
        = O(1/width) (the mean shift of f is itself O(1/width))."""
        out = []
        for w in self.widths:
            rs = [r for r in self.rows if r.width == w]
            m = np.array([r.measured_error for r in rs])
            k = np.array([r.ntk_error for r in rs])
            p = np.array([r.predicted_error for r in rs])
            out.append({"width": w, "finite_width_gap": float(np.mean(np.abs(m - k) / k)),
                        "excess_error": float(np.mean(m - k)), "excess_error_se": _stderr(m - k),
                        "log_ratio_to_predicted": float(np.mean(np.abs(np.log(m / p)))),
                        "log_ratio_ntk_to_predicted": float(np.mean(np.abs(np.log(k / p))))})
        return out

    def table(self) -> str:
        """Markdown table of :meth:`summary`."""
        se = "mean ± s.e." if len(self.seeds) > 1 else "one seed"
        lines = [f"| budget (s) | allocation | counts | width | measured ({se}) | NTK, same data | "
                 "predicted | rel. gap to NTK |", "|---|---|---|---|---|---|---|---|"]
        for d in self.summary():
            lines.append(f"| {d['budget']:.4g} | {d['allocation']} | {tuple(d['counts'])} | {d['width']} | "
                         f"{plus_minus(d['measured_mean'], d['measured_se'])} | {d['ntk_mean']:.4g} | "
                         f"{d['predicted']:.4g} | {d['relative_gap']:.3g} |")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict: the fields plus ``summary``, ``gains`` and ``gaps``."""
        d = dataclasses.asdict(self)
        d["summary"] = self.summary()
        d["gains"] = self.gains()
        d["gaps"] = self.gaps()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ValidationResult:
        """Inverse of :meth:`to_dict` (derived keys are ignored), e.g. to re-plot a JSON file."""
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        kw["rows"] = tuple(ValidationRow(**{**r, "counts": tuple(r["counts"])}) for r in d["rows"])
        for key in ("costs", "budgets", "widths", "seeds"):
            kw[key] = tuple(kw[key])
        return cls(**kw)


def level_data(problem: Any, counts: Sequence[int], seed: int, cache_dir: Any = None
               ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Independent training sets: level l gets ``counts[l]`` fresh inputs (its own seed stream)
    and their level-l solutions, outputs flattened to (N_l, D); empty levels are (0, ...) arrays."""
    from ntk_mlft.problems import generate

    data = generate(problem, [max(int(c), 1) for c in counts], seed=seed, cache_dir=cache_dir)
    return [(x[:c], y[:c].reshape(c, int(np.prod(y.shape[1:], dtype=int))))
            for x, y, c in zip(data.inputs, data.outputs, (int(c) for c in counts))]


class _Checkpoint:
    """Rows of one experiment on disk, keyed by ``(budget, allocation, width, seed)`` (module
    docstring). ``path`` is ``None`` when checkpointing is off."""

    def __init__(self, directory: Any, problem: str, description: dict[str, Any]):
        self.path = None
        self.rows: dict[tuple, ValidationRow] = {}
        if directory is None:
            return
        key = content_key(description)
        self.path = Path(directory) / f"validation-{problem}-{key}.json"
        if self.path.exists():
            try:
                stored = json.loads(self.path.read_text())
                rows = [ValidationRow(**{**r, "counts": tuple(r["counts"])}) for r in stored["rows"]]
            except (ValueError, KeyError, TypeError) as err:
                raise ValueError(f"checkpoint_dir: {self.path} is not a validation checkpoint ({err}); "
                                 "move it away to start afresh") from err
            self.rows = {self._key(r): r for r in rows}
        self.description = description

    @staticmethod
    def _key(row: ValidationRow) -> tuple:
        return float(row.budget), row.allocation, int(row.width), int(row.seed)

    def get(self, budget: float, allocation: str, width: int, seed: int, counts: tuple):
        row = self.rows.get((float(budget), allocation, int(width), int(seed)))
        return row if row is not None and tuple(row.counts) == tuple(counts) else None

    def add(self, row: ValidationRow) -> None:
        self.rows[self._key(row)] = row
        if self.path is not None:
            write_json_atomic(self.path, {"description": self.description,
                                          "rows": [dataclasses.asdict(r) for r in self.rows.values()]})


def _check_lists(allocations, widths, seeds, budgets):
    if not allocations:
        raise ValueError("allocations must name at least one of " + ", ".join(ALLOCATIONS))
    for a in allocations:
        check_choice("allocations", a, ALLOCATIONS)
    widths = tuple(check_positive_int("widths", w) for w in widths)
    seeds = tuple(check_positive_int("seeds", s, allow_zero=True) for s in seeds)
    budgets = tuple(check_positive_scalar("budgets", b) for b in budgets)
    if not widths or not seeds or not budgets:
        raise ValueError("widths, seeds and budgets must each have at least one entry")
    return tuple(allocations), widths, seeds, budgets


def validate(problem: Any, *, architecture: str = "mlp-relu-3", budgets: Sequence[float],
             allocations: Sequence[str] = ALLOCATIONS, widths: Sequence[int] = (32, 128, 512),
             seeds: Sequence[int] = (0, 1), n_test: int = 200, optimizer: str = "curveball",
             max_steps: int = 600, rtol: float = 1e-4, ridge: float = 0.1, costs: Any = None,
             error_model: Any = None, n_pilot: int = 150, max_samples: int | None = None,
             seed: int = 0, cache_dir: Any = None, architecture_options: dict | None = None,
             checkpoint_dir: Any = None, n_unlabeled: int | None = 3000) -> ValidationResult:
    """Run the predicted-vs-measured experiment (module docstring).

    Args:
      problem: a ``Problem`` (``problems.get_problem``).
      budgets: seconds of solver time; allocations: subset of ``ALLOCATIONS``.
      widths, seeds: hidden widths and seeds (seed s: level data from the named stream
        ``"level data"``, index s, of ``seed`` (:mod:`ntk_mlft._seeds`), network initialisation s).
      optimizer, max_steps, rtol: training per stage (``train_mlft``; a stage stops when a chunk
        of 20 steps lowers the objective by less than ``rtol`` relative, or at ``max_steps``).
      ridge: relative to the mean NTK diagonal on the pilot inputs (estimator, NTK, training).
      costs: (L,) seconds per sample or a ``CostTable``; default ``problems.measure_costs``.
      error_model: any ``ErrorModel``; default :func:`ntk_mlft.studies.error_model.build_error_model`
        on ``n_pilot`` paired pilot solves and ``n_unlabeled`` unlabeled inputs (seed ``seed``; with
        ``n_unlabeled`` 0 or None the spectral estimator on the pilot inputs alone).
      max_samples: cap per level for every rule; default the estimator's ``sample_cap``.
      cache_dir: dataset cache folder passed to ``problems.generate``.
      checkpoint_dir: folder for the resumable row checkpoint (module docstring); ``None``: off.
    The test set is ``n_test`` fresh finest-level samples from the named stream ``"test set"`` of ``seed``.
    """
    from ntk_mlft._linalg import kernel_float64
    from ntk_mlft._seeds import derived_seed
    from ntk_mlft.allocation.costs import as_cost_array
    from ntk_mlft.architectures import get_architecture
    from ntk_mlft.predict.multilevel import mlft_predict
    from ntk_mlft.problems import generate, measure_costs
    from ntk_mlft.studies.error_model import absolute_ridge, build_error_model, pilot_from_problem

    allocations, widths, seeds, budgets = _check_lists(allocations, widths, seeds, budgets)
    n_test = check_positive_int("n_test", n_test)
    n_pilot = check_positive_int("n_pilot", n_pilot)
    n_unlabeled = check_positive_int("n_unlabeled", n_unlabeled or 0, allow_zero=True)
    ridge = check_positive_scalar("ridge", ridge, allow_zero=True)
    arch_opts = dict(architecture_options or {})
    c = as_cost_array(costs if costs is not None else measure_costs(problem), problem.n_levels)
    test_seed = derived_seed(seed, "test set")
    test = generate(problem, [1] * (problem.n_levels - 1) + [n_test], seed=test_seed, cache_dir=cache_dir)
    x_test, y_test = test.inputs[-1], test.outputs[-1].reshape(n_test, -1)
    out_dim = y_test.shape[1]
    kernel_fn = get_architecture(architecture, output_dim=out_dim, **arch_opts).kernel_fn
    if error_model is None:
        pilot = pilot_from_problem(problem, n_pilot, seed=seed, cache_dir=cache_dir, n_unlabeled=n_unlabeled)
        setup = build_error_model(pilot, architecture, ridge, seed=seed, **arch_opts)
        error_model, lam, model_name = setup.model, setup.ridge_absolute, setup.describe()
        cap = max_samples if max_samples is not None else setup.max_samples
    else:
        pilot = pilot_from_problem(problem, n_pilot, seed=seed, cache_dir=cache_dir)
        lam = absolute_ridge(kernel_float64(kernel_fn, pilot.x), ridge)
        model_name = f"user-supplied {type(error_model).__name__}"
        cap = max_samples
    data_seeds = {s: derived_seed(seed, "level data", s) for s in seeds}
    fit_options = FitOptions(optimizer=optimizer, max_steps=max_steps, rtol=rtol, ridge=lam, chunk=20)
    # one Architecture per width, reused across allocations and seeds: its apply_fn keys the
    # compiled training steps (ntk_mlft.training caches them per model and data shape)
    nets = {w: get_architecture(architecture, output_dim=out_dim, width=w, **arch_opts) for w in widths}
    settings = {"max_steps": max_steps, "rtol": rtol, "ridge_relative": ridge, "n_pilot": n_pilot,
                "n_unlabeled": n_unlabeled, "max_samples": cap, "seed": seed, "architecture_options": arch_opts}
    from ntk_mlft import __version__

    name = getattr(problem, "name", str(problem))
    store = _Checkpoint(checkpoint_dir, name, {
        "problem": name, "problem_params": getattr(problem, "params", {}), "architecture": architecture,
        "optimizer": optimizer, "costs": c, "n_test": n_test, "error_model": model_name, "ridge": lam,
        "settings": settings, "test_seed": test_seed, "data_seeds": [data_seeds[s] for s in seeds],
        "version": __version__})
    rows = []
    jobs = [(b, a) for b in budgets for a in allocations]
    for b, a in progress(jobs, total=len(jobs), desc="validate"):
        alloc = RULES[a].allocate(error_model, c, b, max_samples=cap)
        if alloc is None:
            raise ValueError(f"budgets: {b:.6g} s is below the minimum budget of the {RULES[a].label} "
                             f"({c.size * c[-1]:.6g} s)")
        counts = tuple(int(n) for n in alloc.counts)
        predicted = float(error_model.error(np.asarray(counts, float)))
        for s in seeds:
            done = {w: store.get(b, a, w, s, counts) for w in widths}
            if all(r is not None for r in done.values()):
                rows += done.values()
                continue
            levels = level_data(problem, counts, data_seeds[s], cache_dir)
            ntk = mlft_predict(kernel_fn, [x for x, _ in levels], [y for _, y in levels], x_test, ridge=lam)
            ntk_err = relative_mse(ntk, y_test)
            for w in widths:
                if done[w] is None:
                    res = train_mlft(nets[w], levels, fit_options, x_test=x_test, y_test=y_test, seed=s, center=True)
                    done[w] = ValidationRow(allocation=a, budget=b, counts=counts, width=w, seed=s,
                                            measured_error=res.test_error, ntk_error=ntk_err,
                                            predicted_error=predicted, train_seconds=res.wall_seconds,
                                            max_stage_steps=max(r.steps for r in res.levels))
                    store.add(done[w])
                rows.append(done[w])
    return ValidationResult(problem=name, architecture=architecture,
                            optimizer=optimizer, costs=tuple(float(v) for v in c), budgets=budgets,
                            widths=widths, seeds=seeds, n_test=n_test, error_model=model_name,
                            ridge=lam, rows=tuple(rows), settings=settings)
