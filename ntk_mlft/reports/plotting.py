"""Figures from result objects (matplotlib imported inside each function; each returns a Figure).

Every figure has labelled axes with units, a legend outside the axes (below them: it never
covers data), and a title naming the problem, the kernel (architecture) and the budget(s),
wrapped to the figure's width; single points are drawn as markers (a one-point line is
invisible); :func:`save_figure` writes it as PNG and PDF.

* :func:`plot_error_vs_budget` — :class:`~ntk_mlft.reports.curves.BudgetCurves`: predicted relative MSE vs
  budget (log-log) for optimal MLFT, single-level finest and equal split, fitted slopes in the
  legend, the theoretical slope as a reference line, cap-bound points hollow, measured points.
* :func:`plot_allocation` — :class:`~ntk_mlft.allocation.Allocation`: samples and spend per level
  (share of the budget), unspent budget in the title.
* :func:`plot_learning_curves` — :class:`~ntk_mlft.reports.curves.LearningCurves`: error vs N per level,
  predicted lines and Monte-Carlo points.
* :func:`plot_predicted_vs_measured` — :class:`~ntk_mlft.reports.curves.Comparison`: scatter with the
  diagonal.
* :func:`plot_measured_vs_predicted`, :func:`plot_measured_error_vs_budget`,
  :func:`plot_validation_overview` — :class:`~ntk_mlft.studies.trained_networks.ValidationResult`: trained
  networks' error vs width / budget beside the NTK limit and the prediction; gap vs width.
* :func:`save_figure` writes ``stem.png`` and ``stem.pdf``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ntk_mlft._io import atomic_path
from ntk_mlft.allocation.rules import RULES

__all__ = ["plot_allocation", "plot_error_vs_budget", "plot_learning_curves", "plot_measured_error_vs_budget",
           "plot_measured_vs_predicted", "plot_predicted_vs_measured", "plot_validation_overview",
           "save_figure"]


def _figure(ncols: int = 1, width: float = 6.4):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols if ncols > 1 else width, 5.4), layout="constrained")
    axes = fig.subplots(1, ncols)
    return fig, axes


def _wrap(text: str, width_in: float, fontsize: float) -> str:
    """``text`` with each line wrapped to what fits in ``width_in`` inches at ``fontsize`` points
    (an average DejaVu Sans glyph is ~0.6 em wide)."""
    import textwrap

    chars = max(20, int(width_in * 72 / (0.6 * fontsize)))
    return "\n".join(textwrap.fill(line, chars) for line in text.split("\n"))


def _title(ax: Any, text: str, fontsize: float = 10) -> None:
    """Axes title wrapped to the axes' width (its subplot-parameter width before the layout)."""
    ax.set_title(_wrap(text, ax.figure.get_figwidth() * ax.get_position().width, fontsize), fontsize=fontsize)


def _suptitle(fig: Any, text: str, fontsize: float = 10) -> None:
    fig.suptitle(_wrap(text, fig.get_figwidth(), fontsize), fontsize=fontsize)


def _legend(fig: Any, axes: Any, fontsize: float = 8) -> None:
    """One legend for ``axes`` below them, outside every axes (constrained layout makes room), so
    it never covers data; entries with the same label are shown once, long labels wrapped."""
    import textwrap

    seen: dict[str, Any] = {}
    for ax in np.atleast_1d(axes):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    if not seen:
        return
    ncol = 1 if len(seen) == 1 else min(3, max(2, int(fig.get_figwidth() // 3.2)))
    chars = max(24, int(fig.get_figwidth() * 72 / ncol / (0.55 * fontsize)) - 6)
    fig.legend(list(seen.values()), [textwrap.fill(label, chars) for label in seen], loc="outside lower center",
               ncol=ncol, fontsize=fontsize, frameon=False)


def _context(problem: str, kernel: str) -> str:
    parts = [f"problem: {problem}" if problem else "", f"kernel: {kernel}" if kernel else ""]
    return ", ".join(p for p in parts if p)


def _fmt_seconds(b: float) -> str:
    if b >= 3600:
        return f"{b / 3600:.3g} h"
    if b >= 60:
        return f"{b / 60:.3g} min"
    return f"{b:.3g} s"


def _budgets_text(budgets: Any) -> str:
    """``"budget 10 s"`` for one distinct value, ``"budgets 10 s to 2 min"`` for several."""
    if budgets is None or not len(np.atleast_1d(budgets)):
        return "budget not stated"
    b = np.unique(np.asarray(budgets, dtype=float))
    if b.size == 1:
        return f"budget {_fmt_seconds(b[0])}"
    return f"budgets {_fmt_seconds(b[0])} to {_fmt_seconds(b[-1])}"


def plot_error_vs_budget(curves: Any):
    """Log-log predicted error vs budget for the three allocation rules, with fitted slopes in the
    legend, the slope theory predicts (``curves.theory_slope``) as a grey reference line through the
    optimal curve, hollow markers where a rule is cap-bound (budget partly unspent) and measured
    points per rule (mean ± s.e.) when present."""
    fig, ax = _figure()
    capped_label = f"cap-bound: budget partly unspent (max {curves.max_samples} samples/level)"
    for method, rule in RULES.items():
        label, color, ls = rule.label, rule.color, rule.linestyle
        e = curves.errors(method)
        if not np.any(np.isfinite(e)):
            continue
        slope = curves.slope(method)
        suffix = f" (fitted slope {slope:.2f})" if np.isfinite(slope) else ""
        ax.loglog(curves.budgets, e, ls, color=color, lw=2, label=label + suffix,
                  marker="o" if np.isfinite(e).sum() == 1 else None)
        cap = curves.cap_bound(method)
        if np.any(cap):
            ax.loglog(curves.budgets[cap], e[cap], "o", mfc="none", color=color, ms=6, label=capped_label)
            capped_label = None
    _theory_line(ax, curves)
    m = curves.measured
    if m is not None:
        for method, rule in RULES.items():
            sel = m.of(method)
            if np.any(sel):
                ax.errorbar(m.budget[sel], m.error[sel], yerr=np.nan_to_num(m.stderr[sel]), fmt="s", color=rule.color,
                            mec="k", ms=6, capsize=3, label=f"measured: {rule.label}")
    if curves.floor > 0:
        ax.axhline(curves.floor, color="0.5", lw=1, label=f"error floor {curves.floor:.2g}")
    ax.set_xlabel("budget (seconds of solver time)")
    ax.set_ylabel("predicted relative MSE (dimensionless)")
    ax.grid(True, which="both", alpha=0.3)
    _legend(fig, ax)
    ctx = _context(curves.problem, curves.kernel)
    span = _budgets_text(curves.budgets) + ("" if curves.max_samples is None
                                            else f", at most {curves.max_samples} samples per level")
    _title(ax, "Error vs budget" + (f" — {ctx}" if ctx else "") + f"\n{span}")
    return fig


def _theory_line(ax: Any, curves: Any) -> None:
    """Reference ``floor + (E_k - floor) (B / B_k)^s`` over the whole budget range, through the
    optimal curve at the largest budget ``B_k`` where it spends its budget (not cap-bound)."""
    s = curves.theory_slope
    e = curves.errors("optimal")
    ok = np.flatnonzero(~curves.cap_bound("optimal") & (e > curves.floor))
    if not np.isfinite(s) or ok.size == 0:
        return
    k = ok[-1]
    b = np.geomspace(curves.budgets[0], curves.budgets[-1], 32)
    y = curves.floor + (e[k] - curves.floor) * (b / curves.budgets[k]) ** s
    ax.loglog(b, y, "-", color="0.35", lw=1, alpha=0.8,
              label=f"theory: slope {s:.2f} through B = {_fmt_seconds(curves.budgets[k])} ({curves.theory_note})")


_RULE_OF_METHOD = {"exact-integer": "optimal", "surrogate+local-search": "optimal", "rounded": "rounded optimal"}


def plot_allocation(allocation: Any, *, problem: str = "", kernel: str = "", grid: Any = None):
    """Two panels: samples per level (log scale) and seconds spent per level with its share of the
    budget, at one budget; the title says how much of the budget is spent and why any is left."""
    fig, (ax_n, ax_s) = _figure(ncols=2, width=4.6)
    levels = np.arange(1, allocation.n_levels + 1)
    names = [f"{l}" if grid is None else f"{l}\n({int(g)} pts)" for l, g in zip(levels, grid if grid is not None
                                                                                    else levels)]
    counts = allocation.counts
    rule = _RULE_OF_METHOD.get(allocation.method, allocation.method)
    ax_n.bar(levels, np.where(counts > 0, counts, np.nan), color="C0", label=f"{rule} N_l")
    ax_n.set_yscale("log")
    capped = set(allocation.capped_levels)
    for l, n in zip(levels, counts):
        if n == 0:
            ax_n.annotate("skipped", (l, 0.03), xycoords=("data", "axes fraction"), ha="center", fontsize=8)
        else:
            ax_n.annotate(f"{n}" + (" (cap)" if l in capped else ""), (l, n), ha="center", va="bottom", fontsize=8)
    ax_n.set_xticks(levels, names)
    ax_n.set_xlabel("level (grid)")
    ax_n.set_ylabel("training samples N_l (count)")
    spend = allocation.spend
    ax_s.bar(levels, spend, color="C1", label="spend per level (% of budget)")
    for l, sp, sh in zip(levels, spend, allocation.share_of_budget):
        ax_s.annotate(f"{100 * sh:.1f}%", (l, sp), ha="center", va="bottom", fontsize=8)
    ax_s.set_xticks(levels, names)
    ax_s.set_xlabel("level (grid)")
    ax_s.set_ylabel("solver time spent (seconds)")
    ax_n.margins(y=0.15)
    ax_s.margins(y=0.15)
    _legend(fig, (ax_n, ax_s), fontsize=9)
    ctx = _context(problem, kernel)
    spent = f"spent {_fmt_seconds(allocation.cost)} ({100 * allocation.cost / allocation.budget:.1f}%)"
    if allocation.unspent_reason != "none":
        spent += f", unspent: {allocation.unspent_reason.split(':')[0]}"
    _suptitle(fig, f"{rule.capitalize()} allocation at budget {_fmt_seconds(allocation.budget)}"
              + (f" — {ctx}" if ctx else "")
              + f"\npredicted relative MSE {allocation.predicted_error:.3g}; {spent}")
    return fig


def plot_learning_curves(curves: Any):
    """Error vs samples of each level (others fixed): predicted lines, Monte-Carlo points; the
    title states the budget of the base allocation, and a note names every level whose predicted
    error rises with more samples (``LearningCurves.rising``)."""
    fig, ax = _figure()
    for l in range(curves.predicted.shape[0]):
        color = f"C{l}"
        ax.loglog(curves.n, curves.predicted[l], "-", color=color, label=f"level {l + 1} predicted",
                  marker="o" if curves.n.size == 1 else None, ms=3)
        if curves.measured is not None and np.any(np.isfinite(curves.measured[l])):
            std = None if curves.measured_std is None else np.nan_to_num(curves.measured_std[l])
            ax.errorbar(curves.n, curves.measured[l], yerr=std, fmt="o", color=color, ms=4,
                        label=f"level {l + 1} Monte-Carlo")
    ax.set_xlabel("samples at the varied level N_l (count)")
    ax.set_ylabel("relative MSE (dimensionless)")
    ax.grid(True, which="both", alpha=0.3)
    rising = curves.rising()
    if rising:
        note = "; ".join(f"level {l}: rises from N = {int(n)}" for l, n in rising.items())
        ax.plot([], [], " ", label=f"predicted error rises with more samples ({note}): more samples of one "
                                   "level do not pay at the other levels' counts")
    _legend(fig, ax)
    ctx = _context(curves.problem, curves.kernel)
    base = ", ".join(str(int(v)) for v in curves.base_counts)
    _title(ax, "Learning curves per level" + (f" — {ctx}" if ctx else "")
           + f"\nother levels at N = ({base}), the optimal allocation at {_budgets_text(curves.budget)}")
    return fig


def plot_predicted_vs_measured(comparison: Any):
    """Scatter of measured vs predicted relative MSE with the y = x line."""
    fig, ax = _figure(width=5.2)
    p, m = comparison.predicted, comparison.measured
    std = None if comparison.measured_std is None else np.nan_to_num(comparison.measured_std)  # NaN: not known
    ax.errorbar(p, m, yerr=std, fmt="o", color="C0", label="allocations")
    for i, (x, y, lab) in enumerate(zip(p, m, comparison.labels)):  # alternate sides: close points stay legible
        ax.annotate(lab, (x, y), textcoords="offset points", xytext=(5, 4) if i % 2 == 0 else (5, -11), fontsize=7)
    lo, hi = float(min(p.min(), m.min())) / 1.5, float(max(p.max(), m.max())) * 1.5
    ax.loglog([lo, hi], [lo, hi], "--", color="0.4", label="measured = predicted")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("predicted relative MSE (dimensionless)")
    ax.set_ylabel("measured relative MSE (dimensionless)")
    ax.grid(True, which="both", alpha=0.3)
    _legend(fig, ax, fontsize=9)
    ctx = _context(comparison.problem, comparison.kernel)
    _title(ax, "Predicted vs measured" + (f" — {ctx}" if ctx else "")
           + f"\n{_budgets_text(comparison.budgets)}, RMS log-ratio {comparison.log_ratio_rmse():.2f}")
    return fig


def save_figure(fig: Any, stem: str | os.PathLike[str], dpi: int = 150) -> tuple[Path, Path]:
    """Write ``stem.png`` and ``stem.pdf`` atomically; returns both paths."""
    stem = Path(stem)
    out = []
    for ext in ("png", "pdf"):
        path = stem.with_name(stem.name + f".{ext}")
        with atomic_path(path, suffix=f".{ext}") as tmp:
            fig.savefig(tmp, format=ext, dpi=dpi)
        out.append(path)
    return out[0], out[1]


def _alloc_label(allocation: str) -> tuple[str, str]:
    """Label and colour of a rule of :data:`ntk_mlft.allocation.RULES` (grey for an unknown name)."""
    rule = RULES.get(allocation)
    return (rule.label, rule.color) if rule is not None else (allocation, "C7")


def _validation_panel(ax: Any, result: Any, budget: float) -> None:
    """Measured error (mean ± s.e.) vs width per allocation, NTK limit (dashed), predicted (dotted)."""
    summ = [d for d in result.summary() if d["budget"] == budget]
    for a in dict.fromkeys(d["allocation"] for d in summ):
        ds = [d for d in summ if d["allocation"] == a]
        label, color = _alloc_label(a)
        w = [d["width"] for d in ds]
        se = np.nan_to_num([d["measured_se"] for d in ds])
        ax.errorbar(w, [d["measured_mean"] for d in ds], yerr=se, fmt="o-", color=color, capsize=3,
                    label=f"{label} {tuple(ds[0]['counts'])}: trained nets")
        ax.plot(w, [d["ntk_mean"] for d in ds], "x--", color=color, ms=7, label=f"{label}: NTK limit, same data")
        ax.plot(w, [d["predicted"] for d in ds], "D:", color=color, lw=2, mfc="none", ms=6,
                label=f"{label}: predicted")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("hidden width (neurons)")
    ax.set_ylabel("relative test MSE vs finest level (dimensionless)")
    ax.grid(True, which="both", alpha=0.3)
    if len(result.widths) == 1:
        ax.set_xticks(list(result.widths), [str(w) for w in result.widths])
        ax.set_xlim(result.widths[0] / 1.5, result.widths[0] * 1.5)
    ax.set_title(f"{_context(result.problem, result.architecture)}\nbudget {_fmt_seconds(budget)}, "
                 f"{len(result.seeds)} seed{'s' if len(result.seeds) != 1 else ''}", fontsize=9)


def plot_measured_vs_predicted(result: Any):
    """:class:`~ntk_mlft.studies.trained_networks.ValidationResult`: one panel per budget — measured relative MSE
    of the trained networks (mean ± s.e. over seeds) against width for each allocation, with the
    infinite-width NTK error on the same data (dashed) and the error model's prediction (dotted)."""
    n = len(result.budgets)
    fig, axes = _figure(ncols=n, width=5.4)
    for ax, b in zip(np.atleast_1d(axes), result.budgets):
        _validation_panel(ax, result, b)
    _legend(fig, axes, fontsize=7)
    _suptitle(fig, f"Predicted vs measured MLFT error — {_context(result.problem, result.architecture)}, "
                   f"{_budgets_text(result.budgets)}, optimizer {result.optimizer}")
    return fig


def plot_measured_error_vs_budget(result: Any):
    """:class:`~ntk_mlft.studies.trained_networks.ValidationResult`: measured error at the largest width vs
    budget (log-log) per allocation (mean ± s.e.), over the NTK-limit and predicted curves."""
    fig, ax = _figure()
    w = max(result.widths)
    summ = [d for d in result.summary() if d["width"] == w]
    for a in dict.fromkeys(d["allocation"] for d in summ):
        ds = sorted((d for d in summ if d["allocation"] == a), key=lambda d: d["budget"])
        label, color = _alloc_label(a)
        b = [d["budget"] for d in ds]
        ax.errorbar(b, [d["measured_mean"] for d in ds], yerr=np.nan_to_num([d["measured_se"] for d in ds]),
                    fmt="o-", color=color, capsize=3, label=f"{label}: trained nets (width {w})")
        ax.plot(b, [d["ntk_mean"] for d in ds], "x--", color=color, ms=7, label=f"{label}: NTK limit, same data")
        ax.plot(b, [d["predicted"] for d in ds], "D:", color=color, lw=2, mfc="none", ms=6,
                label=f"{label}: predicted")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("budget (seconds of solver time)")
    ax.set_ylabel("relative test MSE vs finest level (dimensionless)")
    ax.grid(True, which="both", alpha=0.3)
    if len(result.budgets) == 1:
        ax.set_xlim(result.budgets[0] / 1.5, result.budgets[0] * 1.5)
    _legend(fig, ax, fontsize=7)
    span = ", ".join(_fmt_seconds(b) for b in result.budgets)
    _title(ax, f"Measured error vs budget — {_context(result.problem, result.architecture)}\n"
               f"budget{'s' if len(result.budgets) > 1 else ''} {span}")
    return fig


def plot_validation_overview(results: Any):
    """Several :class:`~ntk_mlft.studies.trained_networks.ValidationResult` (one per problem): a panel per problem
    (first budget, as :func:`plot_measured_vs_predicted`) and a last panel with the finite-width
    gap |measured − NTK|/NTK against width for every problem."""
    results = list(results)
    if not results:
        raise ValueError("results must contain at least one ValidationResult")
    from matplotlib.figure import Figure

    ncols = min(3, len(results) + 1)
    nrows = -(-(len(results) + 1) // ncols)
    fig = Figure(figsize=(4.8 * ncols, 4.2 * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for ax in axes[len(results) + 1:]:
        ax.remove()
    axes = axes[:len(results) + 1]
    for ax, r in zip(axes, results):
        _validation_panel(ax, r, r.budgets[0])
    ax = axes[-1]
    for i, r in enumerate(results):
        g = [d for d in r.gaps() if d["excess_error"] > 0]      # log axes: positive excesses only
        ax.errorbar([d["width"] for d in g], [d["excess_error"] for d in g],
                    yerr=[0 if not np.isfinite(d["excess_error_se"]) else d["excess_error_se"] for d in g],
                    fmt="o-", color=f"C{i}", capsize=2, label=r.problem)
    widths = np.array(sorted({w for r in results for w in r.widths}), dtype=float)
    first = [d["excess_error"] for d in results[0].gaps() if d["excess_error"] > 0]
    if first:
        ax.plot(widths, first[0] * widths[0] / widths, "k:", label="∝ 1/width (theory)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("hidden width (neurons)")
    ax.set_ylabel("excess error: measured − NTK (relative MSE)")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title("Finite-width excess error vs width (mean ± s.e., all budgets)", fontsize=9)
    _legend(fig, axes, fontsize=7)
    budgets = "; ".join(f"{r.problem}: {_budgets_text(r.budgets[:1])}" for r in results)
    _suptitle(fig, f"MLFT validation: trained networks vs NTK theory — kernel {results[0].architecture}, "
                   f"optimizer {results[0].optimizer}\n{budgets}")
    return fig
