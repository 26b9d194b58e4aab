"""Reach of the practical error model on large unlabeled pools: speed and accuracy.

``--part speed``: the default problem (or ``--problem``), ``--pilot`` paired pilot solves
(timed separately: problem solves), ``--pool`` unlabeled inputs, the Nyström pool spectrum
(``estimators.pool_spectrum.nystrom_pool_spectrum``, ``--landmarks``) and the pilot estimate on
it: set-up seconds, peak resident memory, one E(N) evaluation (median of 200), and predictions
at counts up to 1e5 per level (no pool cap), with the tail's share of each prediction.

``--part accuracy``: a synthetic 3-level family (Gaussian inputs, smooth level differences of
decreasing size; cheap labels, so fresh draws of 1e4 samples are affordable) per ``--seeds``:
the same model against the streamed fresh-draw Monte-Carlo reference
(``estimators.streamed_montecarlo``) at allocations with N_l from 1e2 to ``--max-count``.

Writes ``--out``/estimator_reach_<part>.json and .md (atomic); reports os.getloadavg().
Run: python benchmarks/estimator_reach.py --part speed --pool 100000 --landmarks 1000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def _model(kernel_fn, x_pilot, x_pool, landmarks, seed, gamma=1.0):
    from ntk_mlft.estimators.pool_spectrum import nystrom_pool_spectrum

    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spec = nystrom_pool_spectrum(kernel_fn, x_pilot, x_pool, n_landmarks=landmarks, seed=seed,
                                     tail_power_exponent=gamma)
    return spec, time.perf_counter() - t0, [str(w.message) for w in caught]


def _estimate(spec, ys, ridge_abs, seed):
    from ntk_mlft.estimators import PilotEstimator

    t0 = time.perf_counter()
    model = PilotEstimator.from_spectrum(spec, ys, ridge=ridge_abs, n_boot=30, seed=seed)
    return model, time.perf_counter() - t0


def _shares(model, spec, counts):
    """Tail share of the prediction: 1 - E(tail target powers zeroed) / E."""
    from dataclasses import replace

    est = model.estimate
    n_tail = spec.tail.bands()[0].size
    if n_tail == 0:
        return np.zeros(len(counts))
    cross = est.cross.copy()
    cross[:, :, -n_tail:] = 0.0
    knots_low = est.knots < spec.tail.eta_last
    gram = est.gram.copy()
    gram[:, :, knots_low, :] = 0.0
    gram[:, :, :, knots_low] = 0.0
    cut = replace(est, cross=cross, gram=gram)
    full = est.error_many(counts)
    return 1.0 - cut.error_many(counts) / full


def speed(args) -> dict:
    from ntk_mlft.architectures import get_architecture
    from ntk_mlft.problems.registry import DEFAULT_PROBLEM, get_problem
    from ntk_mlft.studies.error_model import pilot_from_problem, unlabeled_inputs

    problem = get_problem(args.problem or DEFAULT_PROBLEM)
    t0 = time.perf_counter()
    pilot = pilot_from_problem(problem, args.pilot, seed=args.seed)
    t_solves = time.perf_counter() - t0
    x_pool = unlabeled_inputs(problem, args.pool, args.seed)
    ys = np.asarray(pilot.ys)
    net = get_architecture(args.arch, output_dim=int(np.prod(ys.shape[2:]) or 1))
    t0, c0 = time.perf_counter(), time.process_time()
    spec, t_spec, warns = _model(net.kernel_fn, pilot.x, x_pool, args.landmarks, args.seed)
    ridge_abs = args.ridge * _mean_diag(net.kernel_fn, x_pool[:2000])
    model, t_est = _estimate(spec, ys, ridge_abs, args.seed)
    t_setup, c_setup = time.perf_counter() - t0, time.process_time() - c0
    n_levels = ys.shape[0]
    grid = [n for n in (10 ** 2, 10 ** 3, 10 ** 4, 5 * 10 ** 4) if n <= spec.size // 2]
    counts = np.array([[n] * (n_levels - 1) + [max(1, n // 16)] for n in grid], dtype=float)
    single = np.array([[0] * (n_levels - 1) + [n] for n in grid], dtype=float)
    allc = np.concatenate([counts, single])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pred = model.error_many(allc)
    model.error(allc[0])
    times = []
    for _ in range(200):
        t = time.perf_counter()
        model.error(allc[2])
        times.append(time.perf_counter() - t)
    return {"part": "speed", "problem": problem.name, "arch": args.arch, "n_pilot": args.pilot,
            "pool": int(spec.size), "landmarks": args.landmarks, "rank": int(spec.rank),
            "pilot_solves_s": t_solves, "spectrum_s": t_spec, "estimate_s": t_est,
            "setup_s_excluding_solves": t_setup, "setup_cpu_s": c_setup,
            "peak_rss_gb": _peak_gb(),
            "eval_ms_median": 1e3 * float(np.median(times)),
            "eval_ms_p90": 1e3 * float(np.percentile(times, 90)),
            "counts": allc.tolist(), "predicted": pred.tolist(),
            "tail_share": _shares(model, spec, allc).tolist(),
            "tail": {"alpha": spec.tail.alpha, "alpha_slope": spec.tail.alpha_slope,
                     "mass": spec.tail.mass, "eta_last": spec.tail.eta_last},
            "warnings": warns + [str(w.message) for w in caught],
            "loadavg": os.getloadavg(), "cpus": os.cpu_count()}


def _mean_diag(kernel_fn, x) -> float:
    from ntk_mlft.estimators.pool_spectrum import _kernel_diagonal

    return float(np.mean(_kernel_diagonal(kernel_fn, np.asarray(x, np.float64),
                                          min(256, len(x)), "ntk")))


def _synthetic_draw(dim: int, seed: int):
    """Fresh draws of a 3-level synthetic family: u_1 smooth, d_2, d_3 smaller, rougher."""
    g = np.random.default_rng(1000 + seed)
    w1, w2, w3 = g.normal(size=(3, dim)) / np.sqrt(dim) * np.array([[1.0], [2.0], [3.0]])

    def draw(rng, level, n):
        x = rng.normal(size=(n, dim))
        u = np.sin(x @ w1) + 0.5 * np.cos(x[:, 0])
        if level >= 2:
            u = u + 0.3 * np.sin(x @ w2 + 1.0)
        if level >= 3:
            u = u + 0.1 * np.cos(x @ w3)
        return x, u[:, None]

    return draw


def accuracy(args) -> dict:
    from ntk_mlft.architectures import get_architecture
    from ntk_mlft.estimators.streamed_montecarlo import streamed_montecarlo

    net = get_architecture(args.arch, output_dim=1)
    cases = []
    top = args.max_count
    allocs = np.array([[0, 0, 100], [0, 0, 1000], [1000, 300, 100], [top, top // 4, top // 16],
                       [top, 0, top // 10], [0, 0, top]])
    for seed in args.seeds:
        draw = _synthetic_draw(args.dim, seed)
        rng = np.random.default_rng([seed, 99])
        x_p, _ = draw(rng, 1, args.pilot)
        ys = np.stack([_label(draw, x_p, lvl) for lvl in (1, 2, 3)])
        x_pool, _ = draw(rng, 1, args.pool)
        t0 = time.perf_counter()
        spec, _, warns = _model(net.kernel_fn, x_p, x_pool, args.landmarks, seed,
                                args.tail_power_exponent)
        ridge_abs = args.ridge * _mean_diag(net.kernel_fn, x_pool[:2000])
        model, _ = _estimate(spec, ys, ridge_abs, seed)
        t_model = time.perf_counter() - t0
        pred = model.error_many(allocs)
        t0 = time.perf_counter()
        mc = streamed_montecarlo(net.kernel_fn, draw, allocs, ridge=ridge_abs,
                                 n_trials=args.trials, n_test=args.n_test, seed=seed,
                                 block=1024)
        cases.append({"seed": seed, "counts": allocs.tolist(), "predicted": pred.tolist(),
                      "mc": mc.mean.tolist(), "mc_stderr": mc.stderr.tolist(),
                      "rel": (pred / mc.mean - 1).tolist(),
                      "mc_rel_stderr": (mc.stderr / mc.mean).tolist(),
                      "tail_share": _shares(model, spec, allocs).tolist(),
                      "model_s": t_model, "mc_s": time.perf_counter() - t0, "warnings": warns})
        print(f"seed {seed}: rel {np.round(pred / mc.mean - 1, 3)}", file=sys.stderr, flush=True)
    rel = np.abs(np.concatenate([c["rel"] for c in cases]))
    return {"part": "accuracy", "family": f"synthetic {args.dim}-d Gaussian, 3 levels",
            "arch": args.arch, "n_pilot": args.pilot, "pool": args.pool,
            "landmarks": args.landmarks, "trials": args.trials, "n_test": args.n_test,
            "tail_power_exponent": args.tail_power_exponent,
            "cases": cases, "abs_rel_median": float(np.median(rel)),
            "abs_rel_p90": float(np.percentile(rel, 90)), "abs_rel_worst": float(rel.max()),
            "peak_rss_gb": _peak_gb(), "loadavg": os.getloadavg(), "cpus": os.cpu_count()}


def _label(draw, x, level):
    """Labels of ``draw``'s family at given inputs (the family is a function of x alone)."""

    class _Fixed:
        def normal(self, size):
            return x

    return draw(_Fixed(), level, len(x))[1]


def _markdown(res: dict) -> str:
    if res["part"] == "speed":
        rows = "\n".join(f"| {list(map(int, c))} | {p:.4g} | {s:.1%} |" for c, p, s in
                         zip(res["counts"], res["predicted"], res["tail_share"]))
        return (f"# Estimator reach: speed ({res['problem']}, {res['arch']})\n\n"
                f"Pool of {res['pool']} inputs ({res['n_pilot']} pilot + the rest unlabeled), "
                f"{res['landmarks']} landmarks, rank {res['rank']}; load {res['loadavg']} on "
                f"{res['cpus']} CPUs.\n\n"
                f"- set-up (spectrum + estimate, pilot solves excluded): "
                f"{res['setup_s_excluding_solves']:.1f} s wall, {res['setup_cpu_s']:.1f} s CPU of "
                f"this process (spectrum {res['spectrum_s']:.1f} s, "
                f"estimate {res['estimate_s']:.1f} s); pilot solves {res['pilot_solves_s']:.1f} s\n"
                f"- peak resident memory: {res['peak_rss_gb']:.2f} GB\n"
                f"- one E(N) evaluation: median {res['eval_ms_median']:.2f} ms, 90th percentile "
                f"{res['eval_ms_p90']:.2f} ms\n"
                f"- tail: alpha {res['tail']['alpha']:.3g} (slope of computed modes "
                f"{res['tail']['alpha_slope']:.3g})\n\n"
                f"| counts | predicted E | tail share |\n|---|---|---|\n{rows}\n\n"
                f"Warnings: {res['warnings'] or 'none'}\n")
    lines = []
    for c in res["cases"]:
        for n, p, m, s, r, t in zip(c["counts"], c["predicted"], c["mc"], c["mc_rel_stderr"],
                                    c["rel"], c["tail_share"]):
            lines.append(f"| {c['seed']} | {n} | {p:.4g} | {m:.4g} ± {s:.1%} | {r:+.1%} | {t:.1%} |")
    return (f"# Estimator reach: accuracy ({res['family']}, {res['arch']})\n\n"
            f"Pilot {res['n_pilot']}, pool {res['pool']}, {res['landmarks']} landmarks, tail "
            f"power exponent {res['tail_power_exponent']:g}; "
            f"Monte-Carlo: {res['trials']} fresh-draw trials x {res['n_test']} test inputs; "
            f"load {res['loadavg']}.\n\n|rel| median {res['abs_rel_median']:.1%}, 90th "
            f"percentile {res['abs_rel_p90']:.1%}, worst {res['abs_rel_worst']:.1%}.\n\n"
            f"| seed | counts | predicted | MC ± rel s.e. | rel. dev. | tail share |\n"
            f"|---|---|---|---|---|---|\n" + "\n".join(lines) + "\n")


def main(argv=None) -> int:
    from ntk_mlft._io import write_text_atomic

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=("speed", "accuracy"), required=True)
    p.add_argument("--problem", default=None)
    p.add_argument("--arch", default="mlp-relu-3")
    p.add_argument("--pilot", type=int, default=200)
    p.add_argument("--pool", type=int, default=100000)
    p.add_argument("--landmarks", type=int, default=1000)
    p.add_argument("--ridge", type=float, default=1e-3)
    p.add_argument("--dim", type=int, default=6)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--max-count", type=int, default=4000)
    p.add_argument("--trials", type=int, default=3)
    p.add_argument("--n-test", type=int, default=3000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tail-power-exponent", type=float, default=1.0)
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args(argv)
    res = speed(args) if args.part == "speed" else accuracy(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / f"estimator_reach_{args.part}.json", json.dumps(res, indent=1))
    write_text_atomic(out / f"estimator_reach_{args.part}.md", _markdown(res))
    print(_markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
