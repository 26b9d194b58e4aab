"""Import graph of the ``ntk_mlft`` package at a git revision: a picture and the rule violations.

Nodes are the package's rooms: its sub-packages and top-level modules (``ntk_mlft/X/`` or
``ntk_mlft/X.py``); an edge A -> B means some module in A imports something from B (top-level or
inside a function, so lazy imports count). Violations of the import rule of ``docs/design.md``:

* a module importing a *private* module (``_name``) of another sub-package (``ntk_mlft.stax``, the
  public layer API of ``ntk_mlft.kernels``, is that package's facade, :data:`FACADES`);
* a lower layer (kernels, empirical, predict, estimators, allocation) importing a higher one
  (studies, reports, cli).

Usage: ``python analysis/import_graph.py [--rev HEAD] [--out docs/imports_after.png] [--json FILE]``;
``--rev WORKTREE`` reads the working tree. ``docs/imports_before.png`` is ``--rev 8df023a^`` (the
flat layout before issue 11), ``docs/imports_after.png`` the current tree.
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
from pathlib import Path

FACADES = {"stax": "kernels"}
"""Top-level modules that are the public face of a package's private modules (allowed to import them)."""
LOWER = ("kernels", "empirical", "predict", "estimators", "allocation")
HIGHER = ("studies", "reports", "cli")
ROOT = Path(__file__).resolve().parents[1]


def _files(rev: str) -> dict[str, str]:
    """``{path: source}`` of every ``ntk_mlft/**.py`` at ``rev`` (or the working tree)."""
    if rev == "WORKTREE":
        return {str(p.relative_to(ROOT)): p.read_text() for p in sorted((ROOT / "ntk_mlft").rglob("*.py"))}
    names = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "-r", "--name-only", rev, "ntk_mlft/"],
                           check=True, capture_output=True, text=True).stdout.split()
    return {n: subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{n}"], check=True, capture_output=True,
                              text=True).stdout for n in names if n.endswith(".py")}


def _module(path: str) -> str:
    parts = path[:-3].split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(module: str, source: str, is_package: bool) -> set[str]:
    """Absolute names of the ``ntk_mlft`` modules ``source`` imports (relative imports resolved)."""
    out = set()
    base = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("ntk_mlft")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                target = ".".join(base[:len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("ntk_mlft"):
                out.add(target)
                out |= {f"{target}.{a.name}" for a in node.names}
    return out


def analyse(rev: str) -> dict:
    files = _files(rev)
    modules = {_module(p): (p, s) for p, s in files.items()}
    edges, violations = set(), []
    for mod, (path, src) in modules.items():
        src_room = _room(mod)
        for target in _imports(mod, src, path.endswith("__init__.py")):
            while target not in modules and "." in target:
                target = target.rsplit(".", 1)[0]         # "from pkg import name": name is not a module
            if target not in modules:
                continue
            dst_room = _room(target)
            if dst_room != src_room:
                edges.add((src_room, dst_room))
                if any(p.startswith("_") for p in target.split(".")[2:]) and FACADES.get(src_room) != dst_room:
                    violations.append(f"{mod} imports private {target}")
                if src_room in LOWER and dst_room in HIGHER:
                    violations.append(f"{mod} (lower layer {src_room}) imports {target} (higher layer {dst_room})")
    rooms = sorted({_room(m) for m in modules} - {"__init__"})
    return {"rev": rev, "rooms": rooms, "edges": sorted(e for e in edges if "__init__" not in e),
            "violations": sorted(set(violations))}


_LAYERS = (("_checks", "_io", "_linalg", "_progress", "_seeds", "_format", "_validation"),
           ("kernels", "stax", "architectures", "problems", "optim", "_ntk_axes", "_structured"),
           ("empirical", "predict", "multilevel", "training"),
           ("estimators", "error_models", "transfer"),
           ("allocation", "_allocation_separable", "_allocation_surrogate", "costs"),
           ("studies", "reports", "curves", "plotting", "validation", "workflow"),
           ("cli", "commands"))


def _layer(room: str) -> int:
    """Row of ``room`` in the picture: private helpers at the bottom, commands at the top."""
    return next((i for i, names in enumerate(_LAYERS) if room in names), 3)


def draw(result: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows: dict[int, list[str]] = {}
    for r in result["rooms"]:
        rows.setdefault(_layer(r), []).append(r)
    pos = {r: ((i + 1) / (len(row) + 1) * 2 - 1, layer / 3 - 1) for layer, row in rows.items()
           for i, r in enumerate(row)}
    rooms = result["rooms"]
    fig, ax = plt.subplots(figsize=(8, 8))
    for a, b in result["edges"]:
        (x0, y0), (x1, y1) = pos[a], pos[b]
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops=dict(arrowstyle="-|>", color="0.55", lw=0.6, shrinkA=10, shrinkB=10,
                                    connectionstyle="arc3,rad=0.12"))
    for r, (x, y) in pos.items():
        private = r.startswith("_")
        ax.text(x, y, r, ha="center", va="center", fontsize=8,
                bbox=dict(boxstyle="round", fc="0.92" if private else "#cfe3f7", ec="0.4"))
    ax.set_xlim(-1.1, 1.1)
    ax.set_ylim(-1.2, 1.2)
    ax.set_axis_off()
    ax.set_title(f"ntk_mlft import graph at {result['rev']}: {len(rooms)} rooms, {len(result['edges'])} edges, "
                 f"{len(result['violations'])} rule violations", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rev", default="WORKTREE")
    ap.add_argument("--out", default=None, help="PNG to draw")
    ap.add_argument("--json", default=None, help="write rooms, edges and violations as JSON")
    args = ap.parse_args(argv)
    result = analyse(args.rev)
    if args.out:
        draw(result, Path(args.out))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    print(f"{args.rev}: {len(result['rooms'])} rooms, {len(result['edges'])} edges")
    for v in result["violations"]:
        print("violation:", v)
    return 0


if __name__ == "__main__":
    sys.exit(main())
