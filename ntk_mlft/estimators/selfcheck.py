"""Self-check of a recommended allocation: never a confident wrong number.

``self_check`` re-measures the model's optimum and both baselines (single level, equal split)
with the surrogate calibration (``calibration.calibrate``: a small label-free Monte-Carlo on the
pool with surrogate targets of the estimated mode powers) and warns when the model is off the
checked value by more than ``tolerance`` beyond two standard errors, or when a baseline beats
the optimum under the check. ``pilot_consistency`` sees the labels: the closed form against
Monte-Carlo on the pilot pairs alone at the allocations scaled to the pilot's size (same
coverage), so a target whose structure the closed form misjudges is caught at small scale.
``pilot_warnings`` names the pilot diagnostics no check can vouch for (no resolved mode, tail
power dominating) and what to do. Results are frozen (``SelfCheck``, ``PilotConsistency``);
``render`` gives the lines a command prints, ``as_dict`` what its JSON carries.

Contract: rows with sum_l N_l <= the pool size (pilot: its n_p after scaling); cost: the rows x
n_draws x n_trials chained solves on the pool (pilot: n_trials on the pilot pairs).
Derivation: docs/theory.md section 9.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ntk_mlft.estimators.calibration import PoolModes, calibrate
from ntk_mlft.estimators.montecarlo import montecarlo_error
from ntk_mlft.estimators.spectral import SpectralEstimator

__all__ = ["PilotConsistency", "SelfCheck", "TAIL_WARNING", "TOLERANCE", "pilot_consistency",
           "pilot_warnings", "scaled_counts", "self_check"]

TOLERANCE = 0.25        # |model / check - 1| beyond which the check disagrees
TAIL_WARNING = 0.5      # unresolved power fraction of a level beyond which a warning is given
NAMES = ("optimum", "single level", "equal split")


@dataclass(frozen=True)
class SelfCheck:
    """names (3,), counts (3, L), model (3,) predictions, checked (3,) calibrated values and
    their standard errors (3,), tolerance, agrees (every row within tolerance + 2 s.e.),
    ranking_holds (no baseline beats the optimum under the check beyond 2 s.e.), pick (index of
    the lowest checked error), warnings (messages, diagnostics included)."""

    names: tuple[str, ...]
    counts: np.ndarray
    model: np.ndarray
    checked: np.ndarray
    checked_stderr: np.ndarray
    tolerance: float
    agrees: bool
    ranking_holds: bool
    pick: int
    warnings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.agrees and self.ranking_holds and not self.warnings

    def render(self) -> list[str]:
        lines = [f"self-check (surrogate Monte-Carlo on the pool; tolerance {self.tolerance:.0%}): "
                 + ("passed" if self.ok else "WARNING")]
        for name, c, m, v, s in zip(self.names, self.counts, self.model, self.checked,
                                    self.checked_stderr):
            lines.append(f"  {name:<13} counts {[int(x) for x in c]}: model {m:.4g}, "
                         f"check {v:.4g} +- {s:.2g}")
        lines += [f"  warning: {w}" for w in self.warnings]
        return lines

    def as_dict(self) -> dict[str, Any]:
        return {"names": list(self.names), "counts": self.counts.astype(int).tolist(),
                "model": self.model.tolist(), "checked": self.checked.tolist(),
                "checked_stderr": self.checked_stderr.tolist(), "tolerance": self.tolerance,
                "agrees": self.agrees, "ranking_holds": self.ranking_holds,
                "pick": self.names[self.pick], "ok": self.ok, "warnings": list(self.warnings)}


def pilot_warnings(resolved_rank: Any, tail_fraction: Any, tail_limit: float = TAIL_WARNING
                   ) -> tuple[str, ...]:
    """Warnings for pilot diagnostics (``PilotEstimator.diagnostics``): a level whose pilot
    resolves at most one mode, or whose unresolved (tail) power fraction exceeds tail_limit."""
    rank = np.asarray(resolved_rank)
    tail = np.asarray(tail_fraction, dtype=np.float64)
    out = []
    thin = [i + 1 for i in range(rank.size) if rank[i] <= 1]
    if thin:
        out.append(f"resolved rank <= 1 at level(s) {thin} (resolved_rank {rank.tolist()}): the "
                   f"pilot cannot tell where those levels' power lies; add pilot pairs")
    heavy = [i + 1 for i in range(tail.size) if tail[i] > tail_limit]
    if heavy:
        out.append(f"tail power fraction above {tail_limit:.0%} at level(s) {heavy} "
                   f"(tail_fraction {np.round(tail, 3).tolist()}): the prediction rests on "
                   f"spreading unresolved power evenly; add pilot pairs (and unlabeled inputs)")
    return tuple(out)


def self_check(model: Any, modes: PoolModes, coefs: np.ndarray, rows: Any, *, ridge: Any,
               noise: Any = 0.0, tolerance: float = TOLERANCE, diagnostics: tuple[str, ...] = (),
               n_draws: int = 6, n_trials: int = 4, seed: int = 0) -> SelfCheck:
    """Check rows (3, L) = (optimum, single level, equal split) of ``model`` on the pool of
    ``modes`` with surrogates of coefs (``calibration``); ``diagnostics``: warnings to carry
    (``pilot_warnings``)."""
    if not (np.isfinite(tolerance) and tolerance > 0):
        raise ValueError(f"tolerance must be a finite number > 0; got {tolerance!r}")
    c = np.asarray(rows, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != len(NAMES):
        raise ValueError(f"rows must have shape (3, L) (optimum, single level, equal split); "
                         f"got {c.shape}")
    cal = calibrate(model, modes, coefs, c, ridge=ridge, noise=noise, n_draws=n_draws,
                    n_trials=n_trials, seed=seed)
    off = np.abs(cal.model - cal.corrected) > tolerance * cal.corrected + 2 * cal.corrected_stderr
    beaten = cal.corrected[1:] + 2 * np.hypot(cal.corrected_stderr[1:], cal.corrected_stderr[0]) \
        < cal.corrected[0]
    warnings = list(diagnostics)
    for i in np.flatnonzero(off):
        warnings.append(f"the model predicts {cal.model[i]:.4g} for the {NAMES[i]} "
                        f"{[int(x) for x in c[i]]} but the check measures {cal.corrected[i]:.4g} "
                        f"+- {cal.corrected_stderr[i]:.2g} ({cal.model[i] / cal.corrected[i] - 1:+.0%})")
    for i in np.flatnonzero(beaten):
        warnings.append(f"under the check the {NAMES[i + 1]} {[int(x) for x in c[i + 1]]} "
                        f"({cal.corrected[i + 1]:.4g}) beats the recommended optimum "
                        f"({cal.corrected[0]:.4g}); prefer it or add pilot data")
    return SelfCheck(NAMES, c, cal.model, cal.corrected, cal.corrected_stderr, float(tolerance),
                     not bool(off.any()), not bool(beaten.any()), int(np.argmin(cal.corrected)),
                     tuple(warnings))


@dataclass(frozen=True)
class PilotConsistency:
    """counts (M, L) scaled to the pilot pool; closed_form, monte_carlo, stderr (M,) on it;
    tolerance; agrees (every row within tolerance + 2 s.e.); warnings."""

    counts: np.ndarray
    closed_form: np.ndarray
    monte_carlo: np.ndarray
    stderr: np.ndarray
    tolerance: float
    agrees: bool
    warnings: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"counts": self.counts.astype(int).tolist(), "closed_form": self.closed_form.tolist(),
                "monte_carlo": self.monte_carlo.tolist(), "stderr": self.stderr.tolist(),
                "tolerance": self.tolerance, "agrees": self.agrees, "warnings": list(self.warnings)}


def scaled_counts(counts: Any, pool_size: int, n_pilot: int) -> np.ndarray:
    """counts (M, L) on a pool of pool_size scaled to n_pilot points (same coverage), used
    levels kept >= 1, each row's total <= n_pilot / 2."""
    c = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    out = np.where(c > 0, np.maximum(np.round(c * n_pilot / pool_size), 1), 0)
    total = out.sum(1, keepdims=True)
    over = total > n_pilot // 2
    out = np.where(over & (out > 0), np.maximum(np.floor(out * (n_pilot // 2) / total), 1), out)
    return out.astype(np.int64)


def pilot_consistency(k_pilot: Any, ys: Any, counts: Any, pool_size: int, *, ridge: Any,
                      noise: Any = 0.0, tolerance: float = TOLERANCE, n_trials: int = 32,
                      seed: int = 0) -> PilotConsistency:
    """Closed form vs Monte-Carlo (disjoint sets, fresh inputs) on the pilot pairs: k_pilot
    (n_p, n_p), ys (L, n_p, ...) the pilot targets, counts (M, L) on the pool of pool_size
    points, scaled by ``scaled_counts``; ``ridge``, ``noise`` as ``montecarlo_error``."""
    if not (np.isfinite(tolerance) and tolerance > 0):
        raise ValueError(f"tolerance must be a finite number > 0; got {tolerance!r}")
    n_p = int(np.shape(k_pilot)[0])
    rows = scaled_counts(counts, pool_size, n_p)
    cf = SpectralEstimator.from_kernel(k_pilot, ys, ridge=ridge, noise=noise).error_many(rows)
    mc = montecarlo_error(k_pilot, ys, rows, ridge=ridge, noise=noise, n_trials=n_trials,
                          seed=seed, sets="disjoint")
    off = np.abs(cf - mc.fresh_mean) > tolerance * mc.fresh_mean + 2 * mc.fresh_stderr
    warnings = tuple(
        f"on the {n_p} pilot pairs alone the closed form predicts {cf[i]:.4g} for counts "
        f"{rows[i].tolist()} but Monte-Carlo measures {mc.fresh_mean[i]:.4g} +- "
        f"{mc.fresh_stderr[i]:.2g} ({cf[i] / mc.fresh_mean[i] - 1:+.0%}): the closed form "
        f"misjudges this target; treat the prediction as uncertain by that much, or validate "
        f"the allocation (ntk-mlft validate)" for i in np.flatnonzero(off))
    return PilotConsistency(rows, cf, mc.fresh_mean, mc.fresh_stderr, float(tolerance),
                            not bool(off.any()), warnings)
