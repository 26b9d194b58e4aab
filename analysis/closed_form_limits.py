"""Where the spectral closed form fails: the mode distribution of a single level's error.

For unit-sphere pools (n points, d = 2, 3, 8, 32), the ReLU-MLP NTK of depth 3
(``mlp-relu-3``), ridge 1e-6 x mean diagonal and a smooth target with rough coarse levels
(high-frequency oscillation + a jump, shrinking 4x per level), it measures

- per rank band, the fluctuation power of the level-1 error over draws of the training set
  (Monte-Carlo, projected on the normalised pool's modes) against the closed form's
  v_rho (E + sigma^2), and the mean-field (bias) power against sum s^2 t^2
  (docs/theory.md section 9);
- the fresh-input error of single-level allocations N = n/10, n/5 (the finest level), closed
  form / Monte-Carlo (disjoint sets);
- for three levels of n/10 each with independent sets (the scheme the fresh-input step
  models): the pool error and the fresh error, closed form / Monte-Carlo.

Writes ``closed_form_limits.json`` and ``.md`` to ``--out`` (peak memory and load included).
Usage: ``python analysis/closed_form_limits.py [--n N] [--trials T] [--out DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import numpy as np

BANDS = ((0, 10), (10, 50), (50, 100), (100, 200), (200, 400), (400, None))
DIMS = (2, 3, 8, 32)


def problem(d: int, n: int, seed: int = 0, n_levels: int = 3):
    """Sphere inputs x (n, d), level targets u (L, n, 1): smooth fine level, coarse levels =
    fine + (oscillation + jump) x 4^-(L - 1 - l)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    w = rng.normal(size=d)
    fine = np.sin(2 * x @ (w / np.linalg.norm(w))) + 0.5 * x[:, 0] ** 2
    levels = []
    for lvl in range(n_levels):
        amp = 4.0 ** -(n_levels - 1 - lvl) if lvl < n_levels - 1 else 0.0
        v = rng.normal(size=d)
        levels.append(fine + amp * (0.5 * np.sin(25 * x @ (v / np.linalg.norm(v)) + lvl)
                                    + 0.3 * np.sign(x[:, (lvl + 1) % d] - 0.2)))
    return x, np.stack(levels)[:, :, None]


def fluctuation_bands(k: np.ndarray, target: np.ndarray, n_train: int, ridge: float,
                      trials: int, seed: int) -> dict:
    """MC vs closed-form fluctuation and bias power of one level (normalised units)."""
    from ntk_mlft.estimators.spectral import solve_kappa

    n = k.shape[0]
    omega = np.diag(k) / np.diag(k).mean()
    root = np.sqrt(omega)
    kh = k / np.outer(root, root)
    ev, vecs = np.linalg.eigh(kh)
    ev, vecs = ev[::-1], vecs[:, ::-1]
    lam = ridge * float(np.mean(1 / omega))
    t = target / root
    rng = np.random.default_rng(seed)
    errs = []
    for _ in range(trials):
        s = rng.choice(n, n_train, replace=False)
        alpha = np.linalg.solve(kh[np.ix_(s, s)] + lam * np.eye(n_train), t[s])
        errs.append(kh[:, s] @ alpha - t)
    errs = np.array(errs)
    mean = errs.mean(0)
    f_mc = np.mean(((errs - mean) @ vecs) ** 2, 0) / n
    eta = np.maximum(ev, 0) / n
    kap = solve_kappa(eta, np.array([float(n_train)]), lam)[0]
    shrink = kap / (n_train * eta + kap)
    v = n_train * eta ** 2 / (n_train * eta + kap) ** 2
    tc = vecs.T @ t / np.sqrt(n)
    bias_cf = float(np.sum(shrink ** 2 * tc ** 2))
    f_cf = v * bias_cf / (1 - v.sum())
    bands = [{"modes": [lo, n if hi is None else hi], "mc": float(f_mc[lo:hi].sum()),
              "closed_form": float(f_cf[lo:hi].sum())} for lo, hi in BANDS]
    return {"bands": bands, "bias_mc": float(np.mean(mean ** 2)), "bias_closed_form": bias_cf}


def run(n: int, trials: int) -> list[dict]:
    import jax

    jax.config.update("jax_enable_x64", True)
    from ntk_mlft.architectures import get_architecture
    from ntk_mlft.estimators import SpectralEstimator, montecarlo_error

    out = []
    for d in DIMS:
        x, u = problem(d, n)
        k = np.asarray(get_architecture("mlp-relu-3", output_dim=1).kernel_fn(x, None, get="ntk"),
                       dtype=np.float64)
        ridge = 1e-6 * float(np.trace(k)) / n
        rows = np.array([[0, 0, n // 10], [0, 0, n // 5]])
        mc = montecarlo_error(k, u, rows, ridge=ridge, n_trials=trials, seed=1, sets="disjoint")
        cf = SpectralEstimator.from_kernel(k, u, ridge=ridge).error_many(rows)
        fl = fluctuation_bands(k, u[0, :, 0], n // 10, ridge, trials, seed=2)
        flat = np.array([[n // 10] * 3])
        ind = montecarlo_error(k, u, flat, ridge=ridge, n_trials=trials // 4, seed=3)
        est = SpectralEstimator.from_kernel(k, u, ridge=ridge)
        chained = {"counts": flat[0].tolist(),
                   "pool_ratio": float(est.error_many(flat, target="pool")[0] / ind.mean[0]),
                   "fresh_ratio": float(est.error_many(flat)[0] / ind.fresh_mean[0]),
                   "mc_fresh_se": float(ind.fresh_stderr[0] / ind.fresh_mean[0])}
        out.append({"d": d, "n": n, "counts": rows.tolist(), "mc": mc.fresh_mean.tolist(),
                    "mc_se": mc.fresh_stderr.tolist(), "closed_form": cf.tolist(),
                    "level1_fluctuation": fl, "chained_independent": chained})
        print(f"done d={d}", file=sys.stderr, flush=True)
    return out


def markdown(results: list[dict], meta: dict) -> str:
    lines = ["# Where the closed form fails: mode distribution of one level's error", "",
             f"`python analysis/closed_form_limits.py --n {meta['n']} --trials {meta['trials']}` "
             f"({meta['seconds']:.0f} s, peak {meta['peak_mb']:.0f} MB, load {meta['load']}). "
             "Unit-sphere pools, mlp-relu-3 NTK, ridge 1e-6 x mean diagonal "
             "(docs/theory.md section 9).", "",
             "## Level-1 error, N = n/10: Monte-Carlo / closed form, per rank band", "",
             "| d | " + " | ".join(f"{b['modes'][0]}-{b['modes'][1]}"
                                   for b in results[0]["level1_fluctuation"]["bands"])
             + " | bias (mean field) |", "|---" * (len(BANDS) + 2) + "|"]
    for r in results:
        fl = r["level1_fluctuation"]
        lines.append(f"| {r['d']} | " + " | ".join(f"{b['mc'] / b['closed_form']:.2f}"
                                                    for b in fl["bands"])
                     + f" | {fl['bias_mc'] / fl['bias_closed_form']:.2f} |")
    lines += ["", "## Single-level fresh error: closed form / Monte-Carlo", "",
              "| d | counts | MC ± s.e. | closed form / MC |", "|---|---|---|---|"]
    for r in results:
        for c, m, s, p in zip(r["counts"], r["mc"], r["mc_se"], r["closed_form"]):
            lines.append(f"| {r['d']} | {tuple(c)} | {m:.3g} ± {s:.2g} | {p / m:.2f} |")
    lines += ["", "## Three levels of n/10 each, independent sets: closed form / Monte-Carlo", "",
              "| d | pool error | fresh error (MC s.e.) |", "|---|---|---|"]
    for r in results:
        c = r["chained_independent"]
        lines.append(f"| {r['d']} | {c['pool_ratio']:.2f} | {c['fresh_ratio']:.2f} "
                     f"({c['mc_fresh_se']:.0%}) |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from ntk_mlft._io import write_text_atomic

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--trials", type=int, default=200)
    p.add_argument("--out", default="analysis/results")
    args = p.parse_args(argv)
    t0 = time.time()
    results = run(args.n, args.trials)
    meta = {"n": args.n, "trials": args.trials, "seconds": time.time() - t0,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "load": [round(v, 2) for v in os.getloadavg()]}
    os.makedirs(args.out, exist_ok=True)
    write_text_atomic(os.path.join(args.out, "closed_form_limits.json"),
                      json.dumps({"meta": meta, "results": results}, indent=1))
    write_text_atomic(os.path.join(args.out, "closed_form_limits.md"), markdown(results, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
