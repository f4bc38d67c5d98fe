"""`smash show ARCH` and `smash graph ARCH --out FILE`: one architecture as text, or as a drawing.

`show` prints what the Architecture page shows: sizes, the SMASH score with its spread,
the true errors of finished retrains, the blocks, and one row per layer (the page's own
layer table). `graph` writes the page's memory-bank figure, or its graph, to a file
(`app.graph_files`). Like the dashboard launcher, these entry points sit above both the
engine and the app.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from app import graph, graph_files
from cli import archref as lookup
from cli.tables import Listing, add_form_args, cell, emit, form_of, interval, records
from core import argtypes as at
from core.arch import Arch
from core.errors import BadRequest
from store import Store, store_path

TRUTH_FIELDS = ("retrain_id", "epochs", "seed", "val_error", "test_error", "finished_at")


def block_rows(arch: Arch) -> list[dict]:
    return [{"block": b, "bank_channels": arch.bank_channels(b), "banks": arch.n_banks(b),
             "input_banks": arch.initial_banks(b), "in_channels": block.in_channels,
             "out_channels": arch.out_channels(b), "layers": len(block.layers)}
            for b, block in enumerate(arch.blocks)]


def truth(rec: dict) -> dict | None:
    """The latest finished retrain's errors (the "true error")."""
    done = [r for r in rec.get("retrains") or [] if r.get("status") == "done" and r.get("test_error") is not None]
    return {k: done[-1][k] for k in TRUTH_FIELDS if k in done[-1]} if done else None


def show_doc(store: Store, run: str, rec: dict) -> dict:
    arch: Arch = rec["model"]
    return {"run_id": run, "arch_id": arch.id, **lookup.sizes(store, run, rec),
            "score": lookup.latest_score(rec), "true_error": truth(rec), "blocks": block_rows(arch),
            "layers": records(graph.layer_table(arch)), "scores": rec.get("scores") or [],
            "retrains": rec.get("retrains") or [], "arch": arch.to_dict()}


def header(doc: dict, metric: str = "error") -> list[str]:
    """What `show` prints above the layer table; the score in the run's score `metric`."""
    score, true = doc["score"], doc["true_error"]
    lines = [f"arch {doc['arch_id']} (run {doc['run_id']})",
             f"  params {cell('params', doc['params'])} · FLOPs {cell('flops', doc['flops'])} · "
             f"depth {doc['depth']} · {_count(doc['n_layers'], 'layer')}"]
    if score:
        unit = "" if metric == "error" else f" ({metric}, nats)"
        lines.append(f"  SMASH score{unit} {cell('score_mean', score['score_mean'], metric)} ± "
                     f"{cell('score_std', score['score_std'] or 0, metric)}, 95% interval "
                     f"{interval(score['score_lo'], score['score_hi'], metric)} over {score['draws']} draws of "
                     f"{score['val_images']} images ({score['stage']}, checkpoint {score['checkpoint_step']}"
                     f"{', partial: halving stopped it early' if score['partial'] else ''})")
    else:
        lines.append("  SMASH score: not scored in this run")
    if true:
        val = f"validation error {cell('val_error', true['val_error'])} · " if "val_error" in true else ""
        lines.append(f"  true error: {val}test error {cell('test_error', true['test_error'])} "
                     f"({_count(true['epochs'], 'epoch')}, retrain {true['retrain_id']})")
    else:
        lines.append("  true error: not retrained yet")
    lines += [f"  block {b['block']}: {b['banks']} banks of {b['bank_channels']} ch ({b['input_banks']} "
              f"from the input of {b['in_channels']} ch), {_count(b['layers'], 'layer')}, out {b['out_channels']} ch"
              for b in doc["blocks"]]
    return lines


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def drawable(args: argparse.Namespace) -> dict:
    """The arch record ARCH names; an arch JSON file needs no store at all."""
    path = Path(args.arch)
    if path.suffix == ".json" and path.is_file() and not store_path(args.workdir).is_file():
        model = Arch.from_json(path.read_text())
        return {"arch_id": model.id, "model": model}
    store = lookup.open_store(args.workdir)
    return lookup.arch_record(store, lookup.run_id(store, args.run), args.arch)


def cmd_show(args: argparse.Namespace) -> None:
    store = lookup.open_store(args.workdir)
    run = lookup.run_id(store, args.run)
    doc = show_doc(store, run, lookup.arch_record(store, run, args.arch))
    frame = graph.layer_table(Arch.from_dict(doc["arch"]))
    emit(Listing(doc=doc, frame=frame, header=header(doc, lookup.score_metric(store, run))), form_of(args))


def cmd_graph(args: argparse.Namespace) -> None:
    rec = drawable(args)
    try:
        out = graph_files.write(rec["model"], args.out, args.format)
    except graph_files.GraphFileError as exc:
        raise BadRequest(str(exc)) from exc
    if args.json:
        print(json.dumps({"arch_id": rec["arch_id"], "out": str(out),
                          "format": graph_files.format_for(out, args.format)}))
    else:
        print(f"wrote {out}")


def add_commands(sub) -> None:
    s = sub.add_parser("show", help="one architecture: blocks, layers, sizes, score, true errors")
    s.add_argument("arch", help="arch id, 'best', or an arch JSON file")
    s.add_argument("--workdir", default="./runs", help="the work directory (default ./runs)")
    s.add_argument("--run", type=at.run_id, help="run id (default: the latest run)")
    add_form_args(s)
    s.set_defaults(func=cmd_show)

    g = sub.add_parser("graph", help="draw an architecture's memory-bank graph to a file")
    g.add_argument("arch", help="arch id, 'best', or an arch JSON file")
    g.add_argument("--out", required=True, help="output file: .svg .png .pdf .html .dot .graphml")
    g.add_argument("--format", choices=graph_files.FORMATS, help="default: from the suffix of --out")
    g.add_argument("--workdir", default="./runs", help="the work directory (default ./runs)")
    g.add_argument("--run", type=at.run_id, help="run id (default: the latest run)")
    g.add_argument("--json", action="store_true", help="print what was written as JSON")
    g.set_defaults(func=cmd_graph)
