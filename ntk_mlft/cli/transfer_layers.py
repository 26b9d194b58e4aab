"""``ntk-mlft transfer layers``: which layers of a trained SGS network to re-train, predicted from
per-layer NTKs before any re-training, and checked by re-training them.

Trains the CNN of ``ntk_mlft.transfer.layers.sgs_cnn`` (``--depth`` circular 5x5 conv layers,
``--width`` channels) on ``--base`` (an SGS system of ``ntk_mlft.problems.sgs``), then for every
``--targets`` system predicts the relative test MSE of re-training each layer set (``--layers``;
default every single layer and every adjacent pair) on ``--n-target`` target snapshots from the
per-layer empirical NTKs of the trained network, and measures it by re-training (``--seeds``
draws of the target snapshots, single layers; pairs too with ``--measure-pairs``). Prints the
predicted and measured errors and their rank agreement; writes ``transfer_layers.json`` and the
figure ``transfer_layers.{png,pdf}`` to ``--out`` (default ``results/transfer_layers``).

Layer sets: comma-separated; each a group name (``layer_02_Conv``), a 0-based group index (``-1`` =
output layer) or several joined by ``+`` (``0+1``). Unknown names list the network's groups.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

HELP = "rank the layers to re-train from per-layer NTKs, then check by re-training (SGS closures)"


def _layer_sets(text: str) -> tuple:
    out = []
    for part in text.split(","):
        members = []
        for m in part.split("+"):
            m = m.strip()
            try:
                members.append(int(m))
            except ValueError:
                members.append(m)
        out.append(tuple(x for x in members if x != ""))
    return tuple(out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ntk_mlft.problems.sgs import SGS_SYSTEMS

    names = tuple(SGS_SYSTEMS)
    parser.add_argument("--base", default="burgers-sgs-1d", choices=names, help="base system")
    parser.add_argument("--targets", default="burgers-sgs-1d:re2x,burgers-sgs-1d:band", metavar="A,B",
                        help=f"target systems (of: {', '.join(names)})")
    parser.add_argument("--layers", default=None, metavar="SETS", help="layer sets, e.g. '0,1,-1,0+1' (default: all "
                        "single layers and adjacent pairs)")
    parser.add_argument("--depth", type=int, default=6, help="conv layers")
    parser.add_argument("--width", type=int, default=16, help="channels per hidden layer")
    parser.add_argument("--n-base", type=int, default=200, help="base training snapshots")
    parser.add_argument("--base-steps", type=int, default=400, help="base training steps (Adam, batch 16)")
    parser.add_argument("--n-target", type=int, default=16, help="target training snapshots per seed")
    parser.add_argument("--retrain-steps", type=int, default=150, help="re-training steps (Adam, full batch)")
    parser.add_argument("--seeds", type=int, default=3, help="re-training repetitions (target snapshot draws)")
    parser.add_argument("--n-boot", type=int, default=4, help="prediction repetitions (uncertainty)")
    parser.add_argument("--measure-pairs", action="store_true", help="also re-train the multi-layer sets")
    parser.add_argument("--cache", default=None, help="folder for cached snapshots")


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    import jax

    jax.config.update("jax_enable_x64", True)
    from ntk_mlft._io import strict_json, write_json_atomic
    from ntk_mlft.problems.sgs import get_sgs_system
    from ntk_mlft.reports.layers import layer_table, plot_layer_study
    from ntk_mlft.reports.plotting import save_figure
    from ntk_mlft.transfer.layer_study import LayerStudyConfig, run_layer_study

    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if not targets:
        raise ValueError("--targets must name at least one system")
    systems = {t: get_sgs_system(t) for t in targets}
    base = get_sgs_system(args.base)
    if any(s.spatial_dims != base.spatial_dims for s in systems.values()):
        raise ValueError(f"--targets must have the base's spatial dimension ({base.spatial_dims}-D): {targets}")
    config = LayerStudyConfig(depth=args.depth, width=args.width, n_base=args.n_base, base_steps=args.base_steps,
                              n_target=args.n_target, retrain_steps=args.retrain_steps, seeds=args.seeds,
                              n_boot=args.n_boot, measure_pairs=args.measure_pairs, seed=args.seed,
                              layer_sets=_layer_sets(args.layers) if args.layers else ())
    say = (lambda m: None) if (args.quiet or args.json) else (lambda m: print(m, file=sys.stderr, flush=True))
    base_report, results = run_layer_study(base, systems, config, cache_dir=args.cache, log=say)
    out = Path(args.out or "results/transfer_layers")
    report: dict[str, Any] = {"base": base_report, "targets": [r.to_dict() for r in results]}
    files = save_figure(plot_layer_study(results, title=f"{args.base}: predicted vs measured"),
                        out / "transfer_layers")
    report["files"] = [str(f) for f in files] + [str(out / "transfer_layers.json")]
    write_json_atomic(out / "transfer_layers.json", report)
    if args.json:
        print(strict_json(json.loads(strict_json(report)), indent=None))
    elif not args.quiet:
        print("\n".join(layer_table(report["targets"])))
        print(f"wrote {len(files) + 1} files to {out}")
    return 0
