"""PDE problems: per-level cost tables of every problem, the darcy-2d solver choice, and Burgers'
batch amortisation (same run, same machine; compare ratios, not absolute times).

1. ``costs``: :func:`ntk_mlft.problems.measure_costs` at each problem's default hierarchy (batches
   of 32 = ``generate``'s chunk, minimum over 5 interleaved repeats), with level-to-level ratios.
2. ``darcy_solvers``: one darcy-2d system (default input, grids 64^2..256^2, ``--big`` adds 512^2)
   solved by SuperLU with the COLAMD (scipy's default), MMD_AT_PLUS_A and MMD_ATA orderings, by
   ``splu`` in symmetric mode, and -- if pyamg is importable (it is NOT a dependency) -- by
   pyamg smoothed-aggregation-preconditioned CG to rtol 1e-12 (setup included: every sample has
   a new matrix). Cases are interleaved, best of ``--repeats``; the max relative deviation from
   the COLAMD solution is reported next to each time.
3. ``burgers_batch``: seconds per sample of burgers-shock at each default level when solved one
   sample per call vs 32 per call (the batch is stepped together).

Usage: ``python benchmarks/problems.py [--out DIR] [--repeats R] [--big] [--json]``; writes
problems.json. BLAS runs single-threaded (``OPENBLAS_NUM_THREADS=1`` etc. unless already set),
as in one worker of a ``generate`` process pool: on a loaded machine multi-threaded BLAS inside
ARPACK, SuperLU and pyamg spins for the cores and made some solves 10-50x slower. The load
average is recorded: on a shared machine absolute times vary by 2-3x between runs, ratios
within one run much less.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy is imported

import numpy as np  # noqa: E402


def _best(fn, repeats: int) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def cost_tables() -> dict:
    from ntk_mlft.problems import available_problems, get_problem, measure_costs

    tables = {}
    for name in available_problems():
        problem = get_problem(name)
        t0 = time.perf_counter()
        try:
            table = measure_costs(problem)
            costs = table.cost_seconds
            tables[name] = {"grid": table.grid.tolist(), "cost_seconds": costs.tolist(),
                            "ratios": (costs[1:] / costs[:-1]).tolist(),
                            "measure_seconds": time.perf_counter() - t0}
        except ValueError as err:  # a non-increasing table is a result too
            tables[name] = {"error": str(err)}
    return tables


def darcy_solvers(repeats: int, big: bool) -> dict:
    from scipy.sparse.linalg import splu, spsolve

    from ntk_mlft.problems import get_problem
    from ntk_mlft.problems.darcy import darcy_matrix, restrict_cells

    try:
        import pyamg
    except ImportError:
        pyamg = None
    x = get_problem("darcy-2d").sample_inputs(np.random.default_rng(0), 1)[0]
    cases = {
        "spsolve COLAMD": lambda A, b: spsolve(A, b, permc_spec="COLAMD"),
        "spsolve MMD_AT_PLUS_A": lambda A, b: spsolve(A, b, permc_spec="MMD_AT_PLUS_A"),
        "spsolve MMD_ATA": lambda A, b: spsolve(A, b, permc_spec="MMD_ATA"),
        "splu symmetric MMD_AT_PLUS_A": lambda A, b: splu(
            A, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True}).solve(b),
    }
    if pyamg is not None:
        def amg(A, b):
            ml = pyamg.smoothed_aggregation_solver(A.tocsr(), symmetry="symmetric")
            return ml.solve(b, tol=1e-12, accel="cg", maxiter=500)
        cases["pyamg SA + CG (rtol 1e-12)"] = amg
    out = {"pyamg": getattr(pyamg, "__version__", None), "grids": {}}
    for n in (64, 128, 256) + ((512,) if big else ()):
        A = darcy_matrix(restrict_cells(x, n))
        b = np.ones(n * n) / (n * n)
        t_asm, _ = _best(lambda: darcy_matrix(restrict_cells(x, n)), repeats)
        ref = spsolve(A, b, permc_spec="COLAMD")
        times = {name: np.inf for name in cases}
        devs = {}
        for _ in range(repeats):  # interleaved: load changes hit every case alike
            for name, solve in cases.items():
                t, u = _best(lambda: solve(A, b), 1)
                times[name] = min(times[name], t)
                devs[name] = float(np.max(np.abs(u - ref)) / np.max(np.abs(ref)))
        out["grids"][str(n)] = {"assemble_s": t_asm,
                                "solve_s": times, "max_rel_deviation": devs}
    return out


def burgers_batch(repeats: int) -> dict:
    from ntk_mlft.problems import get_problem

    p = get_problem("burgers-shock")
    x = p.sample_inputs(np.random.default_rng(0), 32)
    res = {"grid": [], "one_per_call_s": [], "batch_32_s": []}
    for level in range(1, p.n_levels + 1):
        p.solve(x[:2], level)
        t_one, _ = _best(lambda: [p.solve(x[i:i + 1], level) for i in range(8)], repeats)
        t_batch, _ = _best(lambda: p.solve(x, level), repeats)
        res["grid"].append(p.grid(level))
        res["one_per_call_s"].append(t_one / 8)
        res["batch_32_s"].append(t_batch / 32)
    return res


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("benchmarks", "results"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--big", action="store_true", help="also time darcy at 512^2 (~10 s per solve)")
    parser.add_argument("--json", action="store_true", help="print the JSON result")
    args = parser.parse_args(argv)
    from ntk_mlft._io import write_json_atomic

    load0 = os.getloadavg()
    res = {"costs": cost_tables(), "darcy_solvers": darcy_solvers(args.repeats, args.big),
           "burgers_batch": burgers_batch(args.repeats),
           "load_average_1min": [load0[0], os.getloadavg()[0]], "cpu_count": os.cpu_count(),
           "blas_threads": os.environ["OPENBLAS_NUM_THREADS"]}
    os.makedirs(args.out, exist_ok=True)
    write_json_atomic(os.path.join(args.out, "problems.json"), res)
    if args.json:
        json.dump(res, sys.stdout, indent=2)
        return 0
    for name, t in res["costs"].items():
        if "error" in t:
            print(f"{name}: {t['error']}")
        else:
            print(f"{name}: " + ", ".join(f"{g}: {c * 1e3:.3g} ms" for g, c in zip(t["grid"], t["cost_seconds"]))
                  + "  ratios " + ", ".join(f"{r:.1f}" for r in t["ratios"]))
    for n, row in res["darcy_solvers"]["grids"].items():
        print(f"darcy {n}^2: " + ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in row["solve_s"].items()))
    b = res["burgers_batch"]
    print("burgers per sample, 1/call vs 32/call: " + ", ".join(
        f"{g}: {a * 1e3:.2f} / {c * 1e3:.2f} ms" for g, a, c in zip(b["grid"], b["one_per_call_s"], b["batch_32_s"])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
