"""`smash show ARCH`: one architecture as text.

It prints what the Architecture page shows: sizes, the SMASH score with its spread, the
true errors of finished retrains, the blocks, and one row per layer (the page's own layer
table, core/arch_table.py). `smash graph` draws the same arch (cli/drawing.py).
"""

from __future__ import annotations

import argparse

from cli import archref as lookup
from cli.tables import Listing, cell, emit, form_of, records
from core.arch import Arch
from core.arch_table import layer_table
from core.board import interval_text
from store import Store

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
            "layers": records(layer_table(arch)), "scores": rec.get("scores") or [],
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
                     f"{interval_text(score['score_lo'], score['score_hi'], metric)} over {score['draws']} draws of "
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


def cmd_show(args: argparse.Namespace) -> None:
    store = lookup.open_store(args.workdir)
    run = lookup.run_id(store, args.run)
    doc = show_doc(store, run, lookup.arch_record(store, run, args.arch))
    frame = layer_table(Arch.from_dict(doc["arch"]))
    emit(Listing(doc=doc, frame=frame, header=header(doc, store.score_metric(run))), form_of(args))
