"""Finding what a user names: a workdir's store, a run, an architecture.

The listing commands, `smash graph` and the notebook API all take the same words (a run
id or none for the latest; an arch id, `best`, or an arch JSON file) and must fail the
same way: one `NotFound` whose message says what is missing and how to make it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.arch import Arch, ArchError, check_arch, read_arch_file
from core.config import Config, SpaceConfig
from core.errors import NotFound
from core.jobs import CorrelateJob
from core.size import count_flops, count_params
from store import Store, store_path

SCORE_FIELDS = ("score_mean", "score_std", "score_lo", "score_hi", "draws", "val_images", "partial",
                "race_rounds", "stage", "checkpoint_step")


def open_store(workdir: str | Path, create: bool = False) -> Store:
    """The workdir's store. Only commands that start work may create it; a reader never does."""
    path = store_path(workdir)
    if not create and not path.is_file():
        raise NotFound(f"no runs in {workdir} (no SMASH store there yet); start one with "
                       "`smash train --config FILE`")
    return Store(path)


def run_id(store: Store, wanted: str | None = None, where: str | Path | None = None) -> str:
    """`wanted` if the store has that run, else the latest run. `where` names the store in errors."""
    place = where or "the store"
    if wanted:
        if store.get_run(wanted) is None:
            raise NotFound(f"no run {wanted!r} in {place}")
        return wanted
    latest = store.latest_run_id()
    if latest is None:
        raise NotFound(f"no runs in {place}; start one with `smash train --config FILE`")
    return latest


def arch_id(store: Store, run: str, ref: str) -> str:
    """The arch id `ref` names in `run`: `best` is the top of the leaderboard."""
    if ref != "best":
        return ref
    top = store.leaderboard(run, limit=1)
    if top.empty:
        raise NotFound(f"run {run} has no scored architectures; run `smash score` first")
    return str(top.iloc[0]["arch_id"])


def arch_from_file(path: Path, space: SpaceConfig | None = None) -> Arch:
    """The arch in a JSON file (read within the size and encoding limits), checked to lie
    inside `space` if given; every error names the file."""
    try:
        arch = Arch.from_json(read_arch_file(path))
        if space is not None:
            check_arch(arch, space)
    except ArchError as exc:
        raise ArchError(f"{path}: {exc}" if not str(exc).startswith(str(path)) else str(exc)) from None
    return arch


def arch_record(store: Store, run: str, ref: str, space: SpaceConfig | None = None) -> dict:
    """What the store knows of the arch `ref` (id, `best` or JSON file), decoded under "model".

    An arch from a file that the run never scored gets a record with no scores; with
    `space`, a file's arch must lie inside it.
    """
    rec = store.arch(run, arch_id(store, run, ref))
    if rec is not None and rec.get("arch") is not None:
        return {**rec, "model": Arch.from_dict(rec["arch"])}
    path = Path(ref)
    if path.suffix == ".json" and path.is_file():
        model = arch_from_file(path, space)
        known = store.arch(run, model.id)
        if known is not None:
            return {**known, "model": model}
        return {"run_id": run, "arch_id": model.id, "arch": model.to_dict(), "scores": [],
                "retrains": [], "model": model}
    if rec is not None:
        raise NotFound(f"arch {ref!r} is scored in run {run} but its description is not in the store")
    raise NotFound(f"no architecture {ref!r} in run {run} (and no such JSON file)")


def work_arch(store: Store, run: str, ref: str) -> Arch:
    """The arch `ref` names for work on it (retrain, export, queue): an arch of the run,
    or a JSON file's arch, which must lie inside the run's search space."""
    space = Config.from_stored(store.get_run(run)["config"]).space
    return arch_record(store, run, ref, space)["model"]


def run_config(store: Store, run: str) -> Config:
    """The config a stored run was trained with."""
    return Config.from_stored(store.get_run(run)["config"])


def correlate_job(args: Any) -> CorrelateJob:
    """The study `smash correlate` or `smash queue correlate` asks for, checked."""
    epochs = tuple(args.epochs)
    return CorrelateJob(k=args.k, epochs=max(epochs), rungs=epochs if len(epochs) > 1 else None,
                        seeds=args.seeds, seed=getattr(args, "seed", None),
                        max_steps_per_epoch=args.max_steps_per_epoch,
                        predictors=tuple(p for p in args.predictors.split(",") if p),
                        include_partial=bool(getattr(args, "include_partial", False)) or None,
                        score_draws=args.score_draws, top_k=getattr(args, "top_k", None))


def job(store: Store, job_id: str) -> dict:
    found = store.get_job(job_id)
    if found is None:
        raise NotFound(f"no job {job_id!r}; `smash jobs` lists them")
    return found


def sizes(store: Store, run: str, rec: dict) -> dict:
    """params, FLOPs, depth and layers of `rec` (from `arch_record`): the store's figures, or
    counted for the run's images when the store never saw the arch."""
    arch: Arch = rec["model"]
    if rec.get("params") is not None:
        return {k: rec.get(k) for k in ("params", "flops", "depth", "n_layers")}
    meta = store.get_run(run)
    shape, classes = tuple(meta["image_shape"]), int(meta["num_classes"])
    return {"params": count_params(arch, shape[0], classes), "flops": count_flops(arch, shape, classes),
            "depth": arch.depth, "n_layers": arch.n_layers}


def latest_score(rec: dict) -> dict | None:
    """The score at the arch's latest checkpoint (the one every view ranks by), or None."""
    scores = rec.get("scores") or []
    return {k: scores[-1].get(k) for k in SCORE_FIELDS} if scores else None
