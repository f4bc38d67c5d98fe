"""How far can the SMASH score be trusted? The study that answers it, end to end.

On a demo-size Fashion-MNIST run: train the HyperNet, score a random sample, pick K archs
spread over the score range (full scores only), retrain each with two seeds at a fixed
short budget (the truth: validation error, never test error), re-score each picked arch
over --score-draws draws by error and by loss, then report, for the SMASH score (in the
--config's metric) and for trivial predictors beside it (params, FLOPs, the NASWOT
training-free proxy), Spearman, Kendall and top-k precision with bootstrap 95% intervals, and the
truth's own seed-to-seed Spearman (the ceiling). Then the score's stability across two
HyperNet seeds, and one ablation row per method change, each a HyperNet trained with that
one setting put back to its old value and scoring the same archs against the same truth.

Every stage resumes (runs, scores and retrains are keyed and checkpointed), so a killed
study continues where it stopped. The last line printed is a JSON object; --out writes
the same figures to docs/fidelity.json, --png the scatter to docs/img/fidelity.png.

    python bench/fidelity.py --workdir runs/fidelity                 # the full study (~2.5 h, 2 cores)
    python bench/fidelity.py --workdir /tmp/f --k 6 --sample 12 --steps 40 --epochs 1 \\
        --steps-per-epoch 5 --config configs/smoke.toml --no-variants  # a smoke run
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from core.arch import Arch  # noqa: E402
from core.config import Config, load_config  # noqa: E402
from core.ids import study_id_for  # noqa: E402
from core.jobs import RetrainJob  # noqa: E402
from core.metric import SCORE_METRICS  # noqa: E402
from core.rankstats import bootstrap_ci, ceiling_of_mean, correlation_table, spearman  # noqa: E402
from engine.data.batches import normalize  # noqa: E402
from engine.data.splits import load_data  # noqa: E402
from engine.model import find_checkpoint  # noqa: E402
from engine.scoring.proxy import naswot  # noqa: E402
from engine.scoring.scorer import Scorer  # noqa: E402
from engine.search import score_run  # noqa: E402
from engine.study import gather, pick_archs, predictor_values, study_metrics  # noqa: E402
from engine.train.final import retrain_arch  # noqa: E402
from engine.train.hypernet import hypernet_step, train_hypernet  # noqa: E402
from store import Store, store_path  # noqa: E402

LARGER = {"growth": [16, 16, 16], "layers": [6, 8, 4]}
VARIANTS = {
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
"""Ablations and levers, one HyperNet each: the first three put one method change of the
ranking work back to its old value; the rest train longer or a larger HyperNet, to see
whether more HyperNet makes a better ranking. `steps_x` multiplies --steps."""

PREDICTORS = ["smash", "params", "flops", "naswot"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def study_config(args: argparse.Namespace) -> Config:
    """The run's config: the demo's, training `--steps` steps, scoring a plain random sample.

    Every scoring setting the study relies on is pinned here, so the study's run ids (which
    hash the whole config) stay the same when the demo's own scoring settings change."""
    base = load_config(args.config)
    return base.replace(name="fidelity", train={"steps": args.steps},
                        score={"archs": args.sample, "metric": "error", "perturb": 0, "chain": 0, "probe": 0,
                               "race_top": 0, "race_max_draws": 8, "halving_min": 0})


def train(cfg: Config, workdir: Path, store: Store) -> str:
    t0 = time.perf_counter()
    run_id = train_hypernet(cfg, workdir, store=store)["run_id"]
    log(f"HyperNet {run_id} trained ({time.perf_counter() - t0:.0f} s)")
    return run_id


def variant_config(cfg: Config, change: dict) -> Config:
    change = dict(change)
    if "steps_x" in change:
        change["train"] = {"steps": change.pop("steps_x") * cfg.train.steps}
    return cfg.replace(**change)


def study_archs(workdir: Path, store: Store, run_id: str, k: int) -> list[str]:
    """The study's archs, picked once over the run's score range and kept in the workdir:
    a rerun must retrain none anew, even if the run's board has changed since."""
    kept = workdir / f"picked-{run_id}-k{k}.json"
    if kept.exists():
        return json.loads(kept.read_text())
    arch_ids = pick_archs(store, run_id, k)
    kept.write_text(json.dumps(arch_ids))
    return arch_ids


def cached(cache: Path, archs: list[Arch], score: Callable[[list[Arch]], dict[str, float]]) -> np.ndarray:
    """Each arch's figure from the JSON file `cache`, computing the missing ones with `score`
    (arch id -> figure) and writing the file back whole, atomically."""
    done = json.loads(cache.read_text()) if cache.exists() else {}
    todo = [a for a in archs if a.id not in done]
    if todo:
        done.update(score(todo))
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(json.dumps(done))
        tmp.replace(cache)
    return np.array([done[a.id] for a in archs])


def rescore(workdir: Path, run_id: str, archs: list[Arch], draws: int | None = None,
            metric: str | None = None, bn: str | None = None) -> np.ndarray:
    """SMASH scores of `archs` with the last checkpoint of `run_id`: its own settings, over
    `draws` draws and by `metric` when given (draw 0 onwards, so the first ones are the
    search's own; the same figures as refining the search's scores to `draws`), with batch
    norm `bn` when given. Kept in the workdir, so a rerun of the study does not score them again."""
    ck = find_checkpoint(workdir, run_id)
    tag = f".{bn}" if bn and bn != "batch" else ""

    def score(todo: list[Arch]) -> dict[str, float]:
        model = ck.model()
        scorer = Scorer.for_model(model, load_data(model.cfg.data, model.cfg.seed), torch.device("cpu"),
                                  bn=bn, metric=metric)
        return {a.id: scorer.score(a, draws=draws or None)[0] for a in todo}

    return cached(workdir / "rescored" / f"{run_id}.s{ck.step}.d{draws or 0}.{metric or 'run'}{tag}.json", archs, score)


def finetuned(workdir: Path, run_id: str, archs: list[Arch], steps: int, draws: int,
              metric: str) -> np.ndarray:
    """SMASH scores after `steps` SMASH steps on each arch alone (HyperNet and shared weights,
    Adam as in training, the run's batch size, un-augmented training images), each arch from
    the run's last checkpoint: does letting the one-shot model adapt to an arch before
    scoring rank archs more like training them does? Kept in the workdir like `rescore`."""
    model = find_checkpoint(workdir, run_id).model()

    def score(todo: list[Arch]) -> dict[str, float]:
        data = load_data(model.cfg.data, model.cfg.seed)
        train_x, train_y = normalize(data.train_x, data.mean, data.std), data.train_y
        start = copy.deepcopy(model.state_dict())
        cpu, out = torch.device("cpu"), {}
        for a in todo:
            model.load_state_dict(start)
            model.train()
            opt = model.configure_optimizer()
            gen = torch.Generator().manual_seed(int(a.id[:8], 16))
            for _ in range(steps):
                j = torch.randint(0, len(train_y), (model.cfg.train.batch_size,), generator=gen)
                hypernet_step(model, opt, a, train_x[j], train_y[j], model.noise(a, gen))
            scorer = Scorer.for_model(model, data, cpu, metric=metric)
            out[a.id] = scorer.score(a, draws=draws)[0]
        return out

    return cached(workdir / "rescored" / f"ft-{run_id}-k{steps}-lr{model.cfg.train.lr}-{metric}.json", archs, score)


def zscore(x: np.ndarray) -> np.ndarray:
    """Standardised, so that two HyperNets' scores weigh alike in their sum."""
    return (x - x.mean()) / (x.std() or 1.0)


def agreement(scores: list[np.ndarray], truth: np.ndarray, k: int) -> dict:
    """How far the HyperNets of the study (as built, seed 1, each variant) agree with one
    another on the same archs (mean and range of their pairwise Spearman), and their
    standardised mean against the truth."""
    pairs = [spearman(a, b) for i, a in enumerate(scores) for b in scores[i + 1:]]
    joint = np.sum([zscore(s) for s in scores], axis=0)
    return {"n": len(scores), "pairwise_spearman_mean": round(float(np.mean(pairs)), 3),
            "pairwise_spearman_range": [round(float(min(pairs)), 3), round(float(max(pairs)), 3)],
            "mean_vs_truth": compact(correlation_table(joint, truth, k, n_boot=2000))}


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


def what_they_reward(archs: list[Arch], frame: pd.DataFrame, truth: np.ndarray,
                     consensus: np.ndarray) -> dict:
    """Spearman of each trait (and FLOPs, params) with the truth and with the HyperNets'
    consensus score: where the two differ, the SMASH score rewards what training does not."""
    table = {"flops": frame["flops"].to_numpy(float), "params": frame["params"].to_numpy(float)}
    rows = [traits(a) for a in archs]
    table.update({name: np.array([r[name] for r in rows], float) for name in rows[0]})
    def rho(v: np.ndarray, other: np.ndarray) -> float | None:
        r = spearman(v, other)
        return round(r, 3) if np.isfinite(r) else None  # a trait all archs share ranks nothing

    return {name: {"truth": rho(v, truth), "smash_consensus": rho(v, consensus)} for name, v in table.items()}


def metric_pairs(by_metric: dict[str, list[np.ndarray]], truth: np.ndarray) -> dict:
    """The loss score against the error score, HyperNet by HyperNet (the same HyperNet and
    draws, so the pair differs only in the metric): how often loss ranks closer to the truth,
    and its mean gain in Spearman."""
    gains = [spearman(lo, truth) - spearman(er, truth)
             for er, lo in zip(by_metric["error"], by_metric["loss"], strict=True)]
    return {"hypernets": len(gains), "loss_better": int(sum(g > 0 for g in gains)),
            "mean_gain": round(float(np.mean(gains)), 3), "gains": [round(float(g), 3) for g in gains]}


def train_all(cfgs: list[Config], workdir: Path, workers: int) -> list[str]:
    """Train every config's HyperNet, in `workers` processes of one thread each (a demo-size
    HyperNet gains little from a second thread, so two runs side by side finish sooner)."""
    if workers == 1 or len(cfgs) == 1:
        store = Store(store_path(workdir))
        return [train(c, workdir, store) for c in cfgs]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers) as pool:
        return pool.starmap(_train_one, [(c.to_dict(), str(workdir)) for c in cfgs])


def _train_one(cfg_dict: dict, workdir: str) -> str:
    os.environ["SMASH_MAX_THREADS"] = "1"
    torch.set_num_threads(1)
    return train(Config.from_dict(cfg_dict), Path(workdir), Store(store_path(Path(workdir))))


def retrain_all(cfg: Config, workdir: Path, run_id: str, archs: list[Arch],
                args: argparse.Namespace) -> None:
    """Every (seed, arch) retrain, in `--workers` processes of one thread each: on a small CPU,
    two one-thread processes get more done than one two-thread process, and keep doing so
    when something else runs beside them."""
    todo = [(s, a.to_json()) for s in range(args.seeds) for a in archs]
    shards = [todo[i::args.workers] for i in range(args.workers)]
    job = (cfg.to_dict(), str(workdir), run_id, args.epochs, args.steps_per_epoch)
    t0 = time.perf_counter()
    if args.workers == 1:
        _retrain_shard(job, shards[0])
    else:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(args.workers) as pool:
            pool.starmap(_retrain_shard, [(job, shard) for shard in shards])
    log(f"retrained {len(todo)} ({time.perf_counter() - t0:.0f} s)")


def _retrain_shard(job: tuple, shard: list[tuple[int, str]]) -> None:
    """One worker's share of the retrains; each resumes from its checkpoints if run again."""
    cfg_dict, workdir, run_id, epochs, steps_per_epoch = job
    if multiprocessing.parent_process() is not None:
        torch.set_num_threads(1)
    cfg = Config.from_dict(cfg_dict)
    store = Store(store_path(workdir))
    data = load_data(cfg.data, cfg.seed)
    for i, (seed, arch_json) in enumerate(shard):
        retrain_arch(cfg, Arch.from_json(arch_json), Path(workdir), store, RetrainJob(epochs=epochs, seed=seed, max_steps_per_epoch=steps_per_epoch), run_id=run_id, data=data)
        if (i + 1) % 8 == 0:
            log(f"a worker retrained {i + 1}/{len(shard)}")


def compact(table: list[dict]) -> dict:
    """spearman, spearman_ci, kendall, kendall_ci, topk_precision from a correlation table."""
    by = {row["metric"].split()[0].lower(): row for row in table}
    topk = next(row for row in table if row["metric"].startswith("top-"))
    r = lambda v: None if v is None or not np.isfinite(v) else round(float(v), 3)  # noqa: E731
    return {"spearman": r(by["spearman"]["estimate"]),
            "spearman_ci": [r(by["spearman"]["ci_low"]), r(by["spearman"]["ci_high"])],
            "kendall": r(by["kendall"]["estimate"]),
            "kendall_ci": [r(by["kendall"]["ci_low"]), r(by["kendall"]["ci_high"])],
            "topk_precision": r(topk["estimate"]), "topk": topk["metric"]}


def render(frame: pd.DataFrame, predictors: dict, out: Path) -> None:
    """Each predictor against the truth, one panel each, as a PNG (headless Chromium)."""
    from plotly.subplots import make_subplots

    from bench.correlation import render_png

    names = list(predictors)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.05)
    for i, name in enumerate(names, start=1):
        fig.add_scatter(x=predictors[name], y=100 * frame["val_error"], mode="markers", row=1, col=i,
                        marker={"size": 6, "color": "#4C78A8"}, showlegend=False)
        fig.update_xaxes(title_text="lower predicts better", row=1, col=i)
    fig.update_yaxes(title_text="retrained validation error (%)", row=1, col=1)
    fig.update_layout(width=320 * len(names), height=380, margin={"l": 60, "r": 20, "t": 40, "b": 50},
                      template="plotly_white")
    render_png(fig, out, width=320 * len(names), height=380)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", default="runs/fidelity")
    p.add_argument("--config", default=str(ROOT / "configs" / "demo.toml"))
    p.add_argument("--steps", type=int, default=1500, help="HyperNet training steps per run")
    p.add_argument("--sample", type=int, default=240, help="random archs scored to pick from")
    p.add_argument("--k", type=int, default=48, help="archs retrained")
    p.add_argument("--seeds", type=int, default=2, help="retrain seeds per arch (2 give the ceiling)")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--steps-per-epoch", type=int, default=100)
    p.add_argument("--workers", type=int, default=2, help="retrain processes (one thread each)")
    p.add_argument("--score-draws", type=int, default=10,
                   help="draws of each study arch's SMASH score (the search gives it the config's few)")
    p.add_argument("--finetune-steps", type=int, nargs="*", default=[20, 100],
                   help="rows scoring the SMASH run after this many SMASH steps on each arch alone")
    p.add_argument("--no-variants", action="store_true", help="skip the stability run and ablations")
    p.add_argument("--out", default=None, help="write the figures here (e.g. docs/fidelity.json)")
    p.add_argument("--png", default=None, help="draw the predictors' scatter here")
    args = p.parse_args()

    t_start = time.perf_counter()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    store = Store(store_path(workdir))
    cfg = study_config(args)
    run_id = train(cfg, workdir, store)
    score_run(workdir, store, run_id)
    arch_ids = study_archs(workdir, store, run_id, args.k)
    archs = [Arch.from_dict(store.arch(run_id, a)["arch"]) for a in arch_ids]
    log(f"{len(archs)} archs picked over the score range of {store.score_count(run_id)}")
    retrain_all(cfg, workdir, run_id, archs, args)
    metric = load_config(args.config).score.metric
    search_scores = rescore(workdir, run_id, archs, cfg.score.draws, "error")
    scored = {m: rescore(workdir, run_id, archs, args.score_draws, m) for m in SCORE_METRICS}
    log(f"{len(archs)} archs scored over {args.score_draws} draws by {', '.join(SCORE_METRICS)}")

    seeds = list(range(args.seeds))
    frame = gather(store, run_id, arch_ids, args.epochs, seeds, args.steps_per_epoch)
    frame["score_mean"] = scored[metric]
    data = load_data(cfg.data, cfg.seed)
    by_id = dict(zip(arch_ids, archs, strict=True))
    values = predictor_values(frame, PREDICTORS, lambda a: naswot(by_id[a], data))
    metrics = study_metrics(frame, values, seeds, n_boot=2000)
    sid = study_id_for(run_id, arch_ids, args.epochs, 0, args.seeds, args.steps_per_epoch)
    store.upsert_study(sid, run_id=run_id, status="done", epochs=args.epochs, seed=0, arch_ids=arch_ids,
                       metrics=metrics)
    truth = frame["val_error"].to_numpy(float)
    k = metrics["k"]
    result = {"run_id": run_id, "study_id": sid, "n_archs": metrics["n"], "sample": args.sample,
              "truth": {"measure": "validation error (mean of the retrain seeds)", "epochs": args.epochs,
                        "steps_per_epoch": args.steps_per_epoch, "seeds": args.seeds,
                        "batch_size": cfg.retrain.batch_size},
              "hypernet_steps": args.steps, "k": k,
              "score": {"metric": metric, "draws": args.score_draws,
                        "val_images_per_draw": cfg.score.val_images, "search_draws": cfg.score.draws},
              **{name: compact(table) for name, table in metrics["predictors"].items()},
              **ceilings(metrics, args.seeds)}
    searched = f"as the search scored them ({cfg.score.draws} draws x {cfg.score.val_images} images)"

    def row(variant: str, m: str, scores: np.ndarray) -> dict:
        return {"variant": variant, "metric": m, **compact(correlation_table(scores, truth, k, n_boot=2000))}

    rows = [row(f"as built, {args.score_draws} draws", m, scored[m]) for m in SCORE_METRICS]
    rows.append(row(searched, "error", search_scores))
    for m in SCORE_METRICS:
        rows.append(row("as built, batch norm recalibrated per arch and draw", m,
                        rescore(workdir, run_id, archs, args.score_draws, m, "recalibrated")))
    for steps in args.finetune_steps:
        rows.append(row(f"as built, fine-tuned {steps} steps on each arch before scoring", metric,
                        finetuned(workdir, run_id, archs, steps, args.score_draws, metric)))
    by_metric = {m: [scored[m]] for m in SCORE_METRICS}  # per metric, one array per HyperNet

    if not args.no_variants:
        names = ["HyperNet seed 1", *VARIANTS]
        cfgs = [cfg.replace(seed=1), *(variant_config(cfg, c) for c in VARIANTS.values())]
        runs = dict(zip(names, train_all(cfgs, workdir, args.workers), strict=True))
        for name in names:
            for m in SCORE_METRICS:
                scores = rescore(workdir, runs[name], archs, args.score_draws, m)
                by_metric[m].append(scores)
                rows.append(row(name, m, scores))
        again = by_metric[metric][1]
        both = zscore(values["smash"]) + zscore(again)
        est, lo, hi = bootstrap_ci(spearman, values["smash"], again, n_boot=2000)
        result["stability"] = {"spearman_between_hypernet_seeds": round(est, 3),
                               "ci": [round(lo, 3), round(hi, 3)],
                               "seed1_vs_truth": compact(correlation_table(again, truth, k, n_boot=2000))}
        result["smash_2_hypernets"] = compact(correlation_table(both, truth, k, n_boot=2000))
        result["hypernets"] = agreement(by_metric[metric], truth, k)
        consensus = np.sum([zscore(v) for v in by_metric[metric]], axis=0)
        result["rewards"] = what_they_reward(archs, frame, truth, consensus)
    result["loss_vs_error"] = metric_pairs(by_metric, truth)
    result["ablations"] = rows
    result["seconds"] = round(time.perf_counter() - t_start)
    report(result)
    if args.png:
        render(frame, values, Path(args.png))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


def ceilings(metrics: dict, seeds: int) -> dict:
    """The truth's seed-to-seed Spearman r (one seed against another), and what it implies for
    the mean of `seeds` seeds: its reliability 2r/(1+r) for two (Spearman-Brown), and the
    square root of that, about the highest Spearman a perfect predictor can expect against it."""
    if not metrics["ceiling"]:
        return {"ceiling": None, "ceiling_ci": None}
    r = metrics["ceiling"]["spearman"]
    out = {"ceiling": round(r, 3), "ceiling_ci": [round(v, 3) for v in metrics["ceiling"]["spearman_ci"]]}
    of_mean = ceiling_of_mean(r, seeds)
    if of_mean is not None:
        out["ceiling_of_mean"] = round(of_mean, 3)
    return out


def report(result: dict) -> None:
    print(f"\n{result['n_archs']} archs, truth = {result['truth']['measure']} after "
          f"{result['truth']['epochs']} x {result['truth']['steps_per_epoch']} steps")
    print(f"{'predictor':<10} {'Spearman':>9} {'95% CI':>17} {'Kendall':>8} {'top-k prec':>10}")
    for name in PREDICTORS:
        r = result[name]
        print(f"{name:<10} {r['spearman']:>+9.3f} [{r['spearman_ci'][0]:+.3f}, {r['spearman_ci'][1]:+.3f}] "
              f"{r['kendall']:>+8.3f} {r['topk_precision']:>10.3f}")
    if result.get("ceiling") is not None:
        print(f"ceiling (seed-to-seed Spearman of the truth): {result['ceiling']:+.3f} {result['ceiling_ci']}; "
              f"a perfect predictor against the seeds' mean: about {result.get('ceiling_of_mean', float('nan')):+.3f}")
    if "stability" in result:
        s = result["stability"]
        print(f"SMASH score across two HyperNet seeds: Spearman {s['spearman_between_hypernet_seeds']:+.3f} "
              f"{s['ci']}; seed 1 vs truth {s['seed1_vs_truth']['spearman']:+.3f}; "
              f"the two HyperNets' mean vs truth {result['smash_2_hypernets']['spearman']:+.3f}")
        h = result["hypernets"]
        print(f"{h['n']} HyperNets agree pairwise at Spearman {h['pairwise_spearman_mean']:+.3f} "
              f"{h['pairwise_spearman_range']}; their mean vs truth {h['mean_vs_truth']['spearman']:+.3f}")
    if "ablations" in result:
        for row in result["ablations"]:
            print(f"  {row['variant']:<62} {row['metric']:<6} Spearman {row['spearman']:+.3f} {row['spearman_ci']}")
    if "rewards" in result:
        print("Spearman of each trait with the truth and with the HyperNets' consensus score:")
        for name, r in result["rewards"].items():
            print(f"  {name:<48} truth {r['truth']}  SMASH {r['smash_consensus']}")
    pairs = result["loss_vs_error"]
    print(f"loss ranks closer to the truth than error with {pairs['loss_better']} of {pairs['hypernets']} "
          f"HyperNets (mean gain in Spearman {pairs['mean_gain']:+.3f})")


if __name__ == "__main__":
    main()
