"""Accuracy of the MLFT error estimators against the Monte-Carlo reference, every built-in problem.

The quantity is the fresh-input (held-out) error: relative MSE at pool points outside every
level's training set (docs/design.md; ``MonteCarloResult.fresh_mean``), what the estimators predict
by default. For a synthetic 3-level target and every built-in problem of ``ntk_mlft.problems``
(paired data on a pool of ``--pool`` inputs, ``generate(..., paired=True)``), with the NTKs of
mlp-relu-3 and cnn-relu-2 (inputs flattened to (n, length, 1); darcy-2d's 32 x 32 field is a
1,024-long signal for the CNN) and ridge 1e-3 x mean diagonal:

- Monte-Carlo (``montecarlo_error``, ``--trials`` draws, standard errors reported) with the
  levels' sample sets disjoint (what inputs drawn from a continuous distribution give: the
  reference) and independent (the MC default; sets of different levels may share points);
- the spectral closed form on the pool, diagonal-normalised (the default) and plain
  (``normalize="none"``), fresh-input target; relative deviations from MC. Its pool error
  (``target="pool"``, training points included) against the whole-pool MC is kept as a
  secondary column;
- the practical pilot estimator on the same pool: ``--pilot`` of the pool's points labelled at
  every level, the rest used unlabeled (``PilotEstimator``), point estimate, 90% bootstrap
  interval and whether it covers MC;
- per-level learning curves E_l(N) (level difference d_l regressed alone, relative to mean
  ||u_L||^2), fresh-input spectral vs MC, for the figure (mlp-relu-3).

Allocations: single-level N = 20, 60, 150, two multi-level ones within the per-level cap
``studies.error_model.MAX_COVERAGE`` x pool (every level at the cap in one of them) and one beyond it
(marked; the documented accuracy ends at the cap). Each case records ``diag_cv``, the
coefficient of variation of K(x, x) over the pool. ``darcy-2d`` runs with reduced settings
(``REDUCED``: 3 levels of 16^2..64^2 cells, 32 x 32 input, 16 x 16 output) so that its paired
data is generated in seconds. Writes ``estimator_accuracy.json``, ``.md`` (table and generated
commentary) and ``.png`` to ``--out``.

Usage: ``python analysis/estimator_accuracy.py [--out DIR] [--seed S] [--pool N] [--trials T]
[--pilot P] [--problems NAME ...] [--cache DIR] [--json]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

NS = np.array([20, 40, 80, 160])
ARCHS = ("mlp-relu-3", "cnn-relu-2")
REDUCED = {"darcy-2d": {"levels": 3, "n_input": 32, "n_coarse": 16, "n_output": 16}}


def _synthetic(rng, n):
    x = rng.normal(size=(n, 16, 1))
    z = x[:, :, 0]
    base = np.sin(4 * z[:, 0]) * np.cos(2 * z[:, 4]) + np.sin(1.5 * z.mean(1) + z[:, 0])
    u = np.stack([base + 0.3 * np.cos(2 * z[:, 1]), base + 0.1 * np.sin(3 * z[:, 5]), base])
    return x, u[:, :, None]


def _allocations(n_levels, pool):
    """Rows (K, L) and whether each stays within the documented range (cap or single level)."""
    from ntk_mlft.studies.error_model import MAX_COVERAGE

    cap = int(MAX_COVERAGE * pool)
    allocs = []
    for nl in (20, 60, 150):
        single = np.zeros(n_levels, int)
        single[-1] = nl
        allocs.append(single)
    allocs.append(np.array([max(cap // 2 ** i, 10) for i in range(n_levels)]))
    allocs.append(np.array([cap] * (n_levels - 1) + [cap // 4]))
    allocs.append(np.array([int(pool / 2 / 3 ** i) for i in range(n_levels)]).clip(20))
    allocs = np.array(allocs)
    within = (allocs.max(1) <= cap) | (allocs[:, :-1].max(1) == 0)
    return allocs, within


def _pilot(k, u, ridge, n_pilot, seed, allocs):
    from ntk_mlft.estimators import PilotEstimator

    perm = np.random.default_rng(seed + 17).permutation(k.shape[0])
    p, un = perm[:n_pilot], perm[n_pilot:]
    est = PilotEstimator.from_kernels(k[np.ix_(un, un)], k[np.ix_(p, un)], u[:, p],
                                      k_pp=k[np.ix_(p, p)], ridge=ridge, n_boot=30, seed=seed)
    return est.error_with_uncertainty(allocs, level=0.9)


def _one_kernel(arch, x, u, allocs, trials, seed, n_pilot, curves):
    from ntk_mlft.architectures import get_architecture
    from ntk_mlft.estimators import SpectralEstimator, montecarlo_error

    n, n_levels = x.shape[0], u.shape[0]
    k = np.asarray(get_architecture(arch, output_dim=1).kernel_fn(x, None, get="ntk"), dtype=np.float64)
    ridge = 1e-3 * np.trace(k) / n
    ind = montecarlo_error(k, u, allocs, ridge=ridge, n_trials=trials, seed=seed)
    dis = montecarlo_error(k, u, allocs, ridge=ridge, n_trials=trials, seed=seed + 1, sets="disjoint")
    est = SpectralEstimator.from_kernel(k, u, ridge=ridge)
    plain = SpectralEstimator.from_kernel(k, u, ridge=ridge, normalize="none").error_many(allocs)
    pil = _pilot(k, u, ridge, n_pilot, seed, allocs)
    diag = np.diag(k)
    out = {"arch": arch, "mc": dis.fresh_mean.tolist(), "mc_stderr": dis.fresh_stderr.tolist(),
           "mc_independent": ind.fresh_mean.tolist(), "mc_independent_stderr": ind.fresh_stderr.tolist(),
           "mc_pool": ind.mean.tolist(), "mc_pool_stderr": ind.stderr.tolist(),
           "spectral": est.error_many(allocs).tolist(), "spectral_plain": plain.tolist(),
           "spectral_pool": est.error_many(allocs, target="pool").tolist(),
           "pilot": pil["error"].tolist(), "pilot_lower": pil["lower"].tolist(),
           "pilot_upper": pil["upper"].tolist(), "diag_cv": float(diag.std() / diag.mean())}
    for key in ("spectral", "spectral_plain", "pilot"):
        out[f"rel_{key}"] = (np.array(out[key]) / dis.fresh_mean - 1).tolist()
    out["rel_spectral_independent"] = (est.error_many(allocs) / ind.fresh_mean - 1).tolist()
    out["rel_spectral_pool"] = (np.array(out["spectral_pool"]) / ind.mean - 1).tolist()
    out["pilot_covers"] = ((pil["lower"] <= dis.fresh_mean) & (dis.fresh_mean <= pil["upper"])).tolist()
    if curves:
        u2 = u.reshape(n_levels, n, -1)
        d = np.concatenate([u2[:1], np.diff(u2, axis=0)])
        norm_l = np.mean(np.sum(u2[-1] ** 2, -1))
        out["level_curves"] = []
        for lvl in range(n_levels):
            scale = np.mean(np.sum(d[lvl] ** 2, -1)) / norm_l
            if scale == 0:
                continue
            mcl = montecarlo_error(k, d[lvl][None], NS[:, None], ridge=ridge, n_trials=trials,
                                   seed=seed + lvl + 1)
            out["level_curves"].append({"level": lvl + 1, "ns": NS.tolist(),
                                        "mc": (mcl.fresh_mean * scale).tolist(),
                                        "mc_stderr": (mcl.fresh_stderr * scale).tolist(),
                                        "spectral": est.level_curve(lvl + 1, NS).tolist()})
    return out


def _case(name, x, u, trials, seed, n_pilot):
    allocs, within = _allocations(u.shape[0], x.shape[0])
    kernels = [_one_kernel(a, x, u, allocs, trials, seed, n_pilot, curves=(a == ARCHS[0])) for a in ARCHS]
    return {"case": name, "pool": int(x.shape[0]), "n_levels": int(u.shape[0]), "n_pilot": n_pilot,
            "counts": allocs.tolist(), "within_cap": within.tolist(), "kernels": kernels}


def run(seed: int, pool: int, trials: int, n_pilot: int, problems: list[str] | None = None,
        cache: str | None = None) -> list[dict]:
    import jax

    jax.config.update("jax_enable_x64", True)
    rng = np.random.default_rng(seed)
    results = [_case("synthetic", *_synthetic(rng, pool), trials, seed, n_pilot)]
    print("done: synthetic", file=sys.stderr, flush=True)
    from ntk_mlft.problems import available_problems, generate, get_problem

    for name in (available_problems() if problems is None else problems):
        problem = get_problem(name, **REDUCED.get(name, {}))
        ds = generate(problem, [pool] * problem.n_levels, seed=seed, paired=True, cache_dir=cache)
        x = np.asarray(ds.inputs[-1], dtype=np.float64).reshape(pool, -1, 1)
        u = np.stack([np.asarray(o, dtype=np.float64) for o in ds.outputs])
        results.append(_case(name, x, u, trials, seed, n_pilot))
        results[-1]["params"] = problem.params
        print(f"done: {name}", file=sys.stderr, flush=True)
    return results


def table(results: list[dict]) -> str:
    lines = ["| case | kernel (diag CV) | counts | MC fresh, disjoint ± s.e. | spectral | spectral vs MC independent "
             "| plain | pilot [90% interval] | pool: spectral vs MC |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        for kr in r["kernels"]:
            for i, c in enumerate(r["counts"]):
                cover = "" if kr["pilot_covers"][i] else " (misses)"
                mark = "" if r["within_cap"][i] else " (beyond cap)"
                lines.append(
                    f"| {r['case']} | {kr['arch']} ({kr['diag_cv']:.2f}) | {tuple(c)}{mark} | "
                    f"{kr['mc'][i]:.4f} ± {kr['mc_stderr'][i]:.4f} | {kr['rel_spectral'][i]:+.1%} | "
                    f"{kr['rel_spectral_independent'][i]:+.1%} | {kr['rel_spectral_plain'][i]:+.1%} | "
                    f"{kr['rel_pilot'][i]:+.1%} [{kr['pilot_lower'][i]:.4f}, {kr['pilot_upper'][i]:.4f}]{cover} | "
                    f"{kr['rel_spectral_pool'][i]:+.1%} |")
    return "\n".join(lines) + "\n"


def _worst(results, key, within=True):
    vals = [(abs(v), v, r["case"], kr["arch"], tuple(c)) for r in results for kr in r["kernels"]
            for v, c, w in zip(kr[key], r["counts"], r["within_cap"]) if w or not within]
    return max(vals)


def commentary(results: list[dict]) -> str:
    """Generated summary statistics plus the standing explanation of the known limits."""
    se = max(s / m for r in results for kr in r["kernels"] for s, m in zip(kr["mc_stderr"], kr["mc"]))
    lines = ["## Commentary", "",
             f"Monte-Carlo standard errors are at most {se:.1%} of the mean in this run. Relative deviations "
             "are (estimate / MC - 1) on fresh inputs (points outside every training set), MC with disjoint "
             "level sets unless the column says otherwise; 'spectral' is the default diagonal-normalised closed "
             "form, 'plain' the unnormalised one, 'pilot' the practical estimator from the pilot pairs alone; "
             "'pool' compares the closed form's whole-pool error (training points included) with the whole-pool "
             "MC. Statistics below are over the allocations within the cap (every level at most "
             "MAX_COVERAGE x pool, or single-level).", ""]
    for key, label in (("rel_spectral", "spectral vs MC disjoint"),
                       ("rel_spectral_independent", "spectral vs MC independent"),
                       ("rel_spectral_plain", "spectral (plain) vs MC disjoint"),
                       ("rel_pilot", "pilot vs MC disjoint"), ("rel_spectral_pool", "pool error, spectral vs MC")):
        outside = sorted({r["case"] for r in results for kr in r["kernels"]
                          if np.any(np.abs(np.array(kr[key])[np.array(r["within_cap"])]) > 0.10)})
        w = _worst(results, key)
        lines.append(f"- {label}: worst {w[1]:+.1%} ({w[2]}, {w[3]}, counts {w[4]}); cases with a deviation "
                     f"beyond 10%: {', '.join(outside) if outside else 'none'}.")
    beyond = _worst([{**r, "within_cap": [not v for v in r["within_cap"]]} for r in results], "rel_spectral")
    lines.append(f"- beyond the cap (last allocation of each case): spectral vs MC disjoint worst {beyond[1]:+.1%} "
                 f"({beyond[2]}, {beyond[3]}, counts {beyond[4]}).")
    covered = [c for r in results for kr in r["kernels"] for c, w in zip(kr["pilot_covers"], r["within_cap"]) if w]
    lines.append(f"- pilot 90% intervals cover MC in {sum(covered)} of {len(covered)} allocations within the cap.")
    gap = max(abs(a / b - 1) for r in results for kr in r["kernels"]
              for a, b, w in zip(kr["mc_independent"], kr["mc"], r["within_cap"]) if w)
    lines += ["",
              f"Independent vs disjoint level sets: the two MC fresh-input errors differ by up to {gap:.1%} within the "
              "cap. With independent sets a later level sees an earlier level's fitted values at the points they "
              "share; the closed form's fresh step models that scheme (``ntk_mlft.estimators.fresh``), and the "
              "per-level cap keeps both within the documented band.",
              "",
              "Why the fresh step: the closed form is evaluated on the pool's measure, so its raw output is the "
              "error averaged over all pool points, training points included. Those are fitted (exactly, without "
              "ridge), so the raw output falls below the fresh-input error by about the covered fraction of the "
              "pool, most where cheap coarse levels cover it ('pool' column vs the MC columns: the pool error is "
              "what the old estimator predicted). The fresh step removes the training atoms (leave-one-out "
              "identity, memberships independent across levels); its deviations track the pool error's, so it "
              "adds little error of its own.",
              "",
              "Why the normalisation: the learning-curve theory assumes concentrated feature norms; the "
              "ReLU NTKs scale with |x|^2 and K(x, x) varies over these pools (diag CV above). Regression "
              "with K equals regression with the constant-diagonal kernel on y / sqrt(omega) measured in the "
              "omega-weighted norm (``ntk_mlft.estimators.spectral``); the plain form ignores that.",
              "",
              "Known limits: helmholtz-oscillatory with the mlp-relu-3 NTK (homogeneous diagonal, CV 0.07, so "
              "normalisation changes nothing) is low at N >= 150, while the CNN NTK on the same data stays "
              "closer: its inputs lie on a 12-parameter family and its targets oscillate at wavenumber 80, outside "
              "the Gaussian-equivalence regime of the theory for the MLP kernel. The pilot estimator adds its "
              "sampling error (n_p pilot pairs, here a quarter of the pool) on top of the theory's: its 90% "
              "intervals are the honest uncertainty, and counts well above n_p rest on the even spreading of "
              "unresolved (tail) power."]
    return "\n".join(lines) + "\n"


def figure(results: list[dict]):
    """Row 1: per-level learning curves (mlp-relu-3), spectral vs MC. Row 2: every allocation and
    kernel, estimate vs MC (spectral; pilot with its 90% interval), the 10% band shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(results), figsize=(4 * len(results), 7.2), squeeze=False)
    for ax, r in zip(axes[0], results):
        for c in r["kernels"][0]["level_curves"]:
            line = ax.errorbar(c["ns"], c["mc"], yerr=c["mc_stderr"], fmt="o", label=f"MC d_{c['level']}")
            ax.plot(c["ns"], c["spectral"], "-", color=line[0].get_color(), label=f"spectral d_{c['level']}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(NS, [str(v) for v in NS])
        ax.minorticks_off()
        ax.set_xlabel("samples N (count)")
        ax.set_ylabel("fresh-input relative MSE E_l(N) (dimensionless)")
        ax.set_title(f"{r['case']} ({r['kernels'][0]['arch']})")
        ax.legend(fontsize=6)
    for ax, r in zip(axes[1], results):
        lo = min(min(kr["mc_pool"]) for kr in r["kernels"]) * 0.7
        hi = max(max(kr["mc"]) for kr in r["kernels"]) * 1.4
        grid = np.geomspace(lo, hi, 20)
        ax.fill_between(grid, 0.9 * grid, 1.1 * grid, color="0.9", label="MC +-10%")
        within = np.array(r["within_cap"])
        ax.plot(grid, grid, "k-", lw=0.8)
        for kr, marker in zip(r["kernels"], ("o", "s")):
            mc, pil = np.array(kr["mc"])[within], np.array(kr["pilot"])[within]
            ax.plot(mc, np.array(kr["spectral"])[within], marker, color="C0", ms=4, label=f"spectral, {kr['arch']}")
            ax.plot(kr["mc_pool"], kr["spectral_pool"], marker, color="0.6", ms=3, mfc="none",
                    label=f"pool error, {kr['arch']}")
            ax.errorbar(mc, pil, yerr=[pil - np.array(kr["pilot_lower"])[within],
                                       np.array(kr["pilot_upper"])[within] - pil],
                        fmt=marker, color="C3", ms=4, mfc="none", capsize=2, label=f"pilot, {kr['arch']}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("Monte-Carlo relative MSE (fresh inputs; grey: whole pool)")
        ax.set_ylabel("estimated relative MSE")
        ax.set_title(f"{r['case']}: estimate vs MC")
        ax.legend(fontsize=6)
    fig.suptitle("Spectral and pilot estimators vs Monte-Carlo (fresh-input error, within the cap)")
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("analysis", "results"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pool", type=int, default=400)
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--pilot", type=int, default=100, help="pilot pairs for the practical estimator")
    parser.add_argument("--problems", nargs="*", default=None, help="built-in problems to include (default: all)")
    parser.add_argument("--cache", default=None, help="folder for cached problem data")
    parser.add_argument("--json", action="store_true", help="print the JSON result")
    args = parser.parse_args(argv)
    from ntk_mlft._io import write_json_atomic, write_text_atomic

    results = run(args.seed, args.pool, args.trials, args.pilot, args.problems, args.cache)
    os.makedirs(args.out, exist_ok=True)
    write_json_atomic(os.path.join(args.out, "estimator_accuracy.json"), results)
    header = (f"# Estimator accuracy vs Monte-Carlo, fresh-input error (pool {args.pool}, {args.trials} MC trials, "
              f"pilot {args.pilot} pairs, seed {args.seed})\n\n")
    write_text_atomic(os.path.join(args.out, "estimator_accuracy.md"),
                      header + table(results) + "\n" + commentary(results))
    figure(results).savefig(os.path.join(args.out, "estimator_accuracy.png"), dpi=100)
    if args.json:
        json.dump(results, sys.stdout, indent=2)
    else:
        print(table(results))
        print(commentary(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
