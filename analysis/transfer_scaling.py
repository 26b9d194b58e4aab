"""How many downstream samples does fine-tuning from another physics regime save? Predicted
before training, then checked against trained CNNs.

Parts (``--parts``, default all):

- ``redraws``: the Helmholtz near-resonance redraw rate for each omega range of
  ``DEFAULT_SHIFTS`` (``--redraw-samples`` accepted draws each). Writes ``transfer_redraws.json``.
- ``predicted``: for each periodic system, pre-training on its source range (N_pre samples)
  vs scratch on the in-distribution range and three shifts (``DEFAULT_SHIFTS``), and mixed
  pre-training (``transfer-mixture``) on the same targets; ``mlp-relu-3`` NTK on 16x16 inputs,
  pools of ``--pool`` solved samples per distribution; 20 downstream N from 10 to pool / 2.
  Writes ``transfer_scaling.json``, figures ``transfer_scaling_<system>[_mixed]`` and
  ``transfer_samples_saved``.
- ``accuracy``: the closed form against ``transfer_montecarlo`` (both stages fitted exactly, sets
  drawn from the same pools of ``--acc-pool``) on every system and shift, N_pre in {0, pool/8,
  pool/2}, N in {10, 30, pool/4}; median / 90th percentile / worst deviation. Writes
  ``transfer_accuracy.json``.
- ``figures``: re-plot the ``predicted`` and ``validation`` figures from their JSON (not in the
  default).
- ``plan``: for each system's largest shift, the (N_pre, N) error model over an N_pre grid and
  ``optimize_allocation`` with source samples 10x cheaper than target ones: how much
  pre-training data is worth buying. Writes ``transfer_plan.json`` and ``transfer_plan_<system>``.
- ``validation``: trained 2-D CNNs (``ntk_mlft.transfer.validation``): widths, seeds, N_pre,
  downstream N, pools and input grid as given below (all stated in the report), in-distribution
  and the second shift of each system. Checkpointed (resumable). Writes
  ``transfer_validation.json`` and ``transfer_validation_<system>``.

``transfer_scaling.md`` collects every part present. Usage:
``python analysis/transfer_scaling.py [--parts predicted,plan,validation] [--out analysis/results]
[--cache DIR] [--pool 1000] [--n-pre 500] [--widths 32,64] [--seeds 0,1] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _predicted(args, out):
    from ntk_mlft.problems import get_problem
    from ntk_mlft.reports.plotting import save_figure
    from ntk_mlft.reports.transfer import plot_samples_saved, plot_scaling
    from ntk_mlft.transfer.study import default_targets, predict_scaling

    t0 = time.perf_counter()
    studies = []
    settings = dict(n_source_pool=args.pool, n_target_pool=args.pool, n_pre=args.n_pre, size=16,
                    ridge=args.ridge, seed=args.seed, cache_dir=args.cache)
    for system in args.systems:
        source, targets = default_targets(system)
        studies.append(predict_scaling(source, targets, **settings))
        save_figure(plot_scaling(studies[-1]), out / f"transfer_scaling_{system}")
        mixed = predict_scaling(get_problem("transfer-mixture"), targets, **settings)
        studies.append(mixed)
        save_figure(plot_scaling(mixed), out / f"transfer_scaling_{system}_mixed")
    save_figure(plot_samples_saved(studies), out / "transfer_samples_saved")
    result = {"settings": {**{k: v for k, v in settings.items() if k != "cache_dir"}, "architecture": "mlp-relu-3"},
              "studies": [s.to_dict() for s in studies], "wall_seconds": time.perf_counter() - t0}
    (out / "transfer_scaling.json").write_text(json.dumps(result, indent=1))
    return result


def _accuracy(args, out):
    """Closed form vs ``transfer_montecarlo`` (sets drawn from the same pools) on the testbeds."""
    from ntk_mlft.architectures import get_architecture
    from ntk_mlft.transfer import TransferEstimator, transfer_montecarlo
    from ntk_mlft.transfer.study import _kernel_inputs, default_targets, kernel_matrix, pool_features

    pool, n_pres, n_downs = args.acc_pool, [0, args.acc_pool // 8, args.acc_pool // 2], [10, 30, args.acc_pool // 4]
    kernel = get_architecture("mlp-relu-3", output_dim=256, width=1).kernel_fn
    cases = []
    for system in args.systems:
        source, targets = default_targets(system)
        xs, ys = _kernel_inputs("mlp-relu-3", *pool_features(source, pool, args.seed, 16, args.cache))
        k_ss = kernel_matrix(kernel, xs)
        lam = args.ridge * float(np.mean(np.diagonal(k_ss)))
        for i, spec in enumerate(targets):
            xt, yt = _kernel_inputs("mlp-relu-3", *pool_features(spec.problem, pool, args.seed + 1 + i, 16,
                                                                  args.cache))
            k_ts, k_tt = kernel_matrix(kernel, xt, xs), kernel_matrix(kernel, xt)
            est = TransferEstimator.from_kernels(k_ss, k_ts, k_tt, ys, yt, ridge=lam)
            for n_pre in n_pres:
                pred = est.errors(n_pre, n_downs)
                mc = transfer_montecarlo(k_ss, k_ts, k_tt, ys, yt, n_pre, n_downs, ridge=lam,
                                         n_trials=args.acc_trials, seed=args.seed)
                for n, p_, m, se in zip(n_downs, pred, mc.fresh_mean, mc.fresh_stderr):
                    cases.append({"system": system, "target": spec.label, "shift": spec.shift, "n_pre": n_pre,
                                  "n_down": n, "predicted": float(p_), "montecarlo": float(m),
                                  "mc_stderr": float(se), "deviation": float(p_ / m - 1)})
    dev = np.abs([c["deviation"] for c in cases])
    result = {"settings": {"pool": pool, "n_pre": n_pres, "n_down": n_downs, "trials": args.acc_trials,
                           "ridge_relative": args.ridge, "architecture": "mlp-relu-3", "feature_grid": 16},
              "summary": {"cases": len(cases), "median": float(np.median(dev)),
                          "p90": float(np.percentile(dev, 90)), "worst": float(dev.max())},
              "cases": cases}
    (out / "transfer_accuracy.json").write_text(json.dumps(result, indent=1))
    return result


def _figures(args, out):
    """Re-plot the predicted part's figures from ``transfer_scaling.json`` (no recomputation)."""
    from ntk_mlft.reports.plotting import save_figure
    from ntk_mlft.reports.transfer import plot_samples_saved, plot_scaling
    from ntk_mlft.transfer.study import ScalingStudy

    studies = [ScalingStudy.from_dict(d) for d in json.loads((out / "transfer_scaling.json").read_text())["studies"]]
    for study in studies:
        system = study.curves[0].label.split(" range ")[0]
        mixed = "_mixed" if study.source.startswith("transfer-mixture") else ""
        save_figure(plot_scaling(study), out / f"transfer_scaling_{system}{mixed}")
    save_figure(plot_samples_saved(studies), out / "transfer_samples_saved")
    val = out / "transfer_validation.json"
    for sysr in json.loads(val.read_text())["systems"] if val.exists() else []:
        save_figure(plot_scaling(ScalingStudy.from_dict(sysr["study"]), sysr["points"]),
                    out / f"transfer_validation_{sysr['system']}")
    return {}


def _plan(args, out):
    from ntk_mlft.reports.plotting import save_figure
    from ntk_mlft.reports.transfer import plot_pretraining_plan
    from ntk_mlft.transfer.scaling import pretraining_plan
    from ntk_mlft.transfer.study import default_targets, predict_scaling

    grid = [int(v) for v in np.unique(np.round(np.geomspace(10, args.pool, 7)))]
    costs, budgets = [1.0, 10.0], list(np.geomspace(200, 10 * args.pool // 2, 8).round())
    plans = []
    for system in args.systems:
        source, targets = default_targets(system)
        study = predict_scaling(source, targets[-1:], n_source_pool=args.pool, n_target_pool=args.pool,
                                n_pre=args.n_pre, size=16, ridge=args.ridge, seed=args.seed,
                                cache_dir=args.cache, n_pre_grid=grid)
        plan = pretraining_plan(study.error_model(0), costs, budgets)
        save_figure(plot_pretraining_plan(plan, title=f"{study.source} -> {study.curves[0].label}:"),
                    out / f"transfer_plan_{system}")
        plans.append({"source": study.source, "target": study.curves[0].label, "n_pre_grid": grid,
                      "errors": study.grids[0].tolist(), "n_down": study.curves[0].n_down.tolist(),
                      **plan.to_dict()})
    (out / "transfer_plan.json").write_text(json.dumps({"plans": plans}, indent=1))
    return {"plans": plans}


def _validation(args, out):
    import dataclasses

    from ntk_mlft.reports.plotting import save_figure
    from ntk_mlft.reports.transfer import plot_scaling
    from ntk_mlft.transfer.study import default_targets
    from ntk_mlft.transfer.validation import TransferRow, measured_points, validate_transfer

    settings = dict(widths=args.widths, seeds=args.seeds, n_pre=args.val_n_pre, n_down=args.val_n_down,
                    n_pool=args.val_pool, size=args.val_size, ridge=args.val_ridge, max_steps=args.max_steps)
    path = out / "transfer_validation.json"
    result = json.loads(path.read_text()) if path.exists() else {"systems": []}
    previous = {r["system"]: r for r in result["systems"]}
    result["systems"] = [r for r in result["systems"] if r["system"] not in args.systems]
    for system in args.systems:
        source, targets = default_targets(system)
        t0 = time.perf_counter()
        studies, rows = validate_transfer(source, [targets[i] for i in args.val_targets], seed=args.seed,
                                          cache_dir=args.cache,
                                          checkpoint=Path(args.cache or out) / f"transfer_validation_{system}.json",
                                          **settings)
        # widths run separately with otherwise identical settings accumulate (same sets, same prediction)
        kept, old_widths, wall = [], [], 0.0
        old = previous.get(system)
        if old is not None and {**old["settings"], "widths": None} == {**settings, "widths": None}:
            kept = [TransferRow(**r) for r in old["rows"] if r["width"] not in settings["widths"]]
            old_widths, wall = [w for w in old["settings"]["widths"] if w not in settings["widths"]], \
                old["wall_seconds"]
        rows = tuple(kept) + tuple(rows)
        points = measured_points(rows)
        save_figure(plot_scaling(studies[0], points), out / f"transfer_validation_{system}")
        result["systems"].append({"system": system,
                                  "settings": {**settings, "widths": sorted(old_widths + list(settings["widths"]))},
                                  "study": studies[0].to_dict(), "points": points,
                                  "rows": [dataclasses.asdict(r) for r in rows],
                                  "wall_seconds": wall + time.perf_counter() - t0})
        result["systems"].sort(key=lambda r: r["system"])
        path.write_text(json.dumps(result, indent=1))
    return result


def _redraws(args, out):
    from ntk_mlft.problems import get_problem
    from ntk_mlft.transfer.study import DEFAULT_SHIFTS

    src, targets = DEFAULT_SHIFTS["helmholtz-2d"]
    rows = []
    for i, rng_ in enumerate(dict.fromkeys((src, *targets))):
        t0 = time.perf_counter()
        _, redrawn = get_problem("helmholtz-2d", range=rng_).sample_counting_redraws(
            np.random.default_rng([args.seed, i]), args.redraw_samples)
        draws = redrawn + args.redraw_samples
        rate = redrawn / draws
        rows.append({"range": list(rng_), "accepted": args.redraw_samples, "redrawn": redrawn, "rate": rate,
                     "stderr": float(np.sqrt(rate * (1 - rate) / draws)), "seconds": time.perf_counter() - t0})
    result = {"max_amplitude": 2.0, "grid": 64, "rows": rows}
    (out / "transfer_redraws.json").write_text(json.dumps(result, indent=1))
    return result


def _fmt(v):
    return "n/a" if v is None else f"{v:.3g}"


def _markdown(out):
    lines = ["# Transfer across physics: samples saved by fine-tuning (predicted, then trained)", "",
             "Generated by `analysis/transfer_scaling.py`; method in `docs/transfer.md`.", ""]
    pred = out / "transfer_scaling.json"
    if pred.exists():
        r = json.loads(pred.read_text())
        s = r["settings"]
        lines += ["## Predicted (NTK closed form, before any training)", "",
                  f"Kernel: analytic {s['architecture']} NTK on 16x16 inputs (source + 6 coefficient channels), "
                  f"pools of {s['n_source_pool']} solved samples per distribution (64^2 Fourier solves), "
                  f"N_pre = {s['n_pre']}, ridge {s['ridge']} x mean NTK diagonal; wall time "
                  f"{r['wall_seconds']:.0f} s on the shared 2-core machine.", "",
                  "| source | target | shift | pre-trained error | fine-tune / scratch error at N=10 | at N max | "
                  "factor at N=10 | target error | factor at target error |", "|---|---|---|---|---|---|---|---|---|"]
        for st in r["studies"]:
            for c, shift in zip(st["curves"], st["shifts"]):
                bound = ">= " if c["censored"][0] == 1 else ("<= " if c["censored"][0] == -1 else "")
                lines.append(f"| {st['source']} | {c['label'].split(' range ')[-1]} | {shift:.2g} | "
                             f"{c['pretrained_error']:.3g} | {c['finetune'][0]:.3g} / {c['scratch'][0]:.3g} | "
                             f"{c['finetune'][-1]:.3g} / {c['scratch'][-1]:.3g} (N={c['n_down'][-1]}) | "
                             f"{bound}{_fmt(c['factor'][0])} | {c['target_error']:.3g} | "
                             f"{_fmt(c['factor_at_target'])} |")
        lines += ["", "Factor = scratch N reaching fine-tuning's error / N; `>=`: fine-tuning beats scratch's "
                  "largest computed N (lower bound); `<=`: worse than scratch at the smallest N. Target error: "
                  "the scratch error at N_max / 10; its factor is n/a where fine-tuning is already below it at "
                  "N = 10 (or never reaches it).", "",
                  f"Reach: the closed form speaks about N <= half the target pool, so these curves stop at N = "
                  f"{s['n_target_pool'] // 2}; N = 10^4 is not predicted here (docs/transfer.md section 7: it needs "
                  "large-pool spectra).", ""]
    acc = out / "transfer_accuracy.json"
    if acc.exists():
        r = json.loads(acc.read_text())
        s, m = r["settings"], r["summary"]
        lines += ["## Accuracy of the closed form on the testbeds (vs Monte-Carlo on the same pools)", "",
                  f"Pools of {s['pool']} per distribution, {s['architecture']} NTK on {s['feature_grid']}^2 inputs, "
                  f"ridge {s['ridge_relative']} x mean NTK diagonal; N_pre in {s['n_pre']}, N in {s['n_down']}, "
                  f"{s['trials']} Monte-Carlo trials (both stages fitted exactly, fresh target points). "
                  f"|predicted / Monte-Carlo - 1| over {m['cases']} cases: median {m['median']:.3f}, "
                  f"90th percentile {m['p90']:.3f}, worst {m['worst']:.3f}.", "",
                  "| system | median | 90th pct | worst | worst case (target, N_pre, N) |", "|---|---|---|---|---|"]
        for system in dict.fromkeys(c["system"] for c in r["cases"]):
            cs = [c for c in r["cases"] if c["system"] == system]
            d = np.abs([c["deviation"] for c in cs])
            w = cs[int(np.argmax(d))]
            lines.append(f"| {system} | {np.median(d):.3f} | {np.percentile(d, 90):.3f} | {d.max():.3f} | "
                         f"{w['target'].split(' range ')[-1]}, {w['n_pre']}, {w['n_down']} |")
        lines.append("")
    red = out / "transfer_redraws.json"
    if red.exists():
        r = json.loads(red.read_text())
        lines += ["## Helmholtz: near-resonant draws redrawn", "",
                  f"Draws (source and omega) with max|u| > {r['max_amplitude']:g} on the {r['grid']}^2 nodes are "
                  "redrawn (`HelmholtzPeriodic.sample_counting_redraws`); rate = redrawn / all draws "
                  "(binomial s.e.).", "", "| omega range | accepted | redrawn | redraw rate (s.e.) |",
                  "|---|---|---|---|"]
        for row in r["rows"]:
            lines.append(f"| {row['range'][0]:g}-{row['range'][1]:g} | {row['accepted']} | {row['redrawn']} | "
                         f"{row['rate']:.3f} ({row['stderr']:.3f}) |")
        lines.append("")
    plan = out / "transfer_plan.json"
    if plan.exists():
        lines += ["## How much pre-training data to buy (source 1 s, target 10 s per sample)", "",
                  "| source -> target | budget (s) | optimal N_pre | optimal N | error | target-only error |",
                  "|---|---|---|---|---|---|"]
        for p in json.loads(plan.read_text())["plans"]:
            for b, a, n, e, sc in zip(p["budgets"], p["n_pre"], p["n_down"], p["error"], p["scratch_error"]):
                lines.append(f"| {p['source']} -> {p['target'].split(' range ')[-1]} | {b:g} | {a} | {n} | "
                             f"{e:.3g} | {sc:.3g} |")
        lines.append("")
    val = out / "transfer_validation.json"
    if val.exists():
        r = json.loads(val.read_text())
        lines += ["## Trained CNNs vs the prediction", ""]
        for sysr in r["systems"]:
            s = sysr["settings"]
            lines += [f"**{sysr['system']}**: 2-D CNN (2 x [3x3 circular conv, ReLU], flatten, dense; "
                      "NTK parameterisation), widths "
                      f"{s['widths']}, seeds {s['seeds']}, N_pre = {s['n_pre']}, downstream N {s['n_down']}, pools of "
                      f"{s['n_pool']} per distribution on {s['size']}x{s['size']} inputs, CurveBall <= "
                      f"{s['max_steps']} steps per stage, ridge {s['ridge']} x mean NTK diagonal; "
                      f"{len(sysr['rows'])} fine-tuned / scratch networks, training wall time "
                      f"{sum(r['seconds'] for r in sysr['rows']):.0f} s "
                      f"(a fine-tune row includes its pre-training).", ""]
        widths = sorted({w for sysr in r["systems"] for w in sysr["settings"]["widths"]})
        lines += [f"Widths run: {widths}. Not run on this CPU: other widths of the 32-256 range, more than the "
                  "downstream N listed, other shifts, the FNO (docs/transfer.md section 6).", "",
                  "Mean over seeds (s.e. in brackets).", "",
                  "| system | target | mode | N | width | measured | NTK limit (same sets) | predicted |",
                  "|---|---|---|---|---|---|---|---|"]
        for sysr in r["systems"]:
            for p in sysr["points"]:
                lines.append(f"| {sysr['system']} | {p['label'].split(' range ')[-1]} | {p['mode']} | {p['n_down']} | "
                             f"{p['width']} | {p['mean']:.3g} ({p['stderr']:.2g}) | {p['ntk_limit']:.3g} | "
                             f"{p['predicted']:.3g} |")
        lines += ["", "Benefit of pre-training, error(scratch) / error(fine-tune) at the same N (> 1: fine-tuning "
                  "helps), measured per width against the infinite-width limit on the same sets and the "
                  "prediction:", "", "| system | target | N | width | measured | NTK limit | predicted |",
                  "|---|---|---|---|---|---|---|"]
        for sysr in r["systems"]:
            pts = {(p["label"], p["mode"], p["n_down"], p["width"]): p for p in sysr["points"]}
            for (label, mode, n, w), p in sorted(pts.items()):
                other = pts.get((label, "scratch", n, w))
                if mode != "finetune" or other is None:
                    continue
                lines.append(f"| {sysr['system']} | {label.split(' range ')[-1]} | {n} | {w} | "
                             f"{other['mean'] / p['mean']:.3g} | {other['ntk_limit'] / p['ntk_limit']:.3g} | "
                             f"{other['predicted'] / p['predicted']:.3g} |")
        lines.append("")
    (out / "transfer_scaling.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="redraws,accuracy,predicted,plan,validation")
    parser.add_argument("--acc-pool", type=int, default=400)
    parser.add_argument("--acc-trials", type=int, default=40)
    parser.add_argument("--redraw-samples", type=int, default=2000)
    parser.add_argument("--systems", default="poisson-aniso-2d,advdiff-2d,helmholtz-2d")
    parser.add_argument("--out", default="analysis/results")
    parser.add_argument("--cache", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pool", type=int, default=1000)
    parser.add_argument("--n-pre", type=int, default=500)
    parser.add_argument("--ridge", type=float, default=0.1)
    parser.add_argument("--widths", default="32,64")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--val-pool", type=int, default=96)
    parser.add_argument("--val-n-pre", type=int, default=48)
    parser.add_argument("--val-n-down", default="16")
    parser.add_argument("--val-targets", default="2", help="indices into DEFAULT_SHIFTS' targets")
    parser.add_argument("--val-size", type=int, default=8)
    parser.add_argument("--val-ridge", type=float, default=0.1)
    parser.add_argument("--max-steps", type=int, default=150)
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny pools, one width and seed")
    args = parser.parse_args(argv)
    import jax

    jax.config.update("jax_enable_x64", True)
    args.systems = args.systems.split(",")
    args.widths = [int(v) for v in args.widths.split(",")]
    args.seeds = [int(v) for v in args.seeds.split(",")]
    args.val_n_down = [int(v) for v in args.val_n_down.split(",")]
    args.val_targets = [int(v) for v in args.val_targets.split(",")]
    if args.quick:
        args.pool, args.n_pre, args.val_pool, args.val_n_pre, args.widths, args.seeds = 60, 30, 48, 16, [8], [0]
        args.val_n_down, args.max_steps, args.redraw_samples = [4], 50, 100
        args.acc_pool, args.acc_trials = 80, 8
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    parts = {"predicted": _predicted, "plan": _plan, "validation": _validation, "redraws": _redraws,
             "accuracy": _accuracy,
             "figures": _figures}
    for name in args.parts.split(","):
        parts[name](args, out)
        _markdown(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
