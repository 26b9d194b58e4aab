"""Figures build from result objects, carry labels/legends/titles, and are written as PNG + PDF."""

from __future__ import annotations

import numpy as np
import pytest

from ntk_mlft.allocation import optimize_allocation
from ntk_mlft.estimators.base import PowerLawErrorModel
from ntk_mlft.reports.curves import Comparison, MeasuredPoints, budget_curves, predicted_learning_curves
from ntk_mlft.reports.plotting import (
    plot_allocation,
    plot_error_vs_budget,
    plot_learning_curves,
    plot_predicted_vs_measured,
    save_figure,
)

MODEL = PowerLawErrorModel([1.0, 0.3, 0.05], [1.0, 0.8, 1.2], floor=1e-3)
COSTS = np.array([1.0, 4.0, 16.0])


def _legend_texts(fig):
    """Texts of the figure's legend, which must sit outside every axes (it never covers data)."""
    assert len(fig.legends) == 1
    legend = fig.legends[0]
    fig.draw_without_rendering()  # runs the constrained layout
    box = legend.get_window_extent()
    for ax in fig.axes:
        assert not box.overlaps(ax.get_window_extent()), "legend overlaps an axes"
    return [t.get_text().replace("\n", " ") for t in legend.get_texts()]


def _check_axes(ax, *, legend=True):
    assert ax.get_xlabel() and ax.get_ylabel()
    assert "(" in ax.get_xlabel() and "(" in ax.get_ylabel()  # units in parentheses
    if legend:
        assert _legend_texts(ax.figure)


def test_error_vs_budget_figure(tmp_path):
    measured = MeasuredPoints(("optimal", "optimal", "single"), [100.0, 1000.0, 1000.0], [0.02, 0.005, 0.01],
                              [0.002, np.nan, 0.001])
    curves = budget_curves(MODEL, COSTS, np.geomspace(50, 5000, 4), problem="toy-pde", kernel="mlp-relu-3",
                           measured=measured)
    fig = plot_error_vs_budget(curves)
    ax = fig.axes[0]
    _check_axes(ax)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert "toy-pde" in ax.get_title() and "mlp-relu-3" in ax.get_title() and "budgets 50 s to" in ax.get_title()
    texts = _legend_texts(ax.figure)
    assert any("optimal MLFT (fitted slope" in t for t in texts)
    assert any(t.startswith("measured: optimal") for t in texts)
    assert any(t.startswith("measured: single") for t in texts)
    theory = [ln for ln in ax.get_lines() if ln.get_label().startswith("theory: slope -0.80")]
    assert len(theory) == 1  # -min p_l of the power law, drawn through the optimal curve's last point
    bx, by = np.asarray(theory[0].get_xdata(), float), np.asarray(theory[0].get_ydata(), float)
    assert by[-1] == pytest.approx(curves.errors("optimal")[-1], rel=1e-12) and bx[-1] == pytest.approx(5000.0)
    slope = np.log((by[0] - MODEL.floor) / (by[-1] - MODEL.floor)) / np.log(bx[0] / bx[-1])
    assert slope == pytest.approx(-0.8, rel=1e-12)
    assert not any("cap-bound" in t for t in texts)
    png, pdf = save_figure(fig, tmp_path / "sub" / "evb")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and pdf.read_bytes()[:5] == b"%PDF-"


def test_error_vs_budget_marks_cap_bound_points():
    curves = budget_curves(MODEL, COSTS, np.geomspace(50, 5000, 4), max_samples=20, problem="p", kernel="k")
    ax = plot_error_vs_budget(curves).axes[0]
    hollow = [ln for ln in ax.get_lines() if ln.get_label().startswith("cap-bound")]
    assert len(hollow) == 1 and "max 20 samples/level" in hollow[0].get_label()
    np.testing.assert_allclose(np.asarray(hollow[0].get_xdata(), float), curves.budgets[curves.cap_bound("optimal")])
    assert "at most 20 samples per level" in ax.get_title()


def test_allocation_figure_marks_skipped_levels():
    alloc = optimize_allocation(PowerLawErrorModel([1.0, 0.2, 0.2], [1.0, 1.0, 1.0]), [1.0, 9.5, 10.0], 2000.0)
    fig = plot_allocation(alloc, problem="p", kernel="k", grid=[32, 64, 128])
    assert len(fig.axes) == 2
    for ax in fig.axes:
        _check_axes(ax)
    assert "skipped" in [t.get_text() for t in fig.axes[0].texts]
    assert "budget" in fig.get_suptitle() and "p" in fig.get_suptitle()


def test_allocation_figure_shows_share_of_budget_and_unspent():
    alloc = optimize_allocation(MODEL, COSTS, 3000.0, max_samples=20)  # 20 per level cost 420 s
    fig = plot_allocation(alloc, problem="p", kernel="k")
    shares = [float(t.get_text().rstrip("%")) for t in fig.axes[1].texts]
    np.testing.assert_allclose(shares, np.round(100 * alloc.spend / 3000.0, 1))
    assert "(cap)" in fig.axes[0].texts[0].get_text()
    assert "spent 7 min (14.0%)" in fig.get_suptitle() and "unspent: sample cap" in fig.get_suptitle()


def test_learning_curves_and_scatter_figures(tmp_path):
    lc = predicted_learning_curves(MODEL, [10, 10, 10], [1, 10, 100], problem="p", kernel="k", budget=210.0)
    fig = plot_learning_curves(lc)
    _check_axes(fig.axes[0])
    assert len(fig.axes[0].get_lines()) >= 3
    assert "budget 3.5 min" in fig.axes[0].get_title() and "k" in fig.axes[0].get_title()
    comp = Comparison([0.1, 0.01], [0.12, 0.009], ("opt", "single"), problem="p", kernel="k",
                      budgets=[60.0, 600.0])
    fig2 = plot_predicted_vs_measured(comp)
    _check_axes(fig2.axes[0])
    title = fig2.axes[0].get_title()
    assert "RMS log-ratio" in title and "budgets 1 min to 10 min" in title and "p" in title
    png, pdf = save_figure(fig2, tmp_path / "pvm")
    assert png.exists() and pdf.exists()
    bare = plot_learning_curves(predicted_learning_curves(MODEL, [1, 1, 1], [1, 2]))
    assert "budget not stated" in bare.axes[0].get_title()


def _validation_result(problem="toy-pde", budgets=(10.0, 40.0)):
    from ntk_mlft.studies.trained_networks import ValidationResult, ValidationRow

    rows = []
    for b in budgets:
        for a, base in (("optimal", 0.1), ("single", 0.3), ("equal", 0.2)):
            for w in (16, 64):
                for s in (0, 1):
                    m = base * (10.0 / b) * (1 + 1.0 / w + 0.01 * s)
                    rows.append(ValidationRow(allocation=a, budget=b, counts=(4, 1), width=w, seed=s,
                                              measured_error=m, ntk_error=base * (10.0 / b),
                                              predicted_error=1.1 * base * (10.0 / b), train_seconds=0.0))
    return ValidationResult(problem=problem, architecture="mlp-relu-3", optimizer="curveball", costs=(1.0, 4.0),
                            budgets=tuple(budgets), widths=(16, 64), seeds=(0, 1), n_test=10, error_model="m",
                            ridge=0.1, rows=tuple(rows))


def test_validation_figures(tmp_path):
    from ntk_mlft.reports.plotting import (
        plot_measured_error_vs_budget,
        plot_measured_vs_predicted,
        plot_validation_overview,
    )

    res = _validation_result()
    fig = plot_measured_vs_predicted(res)
    assert len(fig.axes) == 2                                # one panel per budget
    assert "budgets 10 s to 40 s" in fig.get_suptitle() and "mlp-relu-3" in fig.get_suptitle()
    for ax, b in zip(fig.axes, ("10 s", "40 s")):
        _check_axes(ax)
        assert "toy-pde" in ax.get_title() and "mlp-relu-3" in ax.get_title() and b in ax.get_title()
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
        texts = _legend_texts(ax.figure)
        assert sum("trained nets" in t for t in texts) == 3 and any("NTK limit" in t for t in texts)
        assert any("predicted" in t for t in texts)
    # measured points are the seed means at each width
    opt = next(c for c in fig.axes[0].containers if c.get_label() == "optimal MLFT (4, 1): trained nets")
    np.testing.assert_allclose(np.asarray(opt.lines[0].get_ydata(), float),
                               [0.1 * (1 + 1 / 16 + 0.005), 0.1 * (1 + 1 / 64 + 0.005)])
    fig2 = plot_measured_error_vs_budget(res)
    ax = fig2.axes[0]
    _check_axes(ax)
    assert "budget" in ax.get_xlabel() and "toy-pde" in ax.get_title() and "budgets" in ax.get_title()
    data = [ln.get_ydata() for ln in ax.get_lines() if ln.get_label() == "optimal MLFT: predicted"]
    np.testing.assert_allclose(np.asarray(data[0], float), [0.11, 0.11 / 4])     # predicted curve over the budgets
    fig3 = plot_validation_overview([res, _validation_result("other", budgets=(10.0,))])
    assert len(fig3.axes) == 3
    assert "toy-pde: budget 10 s" in fig3.get_suptitle() and "other: budget 10 s" in fig3.get_suptitle()
    _check_axes(fig3.axes[0])
    _check_axes(fig3.axes[-1])
    excess = {c.get_label(): c for c in fig3.axes[-1].containers}
    # excess error m − k averaged over allocations (base 0.2), budgets (10/b: 0.625) and seeds:
    # 0.125 (1/w + 0.005); the dotted theory line is ∝ 1/width through the first point
    np.testing.assert_allclose(np.asarray(excess["toy-pde"].lines[0].get_ydata(), float),
                               0.125 * (1 / np.array([16, 64]) + 0.005), rtol=1e-10)
    theory = next(ln for ln in fig3.axes[-1].get_lines() if "theory" in ln.get_label())
    np.testing.assert_allclose(np.asarray(theory.get_ydata(), float), 0.125 * (1 / 16 + 0.005) * np.array([1, 0.25]))
    png, pdf = save_figure(fig3, tmp_path / "overview")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="at least one"):
        plot_validation_overview([])


def test_single_width_single_budget_validation_draws_markers():
    import dataclasses

    from ntk_mlft.reports.plotting import plot_measured_error_vs_budget, plot_measured_vs_predicted

    res = _validation_result(budgets=(10.0,))
    one = dataclasses.replace(res, widths=(64,), seeds=(0,),
                              rows=tuple(r for r in res.rows if r.width == 64 and r.seed == 0))
    for fig in (plot_measured_vs_predicted(one), plot_measured_error_vs_budget(one)):
        lines = [ln for ln in fig.axes[0].get_lines() if "NTK limit" in ln.get_label() or "predicted" in
                 ln.get_label()]
        assert len(lines) == 6 and all(ln.get_marker() not in (None, "None", "") for ln in lines)
        _legend_texts(fig)
    assert "±" not in one.table() and "one seed" in one.table()      # one seed: no "± nan"
    assert "± " in res.table()


def test_learning_curves_note_a_rising_level():
    class Rising:
        n_levels = 2

        def error(self, counts):                  # level 1's error rises past N = 10
            return 0.1 / counts[1] + 1e-3 * abs(counts[0] - 10) + 0.01

    lc = predicted_learning_curves(Rising(), [10, 5], [1, 3, 10, 30, 100], budget=30.0)
    assert lc.rising() == {1: 10.0}
    texts = _legend_texts(plot_learning_curves(lc))
    assert any("rises from N = 10" in t for t in texts)
    assert "budget 30 s" in plot_learning_curves(lc).axes[0].get_title()
