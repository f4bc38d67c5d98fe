"""`smash graph ARCH --out FILE`: the Architecture page's memory-bank figure, or its graph,
written to a file (app/graph_files.py). An arch JSON file needs no workdir at all.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from app import graph_files
from cli import archref as lookup
from core.arch import Arch
from core.errors import BadRequest
from store import store_path


def drawable(args: argparse.Namespace) -> dict:
    """The arch record ARCH names; an arch JSON file needs no store at all."""
    path = Path(args.arch)
    if path.suffix == ".json" and path.is_file() and not store_path(args.workdir).is_file():
        model = Arch.from_json(path.read_text())
        return {"arch_id": model.id, "model": model}
    store = lookup.open_store(args.workdir)
    return lookup.arch_record(store, lookup.run_id(store, args.run), args.arch)


def cmd_graph(args: argparse.Namespace) -> None:
    if Path(args.out).exists() and not args.force:
        raise BadRequest(f"--out {args.out} exists; pass --force to replace it")
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
