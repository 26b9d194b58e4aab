"""Figures and tables of the "which layers to re-train" study (``ntk_mlft.transfer.layer_study``).

:func:`plot_layer_study` takes the study's ``TargetResult`` objects (or their ``to_dict()``) and
returns a Figure: one panel per target, per layer set the predicted relative MSE (median and
10-90 % bootstrap band) and the measured one (mean and range over seeds), legend below the axes.
:func:`layer_table` gives the markdown table of the README / analysis report.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["filter_table", "layer_table", "plot_layer_study", "summary_table"]


def _as_dict(result: Any) -> dict[str, Any]:
    return result if isinstance(result, dict) else result.to_dict()


def plot_layer_study(results: Any, title: str = ""):
    from matplotlib.figure import Figure

    results = [_as_dict(r) for r in results]
    fig = Figure(figsize=(5.2 * len(results), 4.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(results)))
    for ax, r in zip(axes, results):
        p = r["predicted"]
        sets = p["sets"]
        xs = np.arange(len(sets))
        med, lo, hi = (np.asarray(p[k]) for k in ("median", "q10", "q90"))
        ax.errorbar(xs - 0.1, med, yerr=[med - lo, hi - med], fmt="o", color="C0", capsize=3,
                    label="predicted (per-layer NTK, median, 10-90 %)")
        meas = [(i, np.array([m["rel_mse"] for m in r["measured"][s]])) for i, s in enumerate(sets)
                if s in r["measured"]]
        if meas:
            mi = np.array([i for i, _ in meas])
            mv = [v for _, v in meas]
            mean = np.array([v.mean() for v in mv])
            ax.errorbar(mi + 0.1, mean, yerr=[mean - [v.min() for v in mv], [v.max() for v in mv] - mean],
                        fmt="s", color="C3", capsize=3, label="measured re-training (mean, range over seeds)")
        ax.axhline(r["no_retraining"]["rel_mse"], color="0.5", ls="--", label="base network, no re-training")
        ax.set_xticks(xs)
        ax.set_xticklabels([s.replace("layer_", "L").replace("_Conv", "") for s in sets], rotation=60, fontsize=7)
        ax.set_xlabel("re-trained layer set (stax index)")
        ax.set_ylabel("relative MSE of Pi on target test data")
        ax.set_yscale("log")
        a = r["agreement"]["singles"]
        ax.set_title(f"-> {r['target']}\nSpearman (single layers) {a['spearman']:.2f}, top-1 {a['top1']:.0f}",
                     fontsize=9)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def layer_table(results: Any) -> list[str]:
    """Markdown lines: per target, per layer set, predicted vs measured errors and agreement."""
    lines = []
    for r in (_as_dict(x) for x in results):
        p = r["predicted"]
        lines += [f"### -> `{r['target']}`", "",
                  f"No re-training: rel. MSE {r['no_retraining']['rel_mse']:.3g}, "
                  f"corr {r['no_retraining']['corr']:.3g}, "
                  f"spectrum error {r['no_retraining']['spectrum_error']:.3g}.", "",
                  "| layer set | predicted rel. MSE [10-90 %] | P(best) | measured rel. MSE (mean over seeds) "
                  "| corr | spectrum error |", "|---|---|---|---|---|---|"]
        for i, s in enumerate(p["sets"]):
            runs = r["measured"].get(s)
            each = ", ".join(f"{m['rel_mse']:.3g}" for m in runs) if runs else ""
            meas = f"{np.mean([m['rel_mse'] for m in runs]):.3g} ({each})" if runs else "not measured"
            corr = f"{np.mean([m['corr'] for m in runs]):.3g}" if runs else ""
            spec = f"{np.mean([m['spectrum_error'] for m in runs]):.3g}" if runs else ""
            lines.append(f"| {s} | {p['median'][i]:.3g} [{p['q10'][i]:.3g}, {p['q90'][i]:.3g}] | "
                         f"{p['best_probability'][i]:.2f} | {meas} | {corr} | {spec} |")
        lines.append("")
        for key, a in r["agreement"].items():
            lines.append(f"Agreement ({key}): Spearman {a['spearman']:.2f}, top-1 {'yes' if a['top1'] else 'no'}, "
                         f"top-3 overlap {a['top3_overlap']:.2f}.")
        lines += ["", "Filter spectra (5x5 / 5-tap kernels zero-padded to the LES grid; class by the peak of the "
                  "shell-averaged |H|):", "", *filter_table(r), ""]
    return lines


def summary_table(report: dict[str, Any]) -> list[str]:
    """Markdown lines, one row per (case, target): no re-training, measured and predicted best single
    layer, rank agreement of the single layers. ``report``: ``{case: {"targets": [...]}}``."""
    lines = ["| base -> target | no re-training | measured best layer (rel. MSE) | predicted best layer "
             "(P(best) among all sets) | Spearman | top-1 | top-3 overlap |", "|---|---|---|---|---|---|---|"]
    for case, rep in report.items():
        for r in rep["targets"]:
            p = r["predicted"]
            singles = [s for s in p["sets"] if "+" not in s and s in r["measured"]]
            meas = {s: float(np.mean([m["rel_mse"] for m in r["measured"][s]])) for s in singles}
            pred = {s: p["median"][p["sets"].index(s)] for s in singles}
            mb, pb = min(meas, key=meas.get), min(pred, key=pred.get)
            a = r["agreement"]["singles"]
            lines.append(f"| {rep['base']['system']['name']} -> {r['target'].split(':')[-1]} | "
                         f"{r['no_retraining']['rel_mse']:.3g} | {mb} ({meas[mb]:.3g}) | {pb} "
                         f"({p['best_probability'][p['sets'].index(pb)]:.2f}) | {a['spearman']:.2f} | "
                         f"{'yes' if a['top1'] else 'no'} | {a['top3_overlap']:.2f} |")
    return lines


def filter_table(result: Any) -> list[str]:
    """Markdown lines: per re-trained layer (seed 0), the base filters' classes, the median relative
    change of its filters and the classes of its most-changed 5 % before -> after."""
    r = _as_dict(result)
    lines = ["| re-trained layer | base filters low/band/high | median change | top-5 % change | "
             "top-5 % classes before -> after |", "|---|---|---|---|---|"]
    for name, f in r["filters"].items():
        cb = f["classes_before"]
        moved = ", ".join(f"{a}->{b}" for a, b in zip(f["top_classes_before"], f["top_classes_after"]))
        lines.append(f"| {name} | {cb['low']}/{cb['band']}/{cb['high']} | {f['median_change']:.3g} | "
                     f"{min(f['top_change']):.3g}..{max(f['top_change']):.3g} | {moved} |")
    return lines
