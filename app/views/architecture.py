"""Architecture: one Arch as its memory-bank graph, or two side by side with differences marked.

The arch comes from the URL (?arch=ID&compare=ID&run=RUN) so other pages can link here
and a link can be shared; the pickers below only rewrite those parameters. Downloads:
the arch's JSON (what `Arch.from_json` reads back), the drawing as SVG, PNG, PDF, HTML,
DOT or GraphML (the files `smash graph` writes, made only when a button is clicked), and,
once a final training has finished, its trained model file.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd
import streamlit as st

from app import charts, graph, graph_files, score_text
from app.context import store_and_run
from core.arch import Arch
from core.arch_table import diff_layers, layer_table, op_label
from store import Store

TOP_N = 50
MAX_DOWNLOAD_BYTES = 512 * 2**20
NONE = "(none)"


def render() -> None:
    st.title("Architecture")
    picked = store_and_run()
    if picked is None:
        return
    store, run_id = picked
    metric = store.score_metric(run_id)
    arch_id, compare_id = _pickers(store, run_id)
    if arch_id is None:
        st.info("No scored architectures in this run yet.")
        return
    a = _load(store, run_id, arch_id)
    b = _load(store, run_id, compare_id) if compare_id else None
    if a is None:
        return
    if b is None:
        st.caption(f"`{arch_id}` · hover a layer for its op, reads, writes and widths")
        _summary(a, metric)
        st.plotly_chart(graph.figure(a["model"]), width="stretch", key="arch-graph")
        _details(store, a)
        return
    diff = diff_layers(a["model"], b["model"])
    fa, fb = _facts(a, metric), _facts(b, metric)
    st.dataframe(pd.DataFrame({"": list(fa), f"A {arch_id}": list(fa.values()), f"B {compare_id}": list(fb.values())}),
                 hide_index=True)
    st.caption(f"{len(diff)} layer position(s) differ; they are drawn in red (hover a layer for what differs).")
    left, right = st.columns(2)
    for col, rec, name in ((left, a, "A"), (right, b, "B")):
        with col:
            st.markdown(f"#### {name}: `{rec['arch_id']}`")
            st.plotly_chart(graph.figure(rec["model"], highlight=diff), width="stretch",
                            key=f"arch-graph-{name}")
    if diff:
        st.dataframe(_diff_table(a["model"], b["model"], diff), hide_index=True, width="stretch")
    for col, rec in zip(st.columns(2), (a, b), strict=True):  # below the diff, still side by side
        with col:
            _details(store, rec)


def _pickers(store: Store, run_id: str) -> tuple[str | None, str | None]:
    """Arch and comparison choosers that read and write ?arch= and ?compare=."""
    top = store.leaderboard(run_id, limit=TOP_N)["arch_id"].tolist()
    wanted, other = st.query_params.get("arch"), st.query_params.get("compare")
    options = list(dict.fromkeys([x for x in (wanted, other) if x] + top))
    if not options:
        return None, None
    wanted = wanted if wanted in options else options[0]
    c1, c2, c3 = st.columns([2, 2, 2], vertical_alignment="bottom")
    # Keys follow the URL so a link from another page re-selects instead of keeping a stale pick.
    arch_id = c1.selectbox("Architecture (top by SMASH score)", options, index=options.index(wanted),
                           key=f"arch-pick-{wanted}")
    cmp_options = [NONE] + [o for o in options if o != arch_id]
    compare = c2.selectbox("Compare with", cmp_options,
                           index=cmp_options.index(other) if other in cmp_options else 0,
                           key=f"arch-compare-{other}")
    c3.text_input("…or open an arch id", key="arch-typed", on_change=_typed, placeholder="16 hex digits")
    compare = None if compare == NONE else compare
    st.query_params["arch"] = arch_id
    if compare:
        st.query_params["compare"] = compare
    elif "compare" in st.query_params:
        del st.query_params["compare"]
    return arch_id, compare


def _typed() -> None:
    typed = st.session_state.get("arch-typed", "").strip()
    if typed:
        st.query_params["arch"] = typed
        st.session_state["arch-typed"] = ""


def _load(store: Store, run_id: str, arch_id: str) -> dict | None:
    rec = store.arch(run_id, arch_id)
    if rec is None:
        st.warning(f"No architecture `{arch_id}` in run `{run_id}`.")
        return None
    if rec.get("arch") is None:
        st.warning(f"Architecture `{arch_id}` is scored in run `{run_id}`, but its description "
                   "(the arch JSON) is not in the store, so it cannot be drawn.")
        return None
    return {**rec, "model": Arch.from_dict(rec["arch"])}


def _facts(rec: dict, metric: str = "error") -> dict[str, str]:
    """The headline numbers of an arch, formatted: latest SMASH score (in the run's score
    metric), true error, sizes."""
    scores = rec.get("scores") or []
    latest = scores[-1] if scores else None
    done = [r for r in rec.get("retrains") or [] if r.get("status") == "done" and r.get("val_error") is not None]
    return {
        "SMASH score": "–" if latest is None else score_text.with_spread(latest["score_mean"], latest["score_std"],
                                                                          metric),
        "True error": f"{done[-1]['val_error']:.2%}" if done else "–",
        "Test error": f"{done[-1]['test_error']:.2%}" if done and done[-1].get("test_error") is not None else "–",
        "Params": _compact(rec.get("params")),
        "FLOPs": _compact(rec.get("flops")),
        "Depth / layers": f"{rec.get('depth') or '–'} / {rec.get('n_layers') or '–'}",
    }


FACT_HELP = {
    "SMASH score": "Mean ± std over noise draws",
    "True error": "Validation error after final training: a split never trained on, what selection uses",
    "Test error": "The final figure after final training; nothing is ever selected on it",
}


def _summary(rec: dict, metric: str = "error") -> None:
    facts = _facts(rec, metric)
    for col, (name, value) in zip(st.columns(len(facts)), facts.items(), strict=True):
        main, _, spread = value.partition(" ± ")
        col.metric(name, main, delta=f"± {spread}" if spread else None, delta_color="off",
                   delta_arrow="off", help=FACT_HELP.get(name))


def _compact(n) -> str:
    if n is None or pd.isna(n):
        return "–"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.2f}{suffix}"
    return str(int(n))


def _details(store: Store, rec: dict) -> None:
    arch: Arch = rec["model"]
    with st.expander("Layers"):
        st.dataframe(layer_table(arch), hide_index=True, width="stretch")
    st.download_button("Download arch JSON", data=arch.to_json(), file_name=f"arch-{arch.id}.json",
                       mime="application/json", key=f"dl-json-{rec['arch_id']}")
    _graph_downloads(arch)
    retrains = rec.get("retrains") or []
    if not retrains:
        st.caption("Not retrained yet: queue a final training from the Leaderboard or Jobs page.")
        return
    st.markdown("**Final trainings**")
    columns = ["retrain_id", "status", "epochs", "seed", "val_error", "test_error", "finished_at"]
    st.dataframe(pd.DataFrame(retrains)[[c for c in columns if c in retrains[0]]],
                 hide_index=True, width="stretch",
                 column_config={"val_error": st.column_config.NumberColumn("val error", format="percent"),
                                "test_error": st.column_config.NumberColumn("test error", format="percent")})
    for r in reversed(retrains):
        _model_download(r)
    latest = retrains[-1]
    st.plotly_chart(charts.retrain_curves(store.retrain_metrics(latest["retrain_id"])), width="stretch",
                    key=f"retrain-curves-{rec['arch_id']}")


def _graph_downloads(arch: Arch) -> None:
    """One button per graph file format; a static image takes a few seconds (a headless
    Chromium draws it), so each file is made only when its button is clicked."""
    st.caption("Download the drawing")
    for col, fmt in zip(st.columns(len(graph_files.FORMATS)), graph_files.FORMATS, strict=True):
        col.download_button(fmt.upper(), data=functools.partial(graph_files.render, arch, fmt),
                            file_name=f"arch-{arch.id}.{fmt}", mime=graph_files.MIME[fmt],
                            on_click="ignore", key=f"dl-graph-{fmt}-{arch.id}")


def _model_download(retrain: dict) -> None:
    path = Path(retrain["checkpoint"]) if retrain.get("status") == "done" and retrain.get("checkpoint") else None
    if path is None or not path.is_file():
        return
    if path.stat().st_size > MAX_DOWNLOAD_BYTES:
        st.caption(f"Trained model ({path.stat().st_size / 2**20:.0f} MiB): `{path}`")
        return
    st.download_button(f"Download trained model ({retrain['retrain_id']})", data=path.read_bytes(),
                       file_name=path.name, mime="application/octet-stream",
                       key=f"dl-model-{retrain['retrain_id']}")


def _diff_table(a: Arch, b: Arch, diff: dict[tuple[int, int], str]) -> pd.DataFrame:
    def op(arch: Arch, blk: int, i: int) -> str:
        layers = arch.blocks[blk].layers if blk < len(arch.blocks) else ()
        if i >= len(layers):
            return "–"
        la = layers[i]
        return f"{op_label(la)} r{list(la.reads)} w{list(la.writes)}"

    return pd.DataFrame([{"block": blk, "layer": i, "differs in": what, "A": op(a, blk, i), "B": op(b, blk, i)}
                         for (blk, i), what in sorted(diff.items())])
