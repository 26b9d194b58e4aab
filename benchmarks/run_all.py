"""Run every benchmark of ntk_mlft, one after the other, and index their JSON results.

Each benchmark is a script ``benchmarks/<name>.py`` with the common options ``--out DIR``
(it writes ``DIR/<name>.json``), ``--seed`` and ``--json``; some also take ``--quick`` (tiny
sizes, a smoke run). Benchmarks run sequentially, never concurrently: they time code, and two
at once on a 2-core machine would measure each other. Every benchmark compares ratios measured
in the same run (ours vs neural-tangents, CurveBall vs tuned first-order methods, spectral
estimator vs Monte-Carlo), so the numbers stay meaningful on noisy shared machines.

Usage: ``python benchmarks/run_all.py [--out DIR] [--seed S] [--quick] [--only NAME ...] [--json]``
(``make bench`` runs it with ``--out results/benchmarks``). Writes ``DIR/index.json``: per
benchmark the command, exit status, wall time and the path of its JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ("kernels", "estimators", "curveball", "problems")


def _available() -> list[str]:
    return [name for name in BENCHMARKS if (HERE / f"{name}.py").exists()]


def _accepts(script: Path, option: str) -> bool:
    """Whether ``script --help`` lists ``option`` (so ``--quick`` is passed only where it exists)."""
    text = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True).stdout
    return option in text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path("results") / "benchmarks"), help="folder for the JSON results")
    parser.add_argument("--seed", type=int, default=0, help="seed passed to every benchmark")
    parser.add_argument("--quick", action="store_true", help="smoke sizes where a benchmark supports them")
    parser.add_argument("--only", nargs="+", default=None, metavar="NAME", help=f"subset of {', '.join(BENCHMARKS)}")
    parser.add_argument("--json", action="store_true", help="print the index as JSON")
    args = parser.parse_args(argv)
    names = _available()
    if args.only:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            parser.error(f"--only: unknown benchmark(s) {unknown}; available: {names}")
        names = [n for n in names if n in args.only]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    index = []
    for name in names:
        script = HERE / f"{name}.py"
        cmd = [sys.executable, str(script), "--out", str(out), "--seed", str(args.seed)]
        if args.quick and _accepts(script, "--quick"):
            cmd.append("--quick")
        print(f"[run_all] {' '.join(cmd)}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        rc = subprocess.run(cmd).returncode
        index.append({"benchmark": name, "command": cmd, "returncode": rc,
                      "wall_seconds": time.perf_counter() - t0, "result": str(out / f"{name}.json")})
    (out / "index.json").write_text(json.dumps(index, indent=2) + "\n")
    if args.json:
        print(json.dumps(index, indent=2))
    else:
        for entry in index:
            print(f"{entry['benchmark']:>11}: rc={entry['returncode']} in {entry['wall_seconds']:.0f} s -> "
                  f"{entry['result']}")
    return max((e["returncode"] for e in index), default=0)


if __name__ == "__main__":
    raise SystemExit(main())
