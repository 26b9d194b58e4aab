"""Figures of the transfer-scaling study (each function returns a matplotlib ``Figure``).

* :func:`plot_scaling` -- a :class:`~ntk_mlft.transfer.study.ScalingStudy`: relative MSE vs
  downstream N (log-log), one panel per shift, predicted fine-tune and scratch lines, and
  measured points with standard errors when ``measured`` rows are given (dicts with keys
  ``label``, ``mode`` ("finetune" / "scratch"), ``n_down``, ``mean``, ``stderr``, ``width``).
* :func:`plot_samples_saved` -- studies: the samples-saved factor at the target error vs shift
  size, one line per source (hollow markers: factor is a lower bound, the fine-tune curve
  left the scratch range).
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

    n = len(study.curves)
    fig = Figure(figsize=(3.6 * n, 3.9), layout="constrained")
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
        ax.set_title(f"{curve.label.split(' range ')[-1]} (shift {shift:.2g})", fontsize=9)
        ax.set_xlabel("downstream samples N")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("relative MSE on fresh target inputs")
    handles, labels = axes[0].get_legend_handles_labels()
    seen = dict(zip(labels, handles))
    fig.legend(seen.values(), seen.keys(), loc="outside lower center", ncols=min(len(seen), 4), fontsize=8)
    fig.suptitle(f"transfer from {study.source} ({study.architecture} NTK, {study.size}x{study.size} inputs, "
                 f"pools {study.n_source_pool}/{study.n_target_pool})", fontsize=10)
    return fig


def plot_samples_saved(studies: Sequence[Any]):
    fig, ax = _figure()
    for study in studies:
        shifts = np.array(study.shifts)
        factor = np.array([c.factor_at_target if np.isfinite(c.factor_at_target) else np.nan for c in study.curves])
        bound = np.array([c.factor[0] if c.censored[0] == 1 else np.nan for c in study.curves])
        line, = ax.semilogy(shifts, factor, "o-", label=f"{study.source}")
        ax.semilogy(shifts, bound, "^", mfc="none", color=line.get_color())
    ax.axhline(1.0, color="k", lw=0.8, ls=":")
    ax.set_xlabel("shift size |mid(target) - mid(source)| / width(source)")
    ax.set_ylabel("samples-saved factor N_scratch / N_finetune at the target error")
    ax.set_title("predicted samples saved by fine-tuning (hollow: factor at the smallest N, a lower bound)",
                 fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
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
