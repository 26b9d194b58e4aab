"""CurveBall vs tuned first-order methods: iterations to tolerance on the paper's toy problems,
and steps and wall time to the kernel-regression interpolant on an NTK-regime MSE problem.

Toy problems (Henriques et al., ICCV 2019, arXiv 1805.08095; the authors' mcnToyOptim set-up):
- noisy Rosenbrock in least-squares form: residuals r(w; ε) = [10 ε (v − u²), 1 − u], w = (u, v),
  loss Σ r², ε ~ U[0, 1] drawn afresh every step, start (−0.25, −0.25) + U[−½, ½]². Success: the
  noise-free loss (ε = 1) below 1e-4 within 5000 steps.
- degenerate 2-layer linear net ŷ = W₂W₁x, x ∈ R⁶ ~ N(0, I), 1000 samples, y = A x with
  A = diag(linspace(1, 1e-5, 10))·U[0,1]^{10×6}, W₁ ~ 2/16·N(0,1), W₂ ~ 1/10·N(0,1); loss = mean
  over samples of Σ_k (ŷ_k − y_k)², full batch; the optimum is 0. The row of A scaled by 1e-5
  carries a loss of ~2e-10, so success is the loss below 1e-12 within 5000 steps: a run must
  resolve the degenerate direction (with 1e-4 it never has to).
SGD + momentum 0.9 and Adam (optax) run at every learning rate of a log grid and are reported at
the best one (most successes, then fewest median iterations, then lowest final loss); CurveBall
runs untuned at λ₀ = 1 (the MATLAB default). Iterations are counted, not timed: a CurveBall
iteration costs about two gradient evaluations (two jvps and one vjp).

NTK regime: mlp-relu-3 (NTK parameterisation, width 512) on elliptic-rough finest-level data,
centred (f − f₀), plain MSE (no ridge). Target: the training loss at most ``1e-6`` times its
initial value, i.e. the net interpolates — it is then at the empirical-NTK interpolant, whose test
predictions are reported relative to analytic-NTK kernel regression (the finite-width gap) and
between the two methods. CurveBall uses fit's default λ₀ = 0.05 λ_max(GN); gradient descent runs
at every η = c · 2/λ_max(GN) for c in ``GD_FRACTIONS`` of the stability limit and is reported at
the best c. Both get λ_max from the same power iteration (its time is reported once); each
method's steps and wall time to the target are measured after a compile-only warm-up, stopping
at the first chunk boundary (10 steps for CurveBall, 50 for GD) where the target is met; the
cost of one step of each is also timed interleaved (medians of 50-step runs), which is the
ratio to trust on a loaded machine.

Ridge sizing (``--ridge-sizing WIDTHxN ...``, off by default; for sizing validation runs):
CurveBall exactly as ``training.fit`` runs it with the proximal ridge λ = 0.1 · mean NTK diagonal
(centred mlp-relu-3, elliptic-rough finest level, 100 test inputs), ``SIZING_STEPS`` steps; the
last iterate is the reference (its own distance to the converged point is far below the
thresholds). Reports the steps after which the test predictions stay within relative MSE 1e-3,
1e-4, 1e-6 of it, and where fit's stopping rule with chunk 20 would stop for several rtol.

Usage: ``python benchmarks/curveball.py [--out DIR] [--seed S] [--repeats R] [--quick]
[--ridge-sizing 512x200 ...] [--json]`` (writes ``DIR/curveball.json``; prints a markdown table,
or the JSON with ``--json``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

MAX_STEPS = 5000
TOL_ROSENBROCK = 1e-4
TOL_LINEAR = 1e-12
NTK_RELATIVE_TOL = 1e-6
GD_FRACTIONS = (0.5, 0.7, 0.9, 0.95, 0.99)
SIZING_STEPS = 400


def _rosenbrock_runs(method, lr, seeds, max_steps):
    import jax
    import jax.numpy as jnp
    import optax

    from ntk_mlft.optim import curveball

    def resid(w, eps):
        return jnp.stack([10.0 * eps * (w[1] - w[0] ** 2), 1.0 - w[0]])

    def sq(y, t):
        return jnp.sum((y - t) ** 2)

    if method == "curveball":
        init, update = curveball(resid, sq, lambda_init=1.0)

        def step(w, s, eps):
            w, s, _ = update(w, s, (eps, jnp.zeros(2)))
            return w, s
    else:
        tx = optax.sgd(lr, momentum=0.9) if method == "sgd" else optax.adam(lr)
        init = tx.init

        def step(w, s, eps):
            g = jax.grad(lambda w: sq(resid(w, eps), 0.0))(w)
            upd, s = tx.update(g, s, w)
            return optax.apply_updates(w, upd), s

    @jax.jit
    def run(key):
        k0, k1 = jax.random.split(key)
        w = jnp.array([-0.25, -0.25]) + (jax.random.uniform(k0, (2,)) - 0.5)
        eps_all = jax.random.uniform(k1, (max_steps,))

        def body(carry, eps):
            w, s = carry
            w, s = step(w, s, eps)
            return (w, s), sq(resid(w, 1.0), 0.0)
        return jax.lax.scan(body, (w, init(w)), eps_all)[1]

    return [np.asarray(run(jax.random.key(int(sd)))) for sd in seeds]


def _linear_runs(method, lr, seeds, max_steps):
    import jax
    import jax.numpy as jnp
    import optax

    from ntk_mlft.optim import curveball

    def model(p, x):
        return x @ p["w1"] @ p["w2"]

    def loss(y, t):
        return jnp.mean(jnp.sum((y - t) ** 2, axis=1))

    out = []
    for sd in seeds:
        rng = np.random.default_rng(int(sd))
        x = rng.normal(size=(1000, 6))
        a = np.linspace(1.0, 1e-5, 10)[:, None] * rng.uniform(size=(10, 6))
        xj, yj = jnp.asarray(x), jnp.asarray(x @ a.T)
        p = {"w1": jnp.asarray(2.0 / 16 * rng.normal(size=(6, 10))),
             "w2": jnp.asarray(1.0 / 10 * rng.normal(size=(10, 10)))}
        if method == "curveball":
            init, update = curveball(model, loss, lambda_init=1.0)

            def step(p, s):
                p, s, _ = update(p, s, (xj, yj))
                return p, s
        else:
            tx = optax.sgd(lr, momentum=0.9) if method == "sgd" else optax.adam(lr)
            init = tx.init

            def step(p, s):
                g = jax.grad(lambda p: loss(model(p, xj), yj))(p)
                upd, s = tx.update(g, s, p)
                return optax.apply_updates(p, upd), s

        @jax.jit
        def run(p):
            def body(carry, _):
                p, s = step(*carry)
                return (p, s), loss(model(p, xj), yj)
            return jax.lax.scan(body, (p, init(p)), None, length=max_steps)[1]
        out.append(np.asarray(run(p)))
    return out


def _summary(curves, tol):
    """Iterations until the loss is first below ``tol`` (None: never) and their median."""
    iters = [int(np.argmax(c < tol)) + 1 if np.any(c < tol) else None for c in curves]
    ok = [i for i in iters if i is not None]
    finals = [float(c[-1]) if np.isfinite(c[-1]) else float("inf") for c in curves]
    return {"iterations_to_tol": iters,
            "median_iterations": float(np.median(ok)) if len(ok) == len(iters) else None,
            "successes": len(ok), "runs": len(iters), "final_loss_median": float(np.median(finals))}


def _toy(name, runner, seeds, lrs, tol, max_steps):
    res = {"curveball": {"learning_rate": None, **_summary(runner("curveball", None, seeds, max_steps), tol)}}
    for method in ("sgd", "adam"):
        best = None
        for lr in lrs:
            s = {"learning_rate": lr, **_summary(runner(method, lr, seeds, max_steps), tol)}
            key = (-s["successes"], s["median_iterations"] or np.inf, s["final_loss_median"])
            if best is None or key < best[0]:
                best = (key, s)
        res[method] = {**best[1], "grid": lrs}
    return {"problem": name, "tolerance": tol, "max_steps": max_steps, "methods": res}


def _ntk(seed, width, n_train, n_test=50):
    import jax
    import jax.numpy as jnp

    from ntk_mlft.architectures import get_architecture
    from ntk_mlft.problems import generate, get_problem
    from ntk_mlft.training import FitOptions, centered, fit, max_ntk_eigenvalue, relative_mse

    prob = get_problem("elliptic-rough")
    data = generate(prob, [1] * (prob.levels - 1) + [n_train + n_test], seed=seed)  # coarse levels unused
    x, y = data.inputs[-1][:n_train], data.outputs[-1][:n_train]
    xt = data.inputs[-1][n_train:]
    arch = get_architecture("mlp-relu-3", output_dim=y.shape[1], width=width)
    kreg = (np.asarray(arch.kernel_fn(xt, x, get="ntk"))
            @ np.linalg.solve(np.asarray(arch.kernel_fn(x, x, get="ntk")), y))
    _, p0 = arch.init_fn(jax.random.key(seed), (-1, x.shape[1]))
    f0 = np.asarray(arch.apply_fn(p0, jnp.asarray(x)))
    pred = jax.jit(centered(arch.apply_fn))
    nk = y.size
    t0 = time.perf_counter()
    lam_max = max_ntk_eigenvalue(arch.apply_fn, p0, jnp.asarray(x), rtol=1e-6)
    t_lam = time.perf_counter() - t0
    loss0 = float(np.mean(y ** 2))                 # the centred net starts at f = 0
    atol = NTK_RELATIVE_TOL * loss0

    def run(method, chunk, max_steps, **kw):
        fit(arch.apply_fn, p0, x, y, FitOptions(optimizer=method, max_steps=chunk, chunk=chunk, rtol=0.0, **kw),
            offset=f0)                             # warm-up: compile this chunk size
        r = fit(arch.apply_fn, p0, x, y,
                FitOptions(optimizer=method, max_steps=max_steps, chunk=chunk, rtol=0.0, atol=atol, **kw), offset=f0)
        hit = np.flatnonzero(r.losses <= atol)
        return r, {"steps_to_tol": int(hit[0]) if hit.size else None, "steps_run": r.steps,
                   "wall_seconds_to_tol": r.wall_seconds if hit.size else None,
                   "seconds_per_step": r.wall_seconds / max(r.steps, 1),
                   "final_relative_loss": float(r.losses[-1] / loss0)}

    out = {"problem": "elliptic-rough (finest level)", "architecture": "mlp-relu-3", "width": width,
           "n_train": n_train, "n_test": n_test, "relative_loss_tol": NTK_RELATIVE_TOL,
           "lambda_max_ntk": lam_max, "lambda_max_seconds": t_lam, "methods": {}}
    finals = {}
    cb_lam = 0.05 * 2.0 * lam_max / nk
    r, s = run("curveball", 10, 2000, curveball_lambda=cb_lam)
    finals["curveball"] = np.asarray(pred(r.params, p0, jnp.asarray(xt)))
    out["methods"]["curveball"] = {"lambda_init": cb_lam, **s}
    grid = []
    for c in GD_FRACTIONS:
        r, s = run("gd", 50, 20000, learning_rate=c * nk / lam_max)
        grid.append({"fraction_of_stability_limit": c, "learning_rate": c * nk / lam_max, **s,
                     "_final": np.asarray(pred(r.params, p0, jnp.asarray(xt)))})
    reached = [g for g in grid if g["steps_to_tol"] is not None]
    best = min(reached or grid, key=lambda g: (g["steps_to_tol"] or np.inf, g["final_relative_loss"]))
    finals["gd"] = best.pop("_final")
    out["methods"]["gd"] = {**best, "grid": [{k: v for k, v in g.items() if k != "_final"} for g in grid]}
    for m, f in finals.items():
        out["methods"][m]["test_gap_to_analytic_kernel_regression"] = relative_mse(f, kreg)
    out["test_gap_curveball_vs_gd"] = relative_mse(finals["curveball"], finals["gd"])
    # cost of one step, interleaved (5 rounds of 50 steps each, chunk 10 for both; medians), so
    # that load changes on a shared machine hit both methods alike
    settings = {"curveball": {"curveball_lambda": cb_lam}, "gd": {"learning_rate": best["learning_rate"]}}
    per_step = {m: [] for m in settings}
    for _ in range(6):                                   # the first round compiles chunk 10 for gd
        for m, kw in settings.items():
            r = fit(arch.apply_fn, p0, x, y, FitOptions(optimizer=m, max_steps=50, chunk=10, rtol=0.0, **kw),
                    offset=f0)
            per_step[m].append(r.wall_seconds / r.steps)
    med = {m: float(np.median(v[1:])) for m, v in per_step.items()}
    out["seconds_per_step_interleaved"] = med
    out["step_cost_curveball_over_gd"] = med["curveball"] / med["gd"]
    cb, gd = out["methods"]["curveball"], out["methods"]["gd"]
    if cb["steps_to_tol"] and gd["steps_to_tol"]:
        out["gd_over_curveball_steps"] = gd["steps_to_tol"] / cb["steps_to_tol"]
        out["gd_over_curveball_wall"] = gd["wall_seconds_to_tol"] / cb["wall_seconds_to_tol"]
    return out


def _ridge_sizing(seed, width, n_train, n_test=100, chunk=10):
    import jax
    import jax.numpy as jnp

    from ntk_mlft.architectures import get_architecture
    from ntk_mlft.optim import curveball
    from ntk_mlft.problems import generate, get_problem
    from ntk_mlft.training import max_ntk_eigenvalue, relative_mse

    prob = get_problem("elliptic-rough")
    data = generate(prob, [1] * (prob.levels - 1) + [n_train + n_test], seed=seed)
    x, y = jnp.asarray(data.inputs[-1][:n_train]), jnp.asarray(data.outputs[-1][:n_train])
    xt = jnp.asarray(data.inputs[-1][n_train:])
    arch = get_architecture("mlp-relu-3", output_dim=y.shape[1], width=width)
    ridge = 0.1 * float(np.mean(np.diag(np.asarray(arch.kernel_fn(np.asarray(x), None, get="ntk")))))
    _, p0 = arch.init_fn(jax.random.key(seed), (-1, x.shape[1]))
    f0, f0t = arch.apply_fn(p0, x), arch.apply_fn(p0, xt)
    t0 = time.perf_counter()
    lam_max = max_ntk_eigenvalue(arch.apply_fn, p0, x, rtol=1e-3)          # as fit does
    t_lam = time.perf_counter() - t0
    nk = y.size
    init, update = curveball(arch.apply_fn, "mse", lambda_init=0.05 * 2 * (lam_max + ridge) / nk,
                             l2=2 * ridge / nk)

    @jax.jit
    def run(p, s):
        def body(c, _):
            p, s, info = update(*c, (x, y + f0))
            return (p, s), info.loss
        (p, s), losses = jax.lax.scan(body, (p, s), None, length=chunk)
        return p, s, losses, arch.apply_fn(p, xt) - f0t

    p, s = p0, init(p0)
    jax.block_until_ready(run(p, s))                                     # compile
    preds, losses = [], []
    t0 = time.perf_counter()
    for _ in range(SIZING_STEPS // chunk):
        p, s, loss, pr = run(p, s)
        losses.extend(np.asarray(loss).tolist())
        preds.append(np.asarray(pr))
    wall = time.perf_counter() - t0
    dist = [relative_mse(q, preds[-1]) for q in preds]                  # after 10, 20, ... steps

    def settled(th):
        k = next((i for i in range(len(dist) - 1) if max(dist[i:-1]) < th), None)
        return None if k is None else (k + 1) * chunk

    rule = {}
    for rt in (1e-3, 1e-4, 1e-5, 1e-6):
        k = next((k for k in range(20, len(losses), 20)
                  if abs(losses[k - 20] - losses[k]) <= rt * losses[k - 20]), None)
        rule[f"{rt:g}"] = None if k is None else {"step": k, "relmse_to_reference": dist[k // chunk - 1]}
    return {"width": width, "n_train": n_train, "ridge": ridge, "lambda_max_ntk": lam_max,
            "lambda_max_seconds": t_lam, "seconds_per_step": wall / SIZING_STEPS,
            "steps_to_relmse": {f"{th:g}": settled(th) for th in (1e-3, 1e-4, 1e-6)},
            "fit_rule_chunk20": rule, "last_chunk_relmse": dist[-2]}


def _table(result):
    lines = ["| problem | method | lr | successes | median iterations | final loss (median) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for key in ("rosenbrock", "linear_net"):
        res = result[key]
        for m, s in res["methods"].items():
            lr = "-" if s["learning_rate"] is None else f"{s['learning_rate']:.3g}"
            med = "-" if s["median_iterations"] is None else f"{s['median_iterations']:.0f}"
            lines.append(f"| {key} (tol {res['tolerance']:g}) | {m} | {lr} | {s['successes']}/{s['runs']} "
                         f"| {med} | {s['final_loss_median']:.3g} |")
    ntk = result.get("ntk_regime")
    if ntk:
        lines += ["", f"NTK regime: {ntk['architecture']} width {ntk['width']}, N = {ntk['n_train']}, target "
                  f"training loss <= {ntk['relative_loss_tol']:g} x initial; lambda_max estimate "
                  f"{ntk['lambda_max_seconds']:.1f} s (not included below); one CurveBall step costs "
                  f"{ntk['step_cost_curveball_over_gd']:.2f} GD steps (interleaved timing)", "",
                  "| method | setting | steps to target | wall s to target | s/step "
                  "| test gap to analytic KRR |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for m, s in ntk["methods"].items():
            setting = (f"lambda0 {s['lambda_init']:.3g}" if m == "curveball"
                       else f"eta = {s['fraction_of_stability_limit']} x 2/lambda_max")
            wall = "-" if s["wall_seconds_to_tol"] is None else f"{s['wall_seconds_to_tol']:.1f}"
            lines.append(f"| {m} | {setting} | {s['steps_to_tol']} | {wall} | {s['seconds_per_step']:.3f} "
                         f"| {s['test_gap_to_analytic_kernel_regression']:.3g} |")
    if result.get("ridge_sizing"):
        lines += ["", f"Ridge sizing (CurveBall, ridge 0.1 x mean NTK diagonal, {SIZING_STEPS} steps):", "",
                  "| width | N | s/step | steps to relMSE 1e-3 / 1e-4 / 1e-6 | fit rule (chunk 20) stops, "
                  "rtol 1e-3 / 1e-4 / 1e-5 |", "| --- | --- | --- | --- | --- |"]
        for r in result["ridge_sizing"]:
            hits = " / ".join(str(r["steps_to_relmse"][k]) for k in ("0.001", "0.0001", "1e-06"))
            stops = " / ".join(str(None if r["fit_rule_chunk20"][k] is None else r["fit_rule_chunk20"][k]["step"])
                               for k in ("0.001", "0.0001", "1e-05"))
            lines.append(f"| {r['width']} | {r['n_train']} | {r['seconds_per_step']:.2f} | {hits} | {stops} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join("results", "benchmarks"),
                    help="output folder for curveball.json")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=5, help="runs per method (noise/jitter/data seeds)")
    ap.add_argument("--width", type=int, default=512, help="width of the NTK-regime MLP")
    ap.add_argument("--n-train", type=int, default=64)
    ap.add_argument("--skip-ntk", action="store_true")
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 repeats, 500 steps, small NTK problem")
    ap.add_argument("--ridge-sizing", nargs="*", default=[], metavar="WIDTHxN",
                    help="CurveBall steps to the kernel-ridge limit for these width x N (e.g. 512x200)")
    ap.add_argument("--json", action="store_true", help="print the JSON result instead of the table")
    args = ap.parse_args(argv)
    import jax
    jax.config.update("jax_enable_x64", True)
    from ntk_mlft._progress import set_progress_enabled
    set_progress_enabled(False)
    repeats, max_steps = (2, 500) if args.quick else (args.repeats, MAX_STEPS)
    seeds = [args.seed + i for i in range(repeats)]
    lrs = [float(v) for v in np.logspace(-5, 0, 11)]
    t0 = time.perf_counter()
    result = {
        "benchmark": "curveball", "seed": args.seed, "repeats": repeats, "quick": args.quick,
        "rosenbrock": _toy("noisy Rosenbrock (least squares, noise U[0,1], jitter 1)",
                           _rosenbrock_runs, seeds, lrs, TOL_ROSENBROCK, max_steps),
        "linear_net": _toy("degenerate 2-layer linear net (Rahimi-Recht)", _linear_runs, seeds, lrs,
                           TOL_LINEAR, max_steps),
    }
    if not args.skip_ntk:
        width, n_train = (64, 16) if args.quick else (args.width, args.n_train)
        result["ntk_regime"] = _ntk(args.seed, width, n_train)
    sizes = []
    for spec in args.ridge_sizing:
        try:
            sizes.append(tuple(int(v) for v in spec.lower().split("x")))
        except ValueError:
            ap.error(f"--ridge-sizing: expected WIDTHxN such as 512x200; got {spec!r}")
        if len(sizes[-1]) != 2:
            ap.error(f"--ridge-sizing: expected WIDTHxN such as 512x200; got {spec!r}")
    if sizes:
        result["ridge_sizing"] = [_ridge_sizing(args.seed, w, n) for w, n in sizes]
    result["wall_seconds"] = time.perf_counter() - t0
    from ntk_mlft._io import write_json_atomic
    os.makedirs(args.out, exist_ok=True)
    write_json_atomic(os.path.join(args.out, "curveball.json"), result)
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
    else:
        print(_table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
