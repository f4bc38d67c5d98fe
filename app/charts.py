"""Every chart of the dashboard as a pure function: DataFrame in, Plotly figure out.

No Streamlit and no store here, so each chart can be built and checked in a test from a
hand-made frame. Lower is better for both SMASH score and error, as everywhere. A chart of
SMASH scores takes the run's score metric (core.metric: "error", a fraction shown as a
percentage, or "loss", nats shown as a plain number); error is the default.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.metric import LABELS, plotly_format

SCORE_COLOR = "#2563eb"
TRUTH_COLOR = "#16a34a"
FRONT_COLOR = "#dc2626"
MUTED = "#94a3b8"
SCORE_HOVER = {"error": ".2%"}
SCORE_TICKS = {"error": ".0%"}
"""Score formats for hover labels and fine axes; a metric not named here uses plotly_format."""


def score_hover(metric: str = "error") -> str:
    """d3 format of a score in a hover label: as precise as core.metric.format_score."""
    return SCORE_HOVER.get(metric, ".4f")


def score_title(metric: str = "error") -> str:
    """A short axis or panel title for scores: "SMASH score" for error (what the charts
    always said), the metric spelled out for any other."""
    return "SMASH score" if metric == "error" else f"SMASH score ({LABELS[metric]})"


def _layout(fig: go.Figure, height: int = 360) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10), template="plotly_white",
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig


def empty(message: str) -> go.Figure:
    """A blank figure saying why there is nothing to plot."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, font=dict(size=14, color=MUTED),
                       xref="paper", yref="paper", x=0.5, y=0.5)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, height=240)


def training_curves(metrics: pd.DataFrame) -> go.Figure:
    """HyperNet training loss and error against step, side by side."""
    if metrics.empty:
        return empty("No training metrics yet")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Training loss", "Training error"))
    fig.add_trace(go.Scatter(x=metrics["step"], y=metrics["loss"], mode="lines+markers", name="loss",
                             line=dict(color=SCORE_COLOR), marker=dict(size=4)), row=1, col=1)
    fig.add_trace(go.Scatter(x=metrics["step"], y=metrics["error"], mode="lines+markers",
                             name="error", line=dict(color=FRONT_COLOR), marker=dict(size=4)),
                  row=1, col=2)
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(tickformat=".0%", row=1, col=2)
    fig.update_layout(showlegend=False)
    return _layout(fig)


def probe_stability(probe: pd.DataFrame, stability: pd.DataFrame,
                    truth: pd.DataFrame | None = None, *, metric: str = "error") -> go.Figure:
    """The probe set over training: each arch's SMASH score per checkpoint (left); the
    Kendall tau of the ranking between consecutive checkpoints and, once probe archs have
    true errors, the Spearman rho of each checkpoint's scores against them (right)."""
    if probe.empty:
        return empty("No probe set in this run (set [score].probe in the config)")
    fig = make_subplots(rows=1, cols=2, subplot_titles=(
        f"Probe archs: {score_title(metric)} per checkpoint", "Rank stability (Kendall tau vs previous)"))
    hover = score_hover(metric)
    for arch_id, rows in probe.groupby("arch_id"):
        fig.add_trace(go.Scatter(x=rows["checkpoint_step"], y=rows["score_mean"], mode="lines+markers",
                                 name=str(arch_id), line=dict(width=1), marker=dict(size=4),
                                 hovertemplate=f"arch {arch_id}<br>step %{{x}}<br>score %{{y:{hover}}}<extra></extra>"),
                      row=1, col=1)
    if not stability.empty:
        fig.add_trace(go.Scatter(x=stability["step"], y=stability["kendall_tau"], mode="lines+markers",
                                 name="Kendall tau", line=dict(color=FRONT_COLOR)), row=1, col=2)
    if truth is not None and not truth.empty:
        fig.add_trace(go.Scatter(x=truth["step"], y=truth["spearman"], mode="lines+markers",
                                 name="Spearman vs true error", line=dict(color=SCORE_COLOR, dash="dot")),
                      row=1, col=2)
        fig.layout.annotations[1].text = "Stability (solid), Spearman vs true error (dotted)"
    fig.update_xaxes(title_text="checkpoint step")
    fig.update_yaxes(tickformat=SCORE_TICKS.get(metric, plotly_format(metric)), row=1, col=1)
    fig.update_yaxes(range=[-1.05, 1.05], row=1, col=2)
    fig.update_layout(showlegend=False)
    return _layout(fig)


def retrain_curves(metrics: pd.DataFrame) -> go.Figure:
    """A final training's train, validation and test error per epoch."""
    if metrics.empty:
        return empty("No epochs finished yet")
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=metrics["epoch"], y=metrics["train_error"], mode="lines+markers",
                             name="train error", line=dict(color=SCORE_COLOR)))
    if "val_error" in metrics and metrics["val_error"].notna().any():
        fig.add_trace(go.Scatter(x=metrics["epoch"], y=metrics["val_error"], mode="lines+markers",
                                 name="validation error", line=dict(color=TRUTH_COLOR)))
    fig.add_trace(go.Scatter(x=metrics["epoch"], y=metrics["test_error"], mode="lines+markers",
                             name="test error", line=dict(color=MUTED, dash="dot")))
    fig.update_xaxes(title_text="epoch", dtick=1)
    fig.update_yaxes(title_text="error", tickformat=".0%")
    return _layout(fig, height=300)


def score_vs_truth(frame: pd.DataFrame, metric: str = "error") -> go.Figure:
    """SMASH score (x, with its 95% interval over draws, in the run's score `metric`) against
    true error (y): the validation error after retraining, one point per arch. Test error
    shows on hover only.

    Points carry their arch_id as customdata so a click can open the arch.
    """
    if frame.empty:
        return empty("No retrained architectures yet: retrain some from the Leaderboard")
    lo_x = (frame["score_mean"] - frame["score_lo"]).fillna(0) if "score_lo" in frame else None
    hi_x = (frame["score_hi"] - frame["score_mean"]).fillna(0) if "score_hi" in frame else None
    test = frame["test_error"] if "test_error" in frame else frame["val_error"] * float("nan")
    fig = go.Figure(go.Scatter(
        x=frame["score_mean"], y=frame["val_error"], mode="markers",
        error_x=dict(type="data", array=hi_x if hi_x is not None else frame["score_std"].fillna(0),
                     arrayminus=lo_x, color=MUTED, thickness=1),
        marker=dict(size=10, color=SCORE_COLOR, line=dict(width=1, color="white")),
        customdata=np.column_stack([frame["arch_id"].to_numpy(), test.to_numpy()]), name="retrained arch",
        hovertemplate=f"arch %{{customdata[0]}}<br>SMASH score %{{x:{score_hover(metric)}}}<br>"
                      "validation error %{y:.2%}<br>test error %{customdata[1]:.2%}<extra></extra>",
    ))
    lo, hi = float(frame["val_error"].min()), float(frame["val_error"].max())
    pad = max(0.01, 0.1 * (hi - lo))  # plotly would span 0-150% around a single point
    fig.update_xaxes(title_text=f"SMASH score ({LABELS[metric]})", tickformat=plotly_format(metric))
    fig.update_yaxes(title_text="true error (validation, after retraining)", tickformat=".1%",
                     range=[lo - pad, hi + pad])
    fig.update_layout(clickmode="event+select", dragmode="select")
    return _layout(fig, height=420)


def pareto(frame: pd.DataFrame, x: str, max_dominated: int = 20_000, *, metric: str = "error") -> go.Figure:
    """SMASH score (in the run's score `metric`) against size (params or FLOPs), the
    non-dominated front drawn on top.

    Past `max_dominated` dominated points a seeded sample stands in for them: a browser
    gains nothing from 10^6 grey dots, and the figure travels as JSON.
    """
    if frame.empty:
        return empty("No scored architectures yet: queue a scoring pass on the Runs page")
    label = {"params": "parameters", "flops": "FLOPs"}.get(x, x)
    dominated = frame[~frame["on_front"].astype(bool)]
    if len(dominated) > max_dominated:
        dominated = dominated.sample(max_dominated, random_state=0)
    frame = pd.concat([dominated, frame[frame["on_front"].astype(bool)]])
    fig = go.Figure()
    for on_front, name, style in (
        (False, "dominated", dict(size=6, color=MUTED, opacity=0.6)),
        (True, "Pareto front", dict(size=9, color=FRONT_COLOR, line=dict(width=1, color="white"))),
    ):
        part = frame[frame["on_front"] == on_front]
        fig.add_trace(go.Scattergl(
            x=part[x], y=part["score_mean"], mode="markers+lines" if on_front else "markers",
            name=name, marker=style, customdata=part[["arch_id"]].to_numpy(),
            line=dict(color=FRONT_COLOR, shape="hv", width=1.5) if on_front else None,
            hovertemplate=f"arch %{{customdata[0]}}<br>{label} %{{x:,.0f}}<br>"
                          f"SMASH score %{{y:{score_hover(metric)}}}<extra></extra>",
        ))
    fig.update_xaxes(title_text=label, type="log")
    fig.update_yaxes(title_text=score_title(metric), tickformat=plotly_format(metric))
    fig.update_layout(clickmode="event+select", dragmode="select")
    return _layout(fig, height=420)


def predictor_bars(metrics: dict) -> go.Figure:
    """A study's Spearman rho per predictor with its 95% interval, and the truth's ceiling."""
    names = list(metrics["predictors"])
    rho = [metrics["predictors"][n][0] for n in names]
    fig = go.Figure(go.Bar(
        x=names, y=[r["estimate"] for r in rho], marker_color=[SCORE_COLOR if n == "smash" else MUTED for n in names],
        error_y=dict(type="data", array=[r["ci_high"] - r["estimate"] for r in rho],
                     arrayminus=[r["estimate"] - r["ci_low"] for r in rho]),
        hovertemplate="%{x}: Spearman %{y:.3f}<extra></extra>", name="Spearman rho",
    ))
    ceiling = metrics.get("ceiling")
    if ceiling:
        fig.add_hline(y=ceiling["spearman"], line=dict(color=TRUTH_COLOR, dash="dash"),
                      annotation_text=f"seed-to-seed ceiling {ceiling['spearman']:.2f}")
    fig.update_yaxes(title_text="Spearman rho with true error", range=[-1, 1])
    return _layout(fig, height=320)


LADDER_COLORS = {"smash": SCORE_COLOR, "flops": "#ea580c", "params": "#a16207", "naswot": "#7c3aed",
                 "smash+flops": "#0891b2", "learned": "#db2777"}


def ladder(rungs: list[dict]) -> go.Figure:
    """A study's truth ladder: each predictor's Spearman with the truth (95% interval as
    error bars) at every training budget of the truth, one line per predictor; the truth's
    seed-to-seed Spearman shaded (its 95% interval), and what a perfect predictor can expect
    against the seeds' mean dashed. `rungs` as a study stores them (engine/study.py)."""
    if not rungs:
        return empty("no truth ladder in this study")
    names = [r["name"] for r in rungs]
    fig = go.Figure()
    lo = [(r.get("ceiling_ci") or [None, None])[0] for r in rungs]
    hi = [(r.get("ceiling_ci") or [None, None])[1] for r in rungs]
    if any(v is not None for v in hi):
        fig.add_trace(go.Scatter(x=names + names[::-1], y=hi + lo[::-1], fill="toself", mode="lines",
                                 line=dict(width=0), fillcolor="rgba(22,163,74,0.15)", hoverinfo="skip",
                                 name="seed-to-seed ceiling (95% interval)"))
        fig.add_trace(go.Scatter(x=names, y=[r.get("ceiling") for r in rungs], mode="lines",
                                 line=dict(color=TRUTH_COLOR, width=1), name="seed-to-seed ceiling"))
        fig.add_trace(go.Scatter(x=names, y=[r.get("ceiling_of_mean") for r in rungs], mode="lines+markers",
                                 line=dict(color=TRUTH_COLOR, dash="dash"), marker=dict(symbol="diamond-open"),
                                 name="perfect predictor vs the seeds' mean"))
    for name in dict.fromkeys(p for r in rungs for p in r["predictors"]):
        rows = [r["predictors"].get(name) or {} for r in rungs]
        est = [row.get("spearman") for row in rows]
        ci = [row.get("spearman_ci") or [None, None] for row in rows]
        fig.add_trace(go.Scatter(
            x=names, y=est, mode="lines+markers", name=name,
            line=dict(color=LADDER_COLORS.get(name, MUTED), width=3 if name == "smash" else 1.5),
            error_y=dict(type="data", array=[(c[1] - e) if None not in (c[1], e) else 0 for c, e in zip(ci, est, strict=True)],
                         arrayminus=[(e - c[0]) if None not in (c[0], e) else 0 for c, e in zip(ci, est, strict=True)],
                         thickness=1, width=3),
            hovertemplate=f"{name}: Spearman %{{y:.3f}} at %{{x}}<extra></extra>"))
    points = [row.get("spearman") for r in rungs for row in r["predictors"].values()] + lo
    low = min([-0.6] + [v - 0.05 for v in points if v is not None])  # every estimate in view
    fig.update_yaxes(title_text="Spearman with retrained validation error", range=[max(low, -1.05), 1])
    fig.update_xaxes(title_text="training budget of the truth")
    return _layout(fig, height=420)


def ranker_bars(summary: dict) -> go.Figure:
    """The learned ranker's leave-one-out Spearman beside each single predictor's on the
    same retrained archs, each with its 95% interval (core/ranker.py RankerFit.summary)."""
    rows = {name: [v if v is not None else float("nan") for v in row] for name, row in
            {"learned (leave-one-out)": summary["loo_spearman"], **summary["single_spearman"]}.items()}
    names = list(rows)
    est = [rows[n][0] for n in names]
    fig = go.Figure(go.Bar(
        x=names, y=est, marker_color=[LADDER_COLORS["learned"] if n.startswith("learned") else
                                      SCORE_COLOR if n == "smash" else MUTED for n in names],
        error_y=dict(type="data", array=[rows[n][2] - rows[n][0] for n in names],
                     arrayminus=[rows[n][0] - rows[n][1] for n in names]),
        hovertemplate="%{x}: Spearman %{y:.3f}<extra></extra>"))
    fig.update_yaxes(title_text="Spearman with true error", range=[-1, 1])
    return _layout(fig, height=300)
