"""CurveBall vs first-order baselines: iterations to tolerance on the paper's toy problems, and
steps to reach the kernel-regression interpolant on an NTK-regime MSE problem.

Problems (Henriques et al., ICCV 2019, arXiv 1805.08095, toy set-up of the authors' mcnToyOptim):
- noisy Rosenbrock in least-squares form: residuals r(w; ε) = [10 ε (v − u²), 1 − u], w = (u, v),
  loss Σ r², ε ~ U[0, 1]·noise_scale drawn afresh every step, start (−0.25, −0.25) + U[−½, ½]²·jitter.
  Success: the noise-free Rosenbrock loss (ε = 1) below 1e-4 within 5000 steps.
- degenerate 2-layer linear net ŷ = W₂W₁x, x ∈ R⁶ ~ N(0, I), 1000 samples, y = A x with
  A = diag(linspace(1, 1e-5, 10))·U[0,1]^{10×6}, W₁ ~ 2/(h + 6)·N(0,1), W₂ ~ 1/h·N(0,1), h = 10;
  loss = mean over samples of Σ_k (ŷ_k − y_k)², full batch. Success: loss below 1e-4 in 5000 steps.
Baselines SGD + momentum 0.9 and Adam (optax), each at the best learning rate of a log grid
(best = fewest median iterations, then lowest final loss). CurveBall: λ₀ = 1 (MATLAB default), no
tuning. NTK problem: mlp-relu-3 (NTK parameterisation) on elliptic-rough level-3 data, centred,
steps until the training loss falls below 1e-6 × its initial value for CurveBall (λ₀ relative to the
curvature, see ``ntk_mlft.training.fit``) and gradient descent at η = 0.5·2/λ_max, plus the relative
gap of each trained net's test predictions to analytic-NTK kernel regression.

Usage: ``python benchmarks/curveball.py [--out DIR] [--seed S] [--repeats R] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

TOL = 1e-4
MAX_STEPS = 5000


def _rosenbrock_runs(method, lr, seeds, noise_scale, jitter):
    import jax
    import jax.numpy as jnp
    import optax

    from ntk_mlft.optim import curveball

    def resid(w, eps):
        return jnp.stack([10.0 * eps * (w[1] - w[0] ** 2), 1.0 - w[0]])

    def sq(y, t):
        return jnp.sum((y - t) ** 2)

    def clean_loss(w):
        return sq(resid(w, 1.0), 0.0)

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
        w = jnp.array([-0.25, -0.25]) + (jax.random.uniform(k0, (2,)) - 0.5) * jitter
        eps_all = jax.random.uniform(k1, (MAX_STEPS,)) * noise_scale

        def body(carry, eps):
            w, s = carry
            w, s = step(w, s, eps)
            return (w, s), clean_loss(w)
        _, losses = jax.lax.scan(body, (w, init(w)), eps_all)
        return losses

    return [np.asarray(run(jax.random.key(int(sd)))) for sd in seeds]


def _linear_runs(method, lr, seeds):
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
        y = x @ a.T
        p = {"w1": jnp.asarray(2.0 / 16 * rng.normal(size=(6, 10))),
             "w2": jnp.asarray(1.0 / 10 * rng.normal(size=(10, 10)))}
        xj, yj = jnp.asarray(x), jnp.asarray(y)
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
                p, s = carry
                p, s = step(p, s)
                return (p, s), loss(model(p, xj), yj)
            return jax.lax.scan(body, (p, init(p)), None, length=MAX_STEPS)[1]
        out.append(np.asarray(run(p)))
    return out


def _summary(curves):
    iters = [int(np.argmax(c < TOL)) + 1 if np.any(c < TOL) else None for c in curves]
    ok = [i for i in iters if i is not None]
    return {"iterations_to_tol": iters, "median_iterations": float(np.median(ok)) if len(ok) == len(iters) else None,
            "successes": len(ok), "runs": len(iters),
            "final_loss_median": float(np.median([c[-1] for c in curves]))}


def _toy(name, runner, seeds, lrs):
    res = {"curveball": {"learning_rate": None, **_summary(runner("curveball", None, seeds))}}
    for method in ("sgd", "adam"):
        best = None
        for lr in lrs:
            s = {"learning_rate": lr, **_summary(runner(method, lr, seeds))}
            key = (-s["successes"], s["median_iterations"] or np.inf, s["final_loss_median"]
                   if np.isfinite(s["final_loss_median"]) else np.inf)
            if best is None or key < best[0]:
                best = (key, s)
        res[method] = {**best[1], "grid": lrs}
    return {"problem": name, "tolerance": TOL, "max_steps": MAX_STEPS, "methods": res}


def _ntk(seed, width, n_train):
    import jax
    import jax.numpy as jnp

    from ntk_mlft.architectures import get_architecture
    from ntk_mlft.problems import generate, get_problem
    from ntk_mlft.training import centered, fit, relative_mse

    prob = get_problem("elliptic-rough", levels=3)
    data = generate(prob, [1, 1, n_train + 50], seed=seed)  # levels 1-2 unused
    x, y = data.inputs[2][:n_train], data.outputs[2][:n_train]
    xt = data.inputs[2][n_train:]
    arch = get_architecture("mlp-relu-3", output_dim=y.shape[1], width=width)
    kreg = (np.asarray(arch.kernel_fn(xt, x, get="ntk"))
            @ np.linalg.solve(np.asarray(arch.kernel_fn(x, x, get="ntk")), y))
    _, p0 = arch.init_fn(jax.random.key(seed), (-1, x.shape[1]))
    f0 = np.asarray(arch.apply_fn(p0, jnp.asarray(x)))
    pred = jax.jit(centered(arch.apply_fn))
    out = {"problem": "elliptic-rough (level 3)", "architecture": "mlp-relu-3", "width": width,
           "n_train": n_train, "relative_loss_tol": 1e-6, "methods": {}}
    for method, steps in (("curveball", 2000), ("gd", 20000)):
        t0 = time.perf_counter()
        r = fit(arch.apply_fn, p0, x, y, offset=f0, optimizer=method, max_steps=steps, chunk=50,
                rtol=0.0, atol=1e-6 * float(np.mean(y ** 2)))
        rel = r.losses / r.losses[0]
        hit = np.flatnonzero(rel < 1e-6)
        out["methods"][method] = {
            "steps_to_tol": int(hit[0]) if hit.size else None, "steps_run": r.steps,
            "final_relative_loss": float(rel[-1]), "wall_seconds": time.perf_counter() - t0,
            "learning_rate": None if np.isnan(r.learning_rate) else r.learning_rate,
            "test_gap_to_kernel_regression": relative_mse(np.asarray(pred(r.params, p0, jnp.asarray(xt))), kreg)}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/benchmarks", help="output folder for curveball.json")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=5, help="runs per method (noise/jitter/data seeds)")
    ap.add_argument("--width", type=int, default=512, help="width of the NTK-regime MLP")
    ap.add_argument("--n-train", type=int, default=64)
    ap.add_argument("--skip-ntk", action="store_true")
    ap.add_argument("--json", action="store_true", help="print the JSON result to stdout")
    args = ap.parse_args(argv)
    import jax
    jax.config.update("jax_enable_x64", True)
    seeds = [args.seed + i for i in range(args.repeats)]
    lrs = [float(v) for v in np.logspace(-5, 0, 11)]
    t0 = time.perf_counter()
    result = {
        "benchmark": "curveball", "seed": args.seed, "repeats": args.repeats,
        "rosenbrock": _toy("noisy Rosenbrock (least squares, noise_scale 1, jitter 1)",
                           lambda m, lr, s: _rosenbrock_runs(m, lr, s, 1.0, 1.0), seeds, lrs),
        "linear_net": _toy("degenerate 2-layer linear net (Rahimi-Recht)", _linear_runs, seeds, lrs),
    }
    if not args.skip_ntk:
        result["ntk_regime"] = _ntk(args.seed, args.width, args.n_train)
    result["wall_seconds"] = time.perf_counter() - t0
    from ntk_mlft._io import write_json_atomic
    os.makedirs(args.out, exist_ok=True)
    write_json_atomic(os.path.join(args.out, "curveball.json"), result)
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
    else:
        for key in ("rosenbrock", "linear_net"):
            for m, s in result[key]["methods"].items():
                print(f"{key:11s} {m:9s} lr={s['learning_rate']} successes={s['successes']}/{s['runs']} "
                      f"median iters={s['median_iterations']} final={s['final_loss_median']:.3g}")
        for m, s in result.get("ntk_regime", {}).get("methods", {}).items():
            print(f"ntk_regime  {m:9s} steps_to_tol={s['steps_to_tol']} final_rel_loss={s['final_relative_loss']:.3g} "
                  f"gap_to_kreg={s['test_gap_to_kernel_regression']:.3g} wall={s['wall_seconds']:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
