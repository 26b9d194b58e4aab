"""Transfer figures from result objects: panels, labelled axes, legend, PNG + PDF written."""

import numpy as np

from ntk_mlft.reports.plotting import save_figure
from ntk_mlft.reports.transfer import plot_pretraining_plan, plot_samples_saved, plot_scaling
from ntk_mlft.transfer.scaling import PretrainingPlan, scaling_curve
from ntk_mlft.transfer.study import ScalingStudy


def _study():
    n = np.array([10, 30, 100, 300])
    curves = tuple(scaling_curve(f"sys range {a}-{b}", 50, n, 1 / (n + 40 / (1 + a)), 1 / n, 0.3)
                   for a, b in ((1, 5), (5, 10)))
    return ScalingStudy("sys range 1-5", "mlp-relu-3", 600, 600, 16, 0.1, (0.0, 1.1), curves)


def test_figures_have_panels_labels_and_files(tmp_path):
    study = _study()
    points = [{"label": "sys range 1-5", "mode": "finetune", "n_down": 30, "mean": 0.02, "stderr": 0.002,
               "width": 32}, {"label": "sys range 5-10", "mode": "scratch", "n_down": 30, "mean": 0.03,
                              "stderr": 0.003, "width": 64}]
    fig = plot_scaling(study, points)
    axes = fig.axes
    assert len(axes) == 2 and axes[0].get_xscale() == "log" and "relative MSE" in axes[0].get_ylabel()
    assert all("downstream samples" in ax.get_xlabel() for ax in axes) and fig.legends
    fig2 = plot_samples_saved([study])
    assert len(fig2.axes) == 2 and all("shift" in ax.get_xlabel() for ax in fig2.axes)
    assert fig2.axes[0].get_legend() is not None and "smallest downstream N" in fig2.axes[0].get_title()
    plan = PretrainingPlan(np.array([10.0, 100]), np.array([1.0, 10]), np.array([5, 40]), np.array([1, 6]),
                           np.array([0.5, 0.2]), np.array([0.8, 0.4]))
    fig3 = plot_pretraining_plan(plan, title="x")
    assert fig3.axes[0].get_xlabel() == "budget (s)"
    for f, stem in ((fig, "a"), (fig2, "b"), (fig3, "c")):
        png, pdf = save_figure(f, tmp_path / stem)
        assert png.stat().st_size > 0 and pdf.stat().st_size > 0


def test_study_round_trips_through_its_json_dict():
    import json

    study = _study()
    back = ScalingStudy.from_dict(json.loads(json.dumps(study.to_dict())))
    assert back.to_dict() == study.to_dict()
    np.testing.assert_array_equal(back.curves[1].factor, study.curves[1].factor)
