"""Figures of the transfer-scaling study (each function returns a matplotlib ``Figure``).

* :func:`plot_scaling` -- a :class:`~ntk_mlft.transfer.study.ScalingStudy`: relative MSE vs
  downstream N (log-log), one panel per shift, predicted fine-tune and scratch lines, and
  measured points with standard errors when ``measured`` rows are given (dicts with keys
  ``label``, ``mode`` ("finetune" / "scratch"), ``n_down``, ``mean``, ``stderr``, ``width``).
* :func:`plot_samples_saved` -- studies: the samples-saved factor vs shift size, one line per
  (source, target system), at the smallest downstream N (hollow markers: censored) and at the
  target error.
* :func:`plot_pretraining_plan` -- a :class:`~ntk_mlft.transfer.scaling.PretrainingPlan`:
  predicted error vs budget with the optimal source/target split and target-only spending.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ntk_mlft.reports.plotting import _figure

__all__ = ["plot_pretraining_plan", "plot_samples_saved", "plot_scaling"]


def plot_scaling(study: Any, measured: Sequence[dict[str, Any]] = ()):
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    from ntk_mlft.reports.plotting import _wrap

    n = len(study.curves)
    width = max(3.6 * n, 7.2)
    fig = Figure(figsize=(width, 3.9 if n > 1 else 5.0), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, n, sharey=True))
    widths = sorted({int(r["width"]) for r in measured})
    shades = {w: 0.35 + 0.65 * i / max(len(widths) - 1, 1) for i, w in enumerate(widths)}
    for ax, curve, shift in zip(axes, study.curves, study.shifts):
        ax.loglog(curve.n_down, curve.scratch, "-", color="tab:gray", label="scratch (predicted)")
        ax.loglog(curve.n_down, curve.finetune, "-", color="tab:blue",
                  label=f"fine-tune, N_pre={curve.n_pre} (predicted)")
        for row in measured:
            if row["label"] != curve.label:
                continue
            ft = row["mode"] == "finetune"
            color = (0.1, 0.3, shades[int(row["width"])]) if ft else (shades[int(row["width"])] * 0.6,) * 3
            ax.errorbar(row["n_down"], row["mean"], yerr=row["stderr"], fmt="o" if ft else "s", ms=4,
                        color=color, capsize=2, label=f"{'fine-tune' if ft else 'scratch'} width {row['width']}")
            if "ntk_limit" in row:
                ax.plot(row["n_down"] * 1.08, row["ntk_limit"], "x" if ft else "+", ms=7, color="tab:red",
                        label=f"{'fine-tune' if ft else 'scratch'}: NTK limit on the same sets")
        ax.set_title(f"{curve.label.split(' range ')[-1]} (shift {shift:.2g})", fontsize=9)
        ax.set_xlabel("downstream samples N")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("relative MSE on fresh target inputs")
    handles, labels = axes[0].get_legend_handles_labels()
    seen = dict(zip(labels, handles))
    fig.legend(seen.values(), seen.keys(), loc="outside lower center", ncols=min(len(seen), 2 if n == 1 else 4),
               fontsize=8)
    fig.suptitle(_wrap(f"transfer from {study.source} ({study.architecture} NTK, {study.size}x{study.size} inputs, "
                       f"pools {study.n_source_pool}/{study.n_target_pool})", width, 10), fontsize=10)
    return fig


def _pair_label(study: Any) -> str:
    target = study.curves[0].label.split(" range ")[0]
    return study.source if study.source.startswith(target) else f"{study.source} -> {target}"


def plot_samples_saved(studies: Sequence[Any]):
    """Two panels vs shift size, one line per (source, target system): the samples-saved factor at
    the smallest downstream N (filled: inside the scratch curve's range; hollow up-triangle: lower
    bound; hollow down-triangle: fine-tuning worse than scratch, factor < 1 unresolved, drawn at the
    panel floor) and the factor at the target error (where both curves reach it)."""
    fig, axes = _figure(2, width=5.2)
    floor = 0.5 * min([1.0] + [float(np.nanmin(c.factor[:1])) for s in studies for c in s.curves
                               if c.censored[0] == 0 and np.isfinite(c.factor[0])])
    for study in studies:
        shifts = np.array(study.shifts)
        first = np.array([c.factor[0] for c in study.curves])
        cens = np.array([c.censored[0] for c in study.curves])
        line, = axes[0].semilogy(shifts, np.where(cens == 0, first, np.nan), "o-", label=_pair_label(study))
        color = line.get_color()
        axes[0].semilogy(shifts, np.where(cens == 1, first, np.nan), "^", mfc="none", color=color)
        axes[0].semilogy(shifts, np.where(cens == -1, floor, np.nan), "v", mfc="none", color=color)
        at_target = np.array([c.factor_at_target for c in study.curves])
        axes[1].semilogy(shifts, at_target, "o-", color=color, label=_pair_label(study))
    n0 = sorted({int(c.n_down[0]) for s in studies for c in s.curves})
    axes[0].set_title(f"at the smallest downstream N ({', '.join(map(str, n0))})", fontsize=9)
    axes[1].set_title("at the target error (scratch error at N_max / 10)", fontsize=9)
    for ax in axes:
        ax.axhline(1.0, color="k", lw=0.8, ls=":")
        ax.set_xlabel("shift |mid(target) - mid(source)| / width(source)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("samples saved: N_scratch / N_finetune")
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle("predicted samples saved by fine-tuning (hollow ^: lower bound, hollow v: fine-tuning worse "
                 "than scratch)", fontsize=9)
    return fig


def plot_pretraining_plan(plan: Any, *, title: str = ""):
    fig, axes = _figure(2, width=4.6)
    ax = axes[0]
    ax.loglog(plan.budgets, plan.error, "o-", label="optimal split (source + target)")
    ax.loglog(plan.budgets, plan.scratch_error, "s--", color="tab:gray", label="target samples only")
    ax.set_xlabel("budget (s)")
    ax.set_ylabel("predicted relative MSE")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax = axes[1]
    ax.loglog(plan.budgets, np.maximum(plan.n_pre, 0.5), "o-", label="N_pre (source)")
    ax.loglog(plan.budgets, plan.n_down, "s-", label="N (target)")
    ax.set_xlabel("budget (s)")
    ax.set_ylabel("samples")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle(f"{title} costs: source {plan.costs[0]:g} s, target {plan.costs[1]:g} s per sample", fontsize=10)
    return fig
