"""How far can the SMASH score be trusted? The study that answers it, end to end, on a truth ladder.

On a demo-size Fashion-MNIST run: train the HyperNet, score a random sample, pick --k archs
spread over the score range (full scores only), keep every --every-th of them, and retrain
each with two seeds, long (whole passes, --epochs such as 1,2,4,8: one retrain of the last,
the truth read after each) and short (--short EPOCHSxSTEPS, the truth of earlier studies).
Then each study arch's SMASH score by error and by loss over --score-draws draws, and, for
the SMASH score and trivial predictors beside it (params, FLOPs, the NASWOT training-free
proxy, the rank average of SMASH and FLOPs, the ranker learned from these retrains judged
leave-one-out), Spearman and Kendall with bootstrap 95% intervals at every rung of the
truth, the SMASH score's partial Spearman given FLOPs and given params, and each rung's
seed-to-seed ceiling. With variants (the default), ten HyperNets: the stability of the score
across HyperNet seeds, ablations, longer training and larger HyperNets.

It runs on the library: runs, retrains and HyperNets are engine jobs (an embedded engine
with --workers slots), scores come from engine.scoring.refine, the arithmetic from
core/study.py. Every stage resumes (runs, scores and retrains are keyed and checkpointed;
rescored archs are kept in the workdir), so a killed study continues where it stopped.
The per-arch numbers go to --csv (docs/fidelity-archs.csv), and `--from-csv FILE` rebuilds
every figure from that file alone. The last line printed is a JSON object; --out writes it
(docs/fidelity.json), --png the ladder plot (docs/img/fidelity-ladder.png).

    python bench/fidelity.py --workdir runs/fidelity --csv docs/fidelity-archs.csv \\
        --out docs/fidelity.json --png docs/img/fidelity-ladder.png              # the full study
    python bench/fidelity.py --from-csv docs/fidelity-archs.csv --out /tmp/f.json  # figures only
    python bench/fidelity.py --workdir /tmp/f --config configs/smoke.toml --k 6 --sample 12 \\
        --steps 40 --epochs 1,2 --short 1x5 --no-variants                        # a smoke run
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]  # bench/profile.py is no stdlib `profile`
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from app.charts import ladder as ladder_chart  # noqa: E402
from bench.correlation import render_png  # noqa: E402
from core.arch import Arch  # noqa: E402
from core.config import Config, load_config  # noqa: E402
from core.ids import run_id_for, study_id_for  # noqa: E402
from core.jobs import PREDICTORS, TrainJob  # noqa: E402
from core.metric import SCORE_METRICS  # noqa: E402
from core.rankstats import bootstrap_ci, correlation_table, spearman  # noqa: E402
from core.search import SEARCH_STAGES  # noqa: E402
from core.study import best_sort, compact, indifference_zone, ladder_text, rung_metrics  # noqa: E402
from engine.data.batches import normalize  # noqa: E402
from engine.data.splits import load_data  # noqa: E402
from engine.jobs.supervisor import run_until_done  # noqa: E402
from engine.model import find_checkpoint  # noqa: E402
from engine.scoring.proxy import naswot  # noqa: E402
from engine.scoring.refine import rescore  # noqa: E402
from engine.scoring.scorer import Scorer  # noqa: E402
from engine.search import score_run  # noqa: E402
from engine.study import StudyPlan, gather, pick_archs, queue_retrains  # noqa: E402
from engine.train.hypernet import hypernet_step  # noqa: E402
from store import Store, store_path  # noqa: E402

LARGER = {"growth": [16, 16, 16], "layers": [6, 8, 4]}
VARIANTS = {
    "HyperNet seed 1": {"seed": 1},
    "encoding squeezed into the first conv (dense_input = false)": {"hypernet": {"dense_input": False}},
    "per-channel weight norm (weight_norm = channel)": {"hypernet": {"weight_norm": "channel"}},
    "soft width prior (width_prior = soft)": {"space": {"width_prior": "soft"}},
    "HyperNet trained twice as long (2 x --steps)": {"steps_x": 2},
    "HyperNet trained 8 times as long (8 x --steps)": {"steps_x": 8},
    "larger HyperNet (growth 16, layers 6-8-4)": {"hypernet": LARGER},
    "larger HyperNet, seed 1": {"seed": 1, "hypernet": LARGER},
    "largest HyperNet (stem 16, growth 32, layers 8-10-4)":
        {"hypernet": {"stem": 16, "growth": [32, 32, 32], "layers": [8, 10, 4]}},
}
"""The stability run and the ablations and levers, one HyperNet each: a second seed; three
method changes of the ranking work put back to their old values; longer training and
larger HyperNets, to see whether more HyperNet makes a better ranking."""
MAIN = "as built"
SEEDS = [0, 1]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------ the runs and the archs

def study_config(base: Config, steps: int, sample: int) -> Config:
    """The run's config: the demo's, training `steps` steps, scoring a plain random sample.

    Every scoring setting the study relies on is pinned here, so the study's run ids (which
    hash the whole config) stay the same when the demo's own scoring settings change."""
    return base.replace(name="fidelity", train={"steps": steps},
                        score={"archs": sample, "metric": "error", "perturb": 0, "chain": 0, "probe": 0,
                               "race_top": 0, "race_max_draws": 8, "halving_min": 0})


def variant_config(cfg: Config, change: dict) -> Config:
    change = dict(change)
    if "steps_x" in change:
        change["train"] = {"steps": change.pop("steps_x") * cfg.train.steps}
    return cfg.replace(**change)


def train_runs(cfgs: dict[str, Config], workdir: Path, store: Store, workers: int) -> dict[str, str]:
    """Every config's HyperNet trained (or resumed) as engine jobs, `workers` at once."""
    todo = [c for c in cfgs.values() if (store.get_run(run_id_for(c)) or {}).get("status") != "done"]
    jobs = [store.enqueue_job(TrainJob.kind, TrainJob(config_data=c.to_dict(), run_id=run_id_for(c)).to_params())
            for c in todo]
    t0 = time.perf_counter()
    run_until_done(workdir, store, jobs, slots=workers)
    failed = [j for j in jobs if store.get_job(j)["status"] != "done"]
    if failed:
        raise SystemExit(f"HyperNet training failed: {[store.get_job(j)['error'] for j in failed]}")
    log(f"{len(cfgs)} HyperNet(s) trained ({time.perf_counter() - t0:.0f} s)")
    return {name: run_id_for(c) for name, c in cfgs.items()}


def study_archs(workdir: Path, store: Store, run_id: str, k: int) -> list[str]:
    """The study's archs, picked once over the run's score range and kept in the workdir:
    a rerun must retrain none anew, even if the run's board has changed since."""
    kept = workdir / f"picked-{run_id}-k{k}.json"
    if kept.exists():
        return json.loads(kept.read_text())
    arch_ids = pick_archs(store, run_id, k)
    kept.write_text(json.dumps(arch_ids))
    return arch_ids


def retrain(store: Store, workdir: Path, run: dict, arch_ids: list[str], epochs: int, cap: int,
            rungs: tuple[int, ...], workers: int, queue: bool = True) -> pd.DataFrame:
    """Both seeds of every arch retrained for `epochs` epochs (capped at `cap` steps each;
    0: whole passes) as engine retrain jobs, and the truth read after each rung.
    `queue` False: only what is already retrained (a ladder other workers are still running)."""
    if not queue:
        return gather(store, run["run_id"], arch_ids, epochs, SEEDS, cap, rungs)
    plan = StudyPlan(study_id_for(run["run_id"], arch_ids, epochs, 0, len(SEEDS), cap), run, arch_ids, epochs,
                     SEEDS, cap, rungs)
    jobs = queue_retrains(store, plan)
    t0 = time.perf_counter()
    run_until_done(workdir, store, jobs, slots=workers)
    log(f"{len(jobs)} retrains of {epochs} epochs{f' x {cap} steps' if cap else ''} run "
        f"({time.perf_counter() - t0:.0f} s; {len(arch_ids) * len(SEEDS) - len(jobs)} already done)")
    return gather(store, run["run_id"], arch_ids, epochs, SEEDS, cap, rungs)


# ------------------------------------------------------------------ scores of the study archs

def cached(cache: Path, archs: list[Arch], score: Callable[[list[Arch]], dict[str, list[float]]]) -> dict:
    """Each arch's (mean, draws) from the JSON file `cache`, computing the missing ones with
    `score` and writing the file back whole, atomically: a rerun scores nothing twice."""
    done = json.loads(cache.read_text()) if cache.exists() else {}
    todo = [a for a in archs if a.id not in done]
    if todo:
        done.update(score(todo))
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(json.dumps(done))
        tmp.replace(cache)
    return {a.id: done[a.id] for a in archs}


def scored(workdir: Path, run_id: str, archs: list[Arch], draws: int, metric: str, bn: str | None = None) -> dict:
    """engine.scoring.refine.rescore, kept in the workdir: arch id -> [mean, draws]."""
    tag = f".{bn}" if bn else ""
    step = find_checkpoint(workdir, run_id).step
    return cached(workdir / "rescored" / f"{run_id}.s{step}.d{draws}.{metric}{tag}.json", archs,
                  lambda todo: {a: [t.mean, t.n] for a, t in rescore(
                      workdir, run_id, todo, draws, metric=metric, bn=bn, device=torch.device("cpu")).items()})


def finetuned(workdir: Path, run_id: str, archs: list[Arch], steps: int, draws: int, metric: str) -> dict:
    """Scores after `steps` SMASH steps on each arch alone (HyperNet and shared weights, Adam
    as in training, the run's batch size, un-augmented training images), each from the run's
    last checkpoint: does letting the one-shot model adapt to an arch rank archs more like
    training them does? Kept in the workdir like `scored`."""
    model = find_checkpoint(workdir, run_id).model()

    def score(todo: list[Arch]) -> dict[str, list[float]]:
        data = load_data(model.cfg.data, model.cfg.seed)
        train_x, train_y = normalize(data.train_x, data.mean, data.std), data.train_y
        start, out = copy.deepcopy(model.state_dict()), {}
        for a in todo:
            model.load_state_dict(start)
            model.train()
            opt = model.configure_optimizer()
            gen = torch.Generator().manual_seed(int(a.id[:8], 16))
            for _ in range(steps):
                j = torch.randint(0, len(train_y), (model.cfg.train.batch_size,), generator=gen)
                hypernet_step(model, opt, a, train_x[j], train_y[j], model.noise(a, gen))
            scorer = Scorer.for_model(model, data, torch.device("cpu"), metric=metric)
            out[a.id] = [scorer.score(a, draws=draws)[0], draws]
        return out

    return cached(workdir / "rescored" / f"ft-{run_id}-k{steps}-lr{model.cfg.train.lr}-{metric}.json", archs, score)


def score_columns(workdir: Path, runs: dict[str, str], archs: list[Arch], args: argparse.Namespace,
                  search_draws: int) -> dict[str, list]:
    """Every score column of the CSV: `{hypernet}|{metric}` means and draws for each
    HyperNet, and the main HyperNet's variants of scoring (as the search scored them, batch
    norm recalibrated, fine-tuned)."""
    cols: dict[str, list] = {}

    def put(name: str, found: dict) -> None:
        cols[f"{name}|mean"] = [found[a.id][0] for a in archs]
        cols[f"{name}|draws"] = [found[a.id][1] for a in archs]

    for hn, run_id in runs.items():
        for metric in SCORE_METRICS:
            put(f"{hn}|{metric}", scored(workdir, run_id, archs, args.score_draws, metric))
    main = runs[MAIN]
    put(f"{MAIN}, as the search scored them|error", scored(workdir, main, archs, search_draws, "error"))
    for metric in SCORE_METRICS:
        put(f"{MAIN}, batch norm recalibrated|{metric}",
            scored(workdir, main, archs, args.score_draws, metric, "recalibrated"))
    for steps in args.finetune_steps:
        put(f"{MAIN}, fine-tuned {steps} steps on each arch|{args.metric}",
            finetuned(workdir, main, archs, steps, args.score_draws, args.metric))
    log(f"{len(archs)} archs scored by {len(runs)} HyperNet(s) over {args.score_draws} draws")
    return cols


# ------------------------------------------------------------------ collecting the per-arch numbers

def collect(args: argparse.Namespace) -> tuple[pd.DataFrame, dict]:
    """Run (or resume) every stage; the per-arch frame the CSV holds and its metadata."""
    t_start = time.perf_counter()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    store = Store(store_path(workdir))
    cfg = study_config(load_config(args.config), args.steps, args.sample)
    cfgs = {MAIN: cfg} | ({} if args.no_variants else {n: variant_config(cfg, c) for n, c in VARIANTS.items()})
    runs = train_runs({MAIN: cfg}, workdir, store, args.workers)
    score_run(workdir, store, runs[MAIN])
    picked = study_archs(workdir, store, runs[MAIN], args.k)
    planned = arch_ids = picked[::args.every]
    run = store.get_run(runs[MAIN])
    queue = not args.done_only
    frame = retrain(store, workdir, run, arch_ids, max(args.epochs), 0, tuple(args.epochs), args.workers, queue)
    if args.done_only:  # the archs every seed has finished the top rung for
        done = frame[[f"val_error_s{s}_e{max(args.epochs)}" for s in SEEDS]].notna().all(axis=1)
        if done.sum() < 4:
            raise SystemExit(f"--done-only: {int(done.sum())} archs have finished every seed's "
                             f"{max(args.epochs)}-epoch retrain; the figures need at least 4")
        frame = frame[done].reset_index(drop=True)
        arch_ids = frame["arch_id"].tolist()
        log(f"--done-only: {len(arch_ids)} of the {len(planned)} planned archs are retrained")
    short_epochs, short_cap = args.short
    short = retrain(store, workdir, run, arch_ids, short_epochs, short_cap, (short_epochs,), args.workers, queue)
    if short[[f"val_error_s{s}_e{short_epochs}" for s in SEEDS]].notna().all(axis=None):
        for s in SEEDS:  # a ladder still running has no short rung until it is done for all
            frame[f"val_error_s{s}_short"] = short[f"val_error_s{s}_e{short_epochs}"]
            frame[f"seconds_s{s}_short"] = short[f"seconds_s{s}_e{short_epochs}"]
    runs |= train_runs({n: c for n, c in cfgs.items() if n != MAIN}, workdir, store, args.workers) if len(cfgs) > 1 else {}
    archs = [Arch.from_dict(store.arch(runs[MAIN], a)["arch"]) for a in arch_ids]
    data = load_data(cfg.data, cfg.seed)
    frame["naswot"] = [naswot(a, data) for a in archs]
    for name, values in score_columns(workdir, runs, archs, args, cfg.score.draws).items():
        frame[name] = values
    board = store.leaderboard(runs[MAIN], limit=10**9, stages=list(SEARCH_STAGES))
    ranks = {a: i + 1 for i, a in enumerate(board.sort_values(["score_mean", "arch_id"])["arch_id"])}
    frame["rank_in_sample"] = [ranks.get(a) for a in arch_ids]
    frame["arch_json"] = [a.to_json() for a in archs]
    spe = -(-len(data.train_y) // cfg.retrain.batch_size)
    meta = {"run_id": runs[MAIN], "runs": runs, "sample": args.sample, "k_picked": args.k, "every": args.every,
            "hypernet_steps": args.steps, "metric": args.metric, "score_draws": args.score_draws,
            "search_draws": cfg.score.draws, "val_images_per_draw": cfg.score.val_images,
            "batch_size": cfg.retrain.batch_size, "steps_per_epoch": spe, "epochs": list(args.epochs),
            "short": {"epochs": short_epochs, "steps_per_epoch": short_cap}, "seeds": len(SEEDS),
            "study_id": study_id_for(runs[MAIN], planned, max(args.epochs), 0, len(SEEDS), 0),
            "archs_planned": len(planned),
            "seconds": round(time.perf_counter() - t_start)}
    return frame.drop(columns=["status"], errors="ignore"), meta


def write_csv(frame: pd.DataFrame, meta: dict, path: Path) -> None:
    """One row per arch; the first line is `# ` and the study's metadata as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    frame.to_csv(buf, index=False)  # every float as Python writes it: it reads back exactly
    path.write_text("# " + json.dumps(meta) + "\n" + buf.getvalue())


def read_csv(path: Path) -> tuple[pd.DataFrame, dict]:
    text = Path(path).read_text()
    first, rest = text.split("\n", 1)
    if not first.startswith("# "):
        raise SystemExit(f"{path}: not a fidelity CSV (its first line must be '# ' and the metadata)")
    # Read back bit for bit, so that ties (and so ranks) are the ones the live study saw.
    return pd.read_csv(io.StringIO(rest)), json.loads(first[2:])


# ------------------------------------------------------------------ the figures

def rung_frame(frame: pd.DataFrame, tag: str, metric: str) -> pd.DataFrame:
    """The frame with the truth of rung `tag` ("e8", "short") and the main score in `metric`."""
    out = frame.assign(score_mean=frame[f"{MAIN}|{metric}|mean"])
    for s in SEEDS:
        out[f"val_error_s{s}"] = frame[f"val_error_s{s}_{tag}"]
    return out.assign(val_error=out[[f"val_error_s{s}" for s in SEEDS]].mean(axis=1, skipna=False))


def rungs(frame: pd.DataFrame, meta: dict, n_boot: int) -> list[dict]:
    """Every predictor at every rung of the truth, cheapest first, with what each cost."""
    spe, batch = meta["steps_per_epoch"], meta["batch_size"]
    short = meta["short"]
    steps = short["epochs"] * (short["steps_per_epoch"] or spe)
    ladder = [("short", f"{steps} steps", short["epochs"], steps)]
    ladder += [(f"e{e}", f"{e} epoch{'s' if e > 1 else ''}", e, e * spe) for e in meta["epochs"]]
    out = []
    for tag, name, epochs, n_steps in ladder:
        if f"val_error_s0_{tag}" not in frame:
            continue
        rf = rung_frame(frame, tag, meta["metric"])
        seconds = frame[[f"seconds_s{s}_{tag}" for s in SEEDS]].to_numpy(float)
        out.append({"name": name, "epochs": epochs, "steps": n_steps, "images": n_steps * batch,
                    "seconds_per_retrain": round(float(np.nanmean(seconds)), 1),
                    "retrain_hours": round(float(np.nansum(seconds)) / 3600, 2),
                    **rung_metrics(rf, list(PREDICTORS), SEEDS, n_boot=n_boot)})
    return out


def ablations(frame: pd.DataFrame, truth: np.ndarray, k: int, n_boot: int) -> list[dict]:
    """One row per score column (HyperNet, metric) against the top rung's truth."""
    rows = []
    for col in [c for c in frame.columns if c.endswith("|mean")]:
        variant, metric, _ = col.split("|")
        rows.append({"variant": variant, "metric": metric,
                     **compact(correlation_table(frame[col].to_numpy(float), truth, k, n_boot=n_boot))})
    return rows


def zscore(x: np.ndarray) -> np.ndarray:
    """Standardised, so that two HyperNets' scores weigh alike in their sum."""
    return (x - x.mean()) / (x.std() or 1.0)


def hypernet_figures(frame: pd.DataFrame, names: list[str], truth: np.ndarray, metric: str, k: int,
                     n_boot: int) -> dict:
    """Stability across HyperNet seeds, the HyperNets' agreement and consensus, loss against
    error HyperNet by HyperNet, and what the truth and the consensus reward (`names`: the
    HyperNets, the main one first)."""
    score = {m: [frame[f"{n}|{m}|mean"].to_numpy(float) for n in names] for m in SCORE_METRICS}
    gains = [spearman(lo, truth) - spearman(er, truth) for er, lo in zip(score["error"], score["loss"], strict=True)]
    out = {"loss_vs_error": {"hypernets": len(gains), "loss_better": int(sum(g > 0 for g in gains)),
                             "mean_gain": round(float(np.mean(gains)), 3), "gains": [round(float(g), 3) for g in gains]}}
    if len(names) < 2:
        return out
    main, again = score[metric][0], score[metric][names.index("HyperNet seed 1")]
    est, lo, hi = bootstrap_ci(spearman, main, again, n_boot=n_boot)
    out["stability"] = {"spearman_between_hypernet_seeds": round(est, 3), "ci": [round(lo, 3), round(hi, 3)],
                        "seed1_vs_truth": compact(correlation_table(again, truth, k, n_boot=n_boot))}
    out["smash_2_hypernets"] = compact(correlation_table(zscore(main) + zscore(again), truth, k, n_boot=n_boot))
    pairs = [spearman(a, b) for i, a in enumerate(score[metric]) for b in score[metric][i + 1:]]
    consensus = np.sum([zscore(v) for v in score[metric]], axis=0)
    out["hypernets"] = {"n": len(names), "pairwise_spearman_mean": round(float(np.mean(pairs)), 3),
                        "pairwise_spearman_range": [round(float(min(pairs)), 3), round(float(max(pairs)), 3)],
                        "mean_vs_truth": compact(correlation_table(consensus, truth, k, n_boot=n_boot))}
    out["rewards"] = rewards(frame, truth, consensus)
    return out


def traits(arch: Arch) -> dict[str, float]:
    """Plain counts of an arch's make-up, to see what the truth and the SMASH score reward."""
    convs = [c for b in arch.blocks for layer in b.layers for path in layer.paths for c in path]
    layers = [layer for b in arch.blocks for layer in b.layers]
    return {"memory-bank width (units, summed over blocks)": sum(b.bank_units for b in arch.blocks),
            "convs": len(convs), "layers": len(layers),
            "layer width (units, summed)": sum(layer.units for layer in layers),
            "banks read (summed over layers)": sum(len(layer.reads) for layer in layers),
            "mean kernel area": float(np.mean([c.kernel[0] * c.kernel[1] for c in convs])),
            "mean dilation": float(np.mean([c.dilation[0] * c.dilation[1] for c in convs])),
            "mean groups": float(np.mean([c.groups for c in convs]))}


def rewards(frame: pd.DataFrame, truth: np.ndarray, consensus: np.ndarray) -> dict:
    """Spearman of each trait (and FLOPs, params) with the truth and with the HyperNets'
    consensus score: where the two differ, the SMASH score rewards what training does not."""
    table = {"flops": frame["flops"].to_numpy(float), "params": frame["params"].to_numpy(float)}
    rows = [traits(Arch.from_json(j)) for j in frame["arch_json"]]
    table.update({name: np.array([r[name] for r in rows], float) for name in rows[0]})

    def rho(v: np.ndarray, other: np.ndarray) -> float | None:
        r = spearman(v, other)
        return round(r, 3) if np.isfinite(r) else None  # a trait all archs share ranks nothing

    return {name: {"truth": rho(v, truth), "smash_consensus": rho(v, consensus)} for name, v in table.items()}


def analyse(frame: pd.DataFrame, meta: dict, n_boot: int = 2000) -> dict:
    """Every figure of the study from the per-arch frame and its metadata alone."""
    ladder = rungs(frame, meta, n_boot)
    top = ladder[-1]
    truth = rung_frame(frame, f"e{top['epochs']}", meta["metric"])["val_error"].to_numpy(float)
    best, share = best_sort(top)
    result = {"run_id": meta["run_id"], "study_id": meta["study_id"], "n_archs": len(frame),
              "sample": meta["sample"], "hypernet_steps": meta["hypernet_steps"], "k": top["k"],
              "truth": {"measure": "validation error (mean of the retrain seeds)", "rung": top["name"],
                        "epochs": top["epochs"], "steps_per_epoch": meta["steps_per_epoch"],
                        "seeds": meta["seeds"], "batch_size": meta["batch_size"]},
              "score": {"metric": meta["metric"], "draws": meta["score_draws"],
                        "val_images_per_draw": meta["val_images_per_draw"], "search_draws": meta["search_draws"]},
              **{name: top["predictors"].get(name) for name in PREDICTORS},
              "ceiling": top["ceiling"], "ceiling_ci": top["ceiling_ci"], "ceiling_of_mean": top["ceiling_of_mean"],
              "partial": top.get("partial"), "best_sort": {"predictor": best, "share_of_ceiling": share},
              "stability": None, "smash_2_hypernets": None, "hypernets": None, "rewards": None}
    result |= hypernet_figures(frame, list(meta["runs"]), truth, meta["metric"], top["k"], n_boot)
    result["ablations"] = ablations(frame, truth, top["k"], n_boot)
    result["rungs"] = ladder
    tag = f"e{top['epochs']}"
    result["delta"] = indifference_zone(frame[[f"val_error_s{s}_{tag}" for s in SEEDS]].to_numpy(float),
                                        {m: frame[f"{MAIN}|{m}|mean"].to_numpy(float) for m in SCORE_METRICS},
                                        n_boot=n_boot)
    result["seconds"] = meta["seconds"]
    return result


def report(result: dict) -> None:
    print(f"\n{result['n_archs']} archs; SMASH score by {result['score']['metric']} over "
          f"{result['score']['draws']} draws; Spearman with the truth after each budget [95% interval]")
    print(ladder_text(result["rungs"]))
    best = result["best_sort"]
    print(f"best sort at {result['truth']['rung']}: {best['predictor']}, {best['share_of_ceiling']} of the ceiling")
    zone = result["delta"]
    print(f"indifference zone from the truth's seed noise at {result['truth']['rung']} ({zone['archs']} archs, "
          f"seed sd {zone['seed_sd']}, truth IQR {zone['truth_iqr']}): "
          + ", ".join(f"{m} delta {zone[m]['delta']} {zone[m]['delta_ci']}" for m in SCORE_METRICS))
    for row in result["ablations"]:
        print(f"  {row['variant']:<66} {row['metric']:<6} Spearman {row['spearman']:+.3f} {row['spearman_ci']}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", default="runs/fidelity")
    p.add_argument("--config", default=str(ROOT / "configs" / "demo.toml"))
    p.add_argument("--steps", type=int, default=1500, help="HyperNet training steps per run")
    p.add_argument("--sample", type=int, default=240, help="random archs scored to pick from")
    p.add_argument("--k", type=int, default=48, help="archs picked over the score range")
    p.add_argument("--every", type=int, default=2, help="retrain every n-th picked arch (evenly spaced ranks)")
    p.add_argument("--epochs", type=lambda t: tuple(sorted({int(v) for v in t.split(",")})), default=(1, 2, 4, 8),
                   help="the truth ladder: one retrain of the largest, the truth read after each")
    p.add_argument("--short", type=lambda t: tuple(int(v) for v in t.split("x")), default=(4, 100),
                   help="EPOCHSxSTEPS of the short truth earlier studies used")
    p.add_argument("--workers", type=int, default=2, help="engine job slots for retrains and HyperNets")
    p.add_argument("--score-draws", type=int, default=10, help="draws of each study arch's SMASH score")
    p.add_argument("--finetune-steps", type=int, nargs="*", default=[20, 100],
                   help="rows scoring the run after this many SMASH steps on each arch alone")
    p.add_argument("--no-variants", action="store_true", help="skip the stability run and ablations")
    p.add_argument("--done-only", action="store_true",
                   help="queue no retrains: the figures from the archs already retrained for every seed "
                        "(a ladder that background workers are still running)")
    p.add_argument("--from-csv", default=None, help="rebuild every figure from this CSV alone")
    p.add_argument("--csv", default=None, help="write the per-arch numbers here (docs/fidelity-archs.csv)")
    p.add_argument("--out", default=None, help="write the figures here (docs/fidelity.json)")
    p.add_argument("--png", default=None, help="draw the truth ladder here (docs/img/fidelity-ladder.png)")
    p.add_argument("--markdown", default=None, help="write the ladder table here as Markdown")
    p.add_argument("--n-boot", type=int, default=2000)
    args = p.parse_args()
    args.metric = load_config(args.config).score.metric
    if args.from_csv:
        frame, meta = read_csv(Path(args.from_csv))
    else:
        frame, meta = collect(args)
        if args.csv:
            write_csv(frame, meta, Path(args.csv))
    result = analyse(frame, meta, args.n_boot)
    report(result)
    if args.png:
        render_png(ladder_chart(result["rungs"]), Path(args.png), width=900, height=460)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(ladder_text(result["rungs"], markdown=True) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
