"""Does the optimal MLFT allocation beat single-level training with real finite-width networks?

For each built-in problem (default: all five; ``NAME:LEVELS`` changes the number of levels) and
each budget, :func:`ntk_mlft.studies.trained_networks.validate` runs the allocations optimal / single (finest
only) / equal split, trains centred ``mlp-relu-3`` networks of several widths with CurveBall level
by level (proximal ridge λ = ``ridge`` × mean NTK diagonal, each stage to a relative-decrease
stopping rule), for several seeds (fresh data and initialisation per seed), and reports the
measured relative test MSE on held-out finest-level data beside

- the infinite-width limit on the same data (chained kernel ridge regression with the NTK), and
- the prediction of the MLFT error model the allocation optimised (the practical estimator from
  a paired pilot study and cheap unlabeled inputs; :mod:`ntk_mlft.studies.error_model`).

Two claims are checked, and the report states them from the numbers, whatever they say:

1. at every budget, optimal MLFT has a lower measured error than single-level training on the
   finest grid (gain = error single / error optimal, measured at the largest width);
2. the excess error of the trained networks over the NTK limit, measured − NTK, shrinks with the
   width like 1/width (centred networks trained to convergence: ``ValidationResult.gaps``); the
   report fits the log-log slope.

Costs: the linear-work model ``c_l = (cells of grid l) × 1 µs`` (cells = grid points, squared in
2-D) — deterministic, so the run is reproducible, and close to the measured tables of
``ntk_mlft/problems/README.md`` at the fine levels, where the budget goes. ``--budget-samples``
lists the budgets in finest-level samples' worth.

Writes ``validation.json`` (every trained network and the aggregates), ``validation.md`` (tables
and conclusions) and ``validation.{png,pdf}`` (overview figure) to ``--out`` (default
``analysis/results``) after each problem. Every trained network is also checkpointed under
``--cache-dir``/checkpoints, so an interrupted run resumes where it stopped. ``--quick`` is a smoke
run.

Usage: ``python analysis/validation.py [--out DIR] [--seed S] [--quick] [--json]
[--problems NAME[:LEVELS] ...] [--widths 128,256,512,1024] [--seeds 2] [--budget-samples 16,64]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

DEFAULT_PROBLEMS = ["elliptic-rough", "schrodinger-ground-state", "burgers-shock", "helmholtz-oscillatory",
                    "darcy-2d"]
FULL = {"widths": "128,256,512,1024", "seeds": 2, "budget_samples": "16,64", "n_pilot": 150,
        "n_unlabeled": 3000, "n_test": 300, "max_steps": 600, "ridge": 0.1}
QUICK = {"widths": "16,64", "seeds": 1, "budget_samples": "8", "n_pilot": 60, "n_unlabeled": 300,
         "n_test": 40, "max_steps": 40, "ridge": 0.1}


def linear_work_costs(problem, seconds_per_cell: float = 1e-6) -> np.ndarray:
    """``c_l = cells(l) · seconds_per_cell`` with cells = ``grid(l) ** d`` (d = input dimension)."""
    d = len(problem.input_shape)
    return np.array([float(problem.grid(lv)) ** d for lv in range(1, problem.n_levels + 1)]) * seconds_per_cell


def _ints(text: str) -> list[int]:
    return [int(v) for v in str(text).split(",") if v.strip()]


def run_problem(spec: str, settings: dict, seed: int, cache_dir: str | None):
    """One problem (``name`` or ``name:levels``) → ``ValidationResult``."""
    from ntk_mlft.problems import get_problem
    from ntk_mlft.studies.trained_networks import validate

    name, _, levels = spec.partition(":")
    problem = get_problem(name, levels=int(levels) if levels else None)
    costs = linear_work_costs(problem)
    budgets = [k * costs[-1] for k in _ints(settings["budget_samples"])]
    return validate(problem, budgets=budgets, widths=_ints(settings["widths"]), seeds=range(settings["seeds"]),
                    n_test=settings["n_test"], n_pilot=settings["n_pilot"], n_unlabeled=settings["n_unlabeled"],
                    max_steps=settings["max_steps"], ridge=settings["ridge"], costs=costs, seed=seed,
                    cache_dir=cache_dir,
                    checkpoint_dir=None if cache_dir is None else os.path.join(cache_dir, "checkpoints"))


def _slope(x, y) -> float:
    """Least-squares slope of log(y) against log(x); NaN with fewer than two positive points."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = y > 0
    return float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0]) if ok.sum() > 1 else float("nan")


def headline(results) -> list[dict]:
    """Per problem: per budget at the largest width, counts, errors and gains; per width, the excess
    error over the NTK limit and the estimator's distance from the measurements."""
    out = []
    for r in results:
        w = max(r.widths)
        summary = r.summary()
        per_budget = []
        for b in r.budgets:
            s = {d["allocation"]: d for d in summary if d["width"] == w and d["budget"] == b}
            g = next(d for d in r.gains() if d["width"] == w and d["budget"] == b)
            per_budget.append({
                "budget": b, "budget_samples": b / r.costs[-1],
                "counts": {a: d["counts"] for a, d in s.items()},
                "measured": {a: [d["measured_mean"], d["measured_se"]] for a, d in s.items()},
                "ntk": {a: d["ntk_mean"] for a, d in s.items()},
                "predicted": {a: d["predicted"] for a, d in s.items()},
                "gain_measured": g.get("measured_single_over_optimal"),
                "gain_ntk": g.get("ntk_single_over_optimal"),
                "gain_predicted": g.get("predicted_single_over_optimal"),
            })
        gaps = r.gaps()
        limit = r.settings.get("max_steps", np.inf)
        out.append({
            "problem": r.problem, "width": w, "costs": list(r.costs), "budgets": per_budget,
            "excess_vs_width": {d["width"]: [d["excess_error"], d["excess_error_se"]] for d in gaps},
            "excess_slope": _slope([d["width"] for d in gaps], [d["excess_error"] for d in gaps]),
            "relative_gap_vs_width": {d["width"]: d["finite_width_gap"] for d in gaps},
            "measured_vs_predicted_log_ratio": {d["width"]: d["log_ratio_to_predicted"] for d in gaps},
            "ntk_vs_predicted_log_ratio": gaps[0]["log_ratio_ntk_to_predicted"],
            "step_limit_hits": {ww: sum(x.max_stage_steps >= limit for x in r.rows if x.width == ww)
                                for ww in r.widths},
            "nets_per_width": sum(x.width == w for x in r.rows),
        })
    return out


def conclusions(heads) -> list[str]:
    """Plain statements generated from the headline numbers (no hand-written claims)."""
    lines = []
    for h in heads:
        gains = [b["gain_measured"] for b in h["budgets"]]
        verdict = ("optimal MLFT beats single-level at every budget" if all(g > 1 for g in gains)
                   else "CONTRADICTS the claim: optimal MLFT does not beat single-level at every budget")
        per = "; ".join(f"{b['budget_samples']:.0f} finest samples' worth: x{b['gain_measured']:.2f} measured "
                        f"(NTK limit x{b['gain_ntk']:.2f}, predicted x{b['gain_predicted']:.2f}), counts "
                        f"{tuple(b['counts']['optimal'])} vs {tuple(b['counts']['single'])}" for b in h["budgets"])
        ex = h["excess_vs_width"]
        widths = sorted(ex)
        shrink = ("shrinks" if ex[widths[-1]][0] < ex[widths[0]][0] else "does NOT shrink")
        lines.append(
            f"- **{h['problem']}**: {verdict} — {per}. Excess error measured − NTK {shrink} with width: "
            f"{ex[widths[0]][0]:.2g} at {widths[0]} → {ex[widths[-1]][0]:.2g} at {widths[-1]} (log-log slope "
            f"{h['excess_slope']:.2f}; theory −1). {h['step_limit_hits'][h['width']]}/{h['nets_per_width']} nets at "
            f"width {h['width']} hit the step limit in some level. Estimator vs NTK limit on the same data: mean "
            f"|log ratio| {h['ntk_vs_predicted_log_ratio']:.2f}.")
    return lines


def markdown(results, heads, settings, seconds) -> str:
    allocs = ["optimal", "single", "equal"]
    lines = ["# MLFT validation: trained finite-width networks vs NTK predictions", "",
             f"Settings: {json.dumps(settings)}; architecture {results[0].architecture}, optimizer "
             f"{results[0].optimizer}, costs = cells x 1 µs. Wall-clock {seconds / 60:.0f} min on a shared 2-core "
             "CPU machine.", "",
             "## Headline (largest width; measured = mean ± s.e. over seeds; relative test MSE on held-out "
             "finest-level data)", "",
             "| problem | budget (finest samples) | counts opt / single / equal | measured opt | measured single | "
             "measured equal | gain single/opt: measured · NTK · predicted |",
             "|---|---|---|---|---|---|---|"]
    for h in heads:
        for b in h["budgets"]:
            counts = " / ".join(str(tuple(b["counts"][a])) for a in allocs if a in b["counts"])
            meas = [f"{b['measured'][a][0]:.4f} ± {b['measured'][a][1]:.4f}" if a in b["measured"] else "-"
                    for a in allocs]
            lines.append(f"| {h['problem']} | {b['budget_samples']:.0f} | {counts} | {meas[0]} | {meas[1]} | "
                         f"{meas[2]} | x{b['gain_measured']:.2f} · x{b['gain_ntk']:.2f} · "
                         f"x{b['gain_predicted']:.2f} |")
    widths = sorted({w for r in results for w in r.widths})
    lines += ["", "## Excess error of the trained networks over the NTK limit (measured − NTK, mean ± s.e. "
              "over budgets, allocations and seeds) and its log-log slope in the width (theory: −1)", "",
              "| problem | " + " | ".join(f"w={w}" for w in widths) + " | slope |",
              "|---|" + "---|" * (len(widths) + 1)]
    for h in heads:
        cells = [f"{h['excess_vs_width'][w][0]:.3g} ± {h['excess_vs_width'][w][1]:.2g}"
                 if w in h["excess_vs_width"] else "-" for w in widths]
        lines.append(f"| {h['problem']} | " + " | ".join(cells) + f" | {h['excess_slope']:.2f} |")
    lines += ["", "## Distance of the error model from the trained networks: mean |log(measured / predicted)|", "",
              "| problem | " + " | ".join(f"w={w}" for w in widths) + " | NTK limit |",
              "|---|" + "---|" * (len(widths) + 1)]
    for h in heads:
        cells = [f"{h['measured_vs_predicted_log_ratio'][w]:.3f}" if w in h["measured_vs_predicted_log_ratio"]
                 else "-" for w in widths]
        lines.append(f"| {h['problem']} | " + " | ".join(cells) + f" | {h['ntk_vs_predicted_log_ratio']:.3f} |")
    lines += ["", "## Conclusions (generated from the numbers above)", "", *conclusions(heads)]
    for r in results:
        lines += ["", f"## {r.problem}", "", f"Error model: {r.error_model}. Costs per sample (s): "
                  f"{', '.join(f'{c:.3g}' for c in r.costs)}.", "", r.table()]
    return "\n".join(lines) + "\n"


def write_outputs(results, settings: dict, seed: int, seconds: float, out: str) -> str:
    """``validation.json``, ``validation.md`` and ``validation.{png,pdf}`` for these results; returns the
    markdown."""
    from ntk_mlft._io import write_json_atomic, write_text_atomic
    from ntk_mlft.reports.plotting import plot_validation_overview, save_figure

    heads = headline(results)
    write_json_atomic(os.path.join(out, "validation.json"),
                      {"settings": settings, "seed": seed, "headline": heads,
                       "results": [r.to_dict() for r in results], "runtime_seconds": seconds})
    text = markdown(results, heads, settings, seconds)
    write_text_atomic(os.path.join(out, "validation.md"), text)
    save_figure(plot_validation_overview(results), os.path.join(out, "validation"), dpi=110)
    return text


def load_results(paths: list[str]):
    """Results, settings and summed runtime from one or more ``validation.json`` files (to merge
    runs made separately, e.g. one problem per process). Settings that differ between the files
    are kept per run: ``{"runs": [{"problems": [...], **settings}, ...]}``."""
    from ntk_mlft.studies.trained_networks import ValidationResult

    results, runs, seconds = [], [], 0.0
    for path in paths:
        with open(path) as fh:
            d = json.load(fh)
        part = [ValidationResult.from_dict(r) for r in d["results"]]
        results += part
        runs.append({"problems": [r.problem for r in part], **d["settings"]})
        seconds += d.get("runtime_seconds", 0.0)
    same = all({k: v for k, v in r.items() if k != "problems"} == {k: v for k, v in runs[0].items()
                                                                    if k != "problems"} for r in runs)
    settings = {k: v for k, v in runs[0].items() if k != "problems"} if same else {"runs": runs}
    return results, settings, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("analysis", "results"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny smoke settings (one problem unless given)")
    parser.add_argument("--json", action="store_true", help="print the headline JSON")
    parser.add_argument("--problems", nargs="*", default=None, help="NAME or NAME:LEVELS")
    parser.add_argument("--widths", default=None, help="comma-separated hidden widths")
    parser.add_argument("--seeds", type=int, default=None, help="seeds (data draw + initialisation) per setting")
    parser.add_argument("--budget-samples", default=None, help="comma-separated budgets in finest samples' worth")
    parser.add_argument("--max-steps", type=int, default=None, help="CurveBall step limit per level")
    parser.add_argument("--cache-dir", default=os.path.join("results", "cache", "validation"),
                        help="dataset cache (problems.generate) and, under checkpoints/, the resumable "
                             "per-network rows: an interrupted run continues where it stopped")
    parser.add_argument("--from-json", nargs="+", default=None, metavar="PATH",
                        help="no training: merge/re-plot these validation.json files into --out")
    args = parser.parse_args(argv)
    import jax

    jax.config.update("jax_enable_x64", True)
    if args.from_json:
        results, settings, seconds = load_results(args.from_json)
    else:
        settings = dict(QUICK if args.quick else FULL)
        for key in ("widths", "seeds", "budget_samples", "max_steps"):
            if getattr(args, key) is not None:
                settings[key] = getattr(args, key)
        problems = args.problems or (["burgers-shock"] if args.quick else DEFAULT_PROBLEMS)
        t0 = time.perf_counter()
        results = []
        for spec in problems:
            t1 = time.perf_counter()
            results.append(run_problem(spec, settings, args.seed, args.cache_dir))
            print(f"done: {spec} in {time.perf_counter() - t1:.0f} s", file=sys.stderr, flush=True)
            write_outputs(results, settings, args.seed, time.perf_counter() - t0, args.out)
        seconds = time.perf_counter() - t0
    text = write_outputs(results, settings, args.seed, seconds, args.out)
    if args.json:
        json.dump(headline(results), sys.stdout, indent=2)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
