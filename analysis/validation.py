"""Does the optimal MLFT allocation beat single-level training with real finite-width networks?

For each built-in problem (default: the four 1-D ones; ``darcy-2d:3`` = darcy-2d with 3 levels
can be added), at one fixed budget, :func:`ntk_mlft.validation.validate` runs the allocations
optimal / single (finest only) / equal split, trains centred ``mlp-relu-3`` networks of several
widths with CurveBall level by level (proximal ridge λ = 0.1 × mean NTK diagonal, each stage to a
relative-decrease stopping rule), for several seeds (fresh data and initialisation per seed), and
reports the measured relative test MSE on held-out finest-level data beside

- the infinite-width limit on the same data (chained kernel ridge regression with the NTK), and
- the prediction of the spectral MLFT estimator on a paired pilot pool (the same construction as
  ``ntk-mlft allocate --problem`` and ``ntk-mlft demo``; :mod:`ntk_mlft.workflow`).

Costs: the linear-work model ``c_l = (cells of grid l) × 1 µs`` (cells = grid points, squared in
2-D) — deterministic, so the run is reproducible; wall-clock costs of these small 1-D solvers are
dominated by a fixed per-sample overhead at coarse levels (see ``ntk_mlft/problems/README.md``),
which would make every level cost nearly the same and MLFT pointless. The budget buys
``--budget-samples`` finest-level samples.

Writes ``validation.json`` (every trained network and the aggregates), ``validation.md`` (tables)
and ``validation.png``/``.pdf`` (overview figure) to ``--out`` (default ``analysis/results``), the JSON
after each problem so that an interrupted run keeps what finished. ``--quick`` is a smoke run.

Usage: ``python analysis/validation.py [--out DIR] [--seed S] [--quick] [--json]
[--problems NAME[:LEVELS] ...] [--widths 32,128,512] [--seeds 2] [--budget-samples 16]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

DEFAULT_PROBLEMS = ["burgers-shock", "schrodinger-ground-state", "helmholtz-oscillatory", "elliptic-rough"]
FULL = {"widths": "32,128,512", "seeds": 2, "budget_samples": 8, "n_pilot": 400, "n_test": 200,
        "max_steps": 100}
QUICK = {"widths": "16,64", "seeds": 1, "budget_samples": 8, "n_pilot": 120, "n_test": 40, "max_steps": 40}


def linear_work_costs(problem, seconds_per_cell: float = 1e-6) -> np.ndarray:
    """``c_l = cells(l) · seconds_per_cell`` with cells = ``grid(l) ** d`` (d = input dimension)."""
    d = len(problem.input_shape)
    return np.array([float(problem.grid(lv)) ** d for lv in range(1, problem.n_levels + 1)]) * seconds_per_cell


def run_problem(spec: str, settings: dict, seed: int, cache_dir: str | None):
    """One problem (``name`` or ``name:levels``) → ``ValidationResult``."""
    from ntk_mlft.problems import get_problem
    from ntk_mlft.validation import validate

    name, _, levels = spec.partition(":")
    problem = get_problem(name, levels=int(levels) if levels else None)
    costs = linear_work_costs(problem)
    budget = settings["budget_samples"] * costs[-1]
    return validate(problem, budgets=[budget], widths=[int(w) for w in settings["widths"].split(",")],
                    seeds=range(settings["seeds"]), n_test=settings["n_test"], n_pilot=settings["n_pilot"],
                    max_steps=settings["max_steps"], costs=costs, seed=seed, cache_dir=cache_dir,
                    checkpoint_dir=None if cache_dir is None else os.path.join(cache_dir, "checkpoints"))


def headline(results) -> list[dict]:
    """Per problem at the largest width: errors per allocation, gains, prediction and gap per width."""
    out = []
    for r in results:
        w = max(r.widths)
        s = {d["allocation"]: d for d in r.summary() if d["width"] == w}
        g = next(d for d in r.gains() if d["width"] == w)
        out.append({
            "problem": r.problem, "width": w, "costs": list(r.costs), "budget": r.budgets[0],
            "counts": {a: d["counts"] for a, d in s.items()},
            "measured": {a: [d["measured_mean"], d["measured_se"]] for a, d in s.items()},
            "ntk": {a: d["ntk_mean"] for a, d in s.items()},
            "predicted": {a: d["predicted"] for a, d in s.items()},
            "gain_measured": g.get("measured_single_over_optimal"),
            "gain_ntk": g.get("ntk_single_over_optimal"),
            "gain_predicted": g.get("predicted_single_over_optimal"),
            "gap_vs_width": {d["width"]: d["finite_width_gap"] for d in r.gaps()},
            "gap_slope": _slope([d["width"] for d in r.gaps()], [d["finite_width_gap"] for d in r.gaps()]),
            "measured_vs_predicted_log_ratio": {d["width"]: d["log_ratio_to_predicted"] for d in r.gaps()},
            "ntk_vs_predicted_log_ratio": r.gaps()[0]["log_ratio_ntk_to_predicted"],
            "step_limit_hits": {ww: sum(x.max_stage_steps >= r.settings.get("max_steps", np.inf)
                                        for x in r.rows if x.width == ww) for ww in r.widths},
            "nets_per_width": sum(x.width == w for x in r.rows),
        })
    return out


def _slope(widths, gaps) -> float:
    """Least-squares slope of log(gap) against log(width)."""
    return float(np.polyfit(np.log(widths), np.log(gaps), 1)[0]) if len(widths) > 1 else float("nan")


def conclusions(heads) -> list[str]:
    """Plain statements generated from the headline numbers (no hand-written claims)."""
    lines = []
    for h in heads:
        w = h["width"]
        gaps = list(h["gap_vs_width"].values())
        verdict = ("optimal MLFT beats single-level" if h["gain_measured"] > 1
                   else "CONTRADICTS the theory: optimal MLFT does not beat single-level")
        lines.append(
            f"- **{h['problem']}**: {verdict} — measured error ratio single/optimal x{h['gain_measured']:.2f} "
            f"at width {w} (NTK limit on the same data x{h['gain_ntk']:.2f}, predicted "
            f"x{h['gain_predicted']:.2f}); optimal counts {tuple(h['counts']['optimal'])} vs single "
            f"{tuple(h['counts']['single'])}. Finite-width gap |measured − NTK|/NTK {gaps[0]:.2f} → {gaps[-1]:.2f} "
            f"from the smallest to the largest width (log-log slope {h['gap_slope']:.2f}); "
            f"{h['step_limit_hits'][w]}/{h['nets_per_width']} nets at width {w} reached the step limit in some "
            f"level (not fully converged). Estimator vs NTK on the same data: mean |log ratio| "
            f"{h['ntk_vs_predicted_log_ratio']:.2f}.")
    return lines


def markdown(results, heads, settings, seconds) -> str:
    allocs = ["optimal", "single", "equal"]
    lines = ["# MLFT validation: trained finite-width networks vs NTK predictions", "",
             f"Settings: {json.dumps(settings)}; architecture {results[0].architecture}, optimizer "
             f"{results[0].optimizer}, ridge 0.1 x mean NTK diagonal, costs = cells x 1 µs, "
             f"budget = {settings['budget_samples']} finest-level samples. Wall-clock {seconds / 60:.1f} min summed over "
             "runs (on a shared, loaded 2-core machine; most of it is XLA compilation, once per width and data "
             "shape).", "",
             "## Headline (largest width; measured = mean ± s.e. over seeds; relative test MSE)", "",
             "| problem | counts opt / single / equal | measured opt | measured single | measured equal | "
             "gain single/opt: measured · NTK · predicted | predicted opt / single |",
             "|---|---|---|---|---|---|---|"]
    for h in heads:
        counts = " / ".join(str(tuple(h["counts"][a])) for a in allocs if a in h["counts"])
        meas = [f"{h['measured'][a][0]:.4f} ± {h['measured'][a][1]:.4f}" if a in h["measured"] else "-"
                for a in allocs]
        lines.append(f"| {h['problem']} | {counts} | {meas[0]} | {meas[1]} | {meas[2]} | "
                     f"x{h['gain_measured']:.2f} · x{h['gain_ntk']:.2f} · x{h['gain_predicted']:.2f} | "
                     f"{h['predicted']['optimal']:.4f} / {h['predicted']['single']:.4f} |")
    lines += ["", "## Finite-width gap mean |measured − NTK| / NTK, and mean |log(measured / predicted)|, by width", "",
              "| problem | " + " | ".join(f"gap w={w}" for w in results[0].widths) + " | "
              + " | ".join(f"log-ratio w={w}" for w in results[0].widths) + " |",
              "|---|" + "---|" * (2 * len(results[0].widths))]
    for h in heads:
        lines.append(f"| {h['problem']} | " + " | ".join(f"{v:.3f}" for v in h["gap_vs_width"].values()) + " | "
                     + " | ".join(f"{v:.3f}" for v in h["measured_vs_predicted_log_ratio"].values()) + " |")
    lines += ["", "## Conclusions (generated from the numbers above)", "", *conclusions(heads), "",
              "Caveats of this reduced run: the budget buys only a few finest-level samples (CPU limits); each "
              "level gets at most the step limit of CurveBall steps, and nets that hit it are not fully converged, "
              "so part of the measured gap is optimisation, not width; the estimator is a pool estimate (counts "
              "capped at half the pilot pool, where optimal allocations often sit) and its learning-curve theory "
              "is asymptotic in N, least accurate for the few finest samples; costs follow a linear-work model — "
              "wall-clock costs of these 1-D solvers are nearly flat at coarse levels, which would shrink the gains."]
    for r in results:
        lines += ["", f"## {r.problem}", "", f"Error model: {r.error_model}. Costs per sample (s): "
                  f"{', '.join(f'{c:.3g}' for c in r.costs)}.", "", r.table()]
    return "\n".join(lines) + "\n"


def write_outputs(results, settings: dict, seed: int, seconds: float, out: str) -> str:
    """``validation.json``, ``validation.md`` and ``validation.{png,pdf}`` for these results; returns the
    markdown."""
    from ntk_mlft._io import write_json_atomic, write_text_atomic
    from ntk_mlft.plotting import plot_validation_overview, save_figure

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
    separate runs, or re-plot without retraining)."""
    from ntk_mlft.validation import ValidationResult

    results, settings, seconds = [], None, 0.0
    for path in paths:
        with open(path) as fh:
            d = json.load(fh)
        results += [ValidationResult.from_dict(r) for r in d["results"]]
        settings = settings or d["settings"]
        seconds += d.get("runtime_seconds", 0.0)
    return results, settings, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("analysis", "results"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny smoke settings (one problem unless given)")
    parser.add_argument("--json", action="store_true", help="print the headline JSON")
    parser.add_argument("--problems", nargs="*", default=None, help="NAME or NAME:LEVELS")
    parser.add_argument("--widths", default=None)
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--budget-samples", type=int, default=None)
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
        for key in ("widths", "seeds", "budget_samples"):
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
