"""Shared fixtures: tiny configs on synthetic data, so engine tests run in seconds on a CPU."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from core.config import Config, HyperNetConfig, SpaceConfig
from core.space import sample_arch

if TYPE_CHECKING:
    from store import Store

ROOT = Path(__file__).resolve().parent.parent

# The engine picks its thread count by timing a workload (engine/runtime/threads.py), and
# float sums can differ between thread counts; tests compare results across runs, so they
# pin the count (every core, the old default) unless told otherwise. Engine processes the
# tests start inherit it.
os.environ.setdefault("SMASH_THREADS", str(len(os.sched_getaffinity(0))))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
NOT_APPLICABLE = "not applicable here:"


@contextlib.contextmanager
def tmpfs(path: Path, options: str, why: str):
    """A tmpfs mounted at `path` (made here) with mount `options`, unmounted after; skipped
    unless root (`why`: what the mount is for, in the skip reason)."""
    if os.geteuid() != 0:
        pytest.skip(f"{NOT_APPLICABLE} mounting {why} needs root")
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)
"""A skip whose reason starts so (no CUDA, running as root) stays a skip even in CI."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=1 a skipped test fails: Ray, Chromium, torchrun, the data set and export
    must all be present in CI, so a missing one must not pass quietly as a skip."""
    _fail_skip_in_ci((yield).get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """The same for a whole module skipped while it is collected (Chromium missing)."""
    _fail_skip_in_ci((yield).get_result())


def _fail_skip_in_ci(report) -> None:
    if not (IN_CI and report.skipped) or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if NOT_APPLICABLE not in reason:
        report.outcome = "failed"
        report.longrepr = f"skipped, but CI=1 requires every test to run: {reason}"


def tiny_space(**kw) -> SpaceConfig:
    base = dict(unit=4, max_units=4, bank_units=(1, 2), blocks=2, stem_channels=16, depth=2,
                kernels=(3, 5, 7), max_dilation=3, groups=(1, 2, 4))
    base.update(kw)
    return SpaceConfig(**base)


def tiny_hyper(**kw) -> HyperNetConfig:
    base = dict(row_units=2, col_units=2, stem=4, growth=(4, 4), layers=(1, 1))
    base.update(kw)
    return HyperNetConfig(**base)


def tiny_config(**sections) -> Config:
    raw = {
        "name": "tiny", "seed": 0, "device": "cpu",
        "data": {"dataset": "synthetic", "limit_train": 600, "limit_test": 200, "val_size": 100,
                 "crop_padding": 2},
        "space": {"unit": 4, "max_units": 4, "bank_units": [1, 2], "blocks": 2, "stem_channels": 8,
                  "depth": 2, "kernels": [3, 5], "max_dilation": 2, "groups": [1, 2, 4]},
        "hypernet": {"row_units": 2, "col_units": 2, "stem": 4, "growth": [4, 4], "layers": [1, 1]},
        "train": {"steps": 12, "batch_size": 16, "log_every": 3, "checkpoint_every": 6},
        "score": {"archs": 4, "draws": 2, "val_images": 50, "batch_size": 50, "perturb": 2, "chain": 2,
                  "race_top": 0},
        "retrain": {"epochs": 2, "batch_size": 16, "max_steps_per_epoch": 5},
    }
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values} if isinstance(values, dict) else values
    return Config.from_dict(raw)


def add_scored_run(st: Store, run_id: str, metric: str, scores: tuple[float, ...]) -> list[str]:
    """A finished tiny run in `st` whose config says [score] metric = `metric`, with one
    real (sampled) arch per score, scored with spread 0.0123 and interval score ± 0.02.
    Returns the arch ids, best first when `scores` ascend. No training: rows only."""
    cfg = tiny_config(score={"metric": metric})
    st.create_run(run_id, name=f"{metric} run", config=cfg.to_dict(), seed=0, code_version="test",
                  dataset="synthetic", num_classes=10, image_shape=(3, 32, 32), steps_total=12,
                  status="done")
    rng = np.random.default_rng(len(run_id))
    archs = list({a.id: a for a in (sample_arch(cfg.space, rng) for _ in range(4 * len(scores)))}.values())
    archs = archs[:len(scores)]
    assert len(archs) == len(scores), "the sampler repeated itself"
    st.add_archs([{"run_id": run_id, "arch_id": a.id, "arch": a.to_dict(), "params": 1000 * (i + 1),
                   "flops": 10_000 * (i + 1), "depth": a.depth, "n_layers": a.n_layers}
                  for i, a in enumerate(archs)])
    st.add_scores([{"run_id": run_id, "arch_id": a.id, "checkpoint_step": 12, "stage": "random",
                    "score_mean": s, "score_std": 0.0123, "draws": 4, "val_images": 50,
                    "score_lo": s - 0.02, "score_hi": s + 0.02} for a, s in zip(archs, scores, strict=True)])
    return [a.id for a in archs]


@pytest.fixture(autouse=True)
def _keep_main_module():
    """AppTest runs page scripts as `__main__` and leaves that module in place; a later
    multiprocessing "spawn" would then re-run the page script in its children. Put the
    real `__main__` back after every test."""
    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main


@pytest.fixture
def cfg() -> Config:
    return tiny_config()


def write_config(path: Path, cfg: Config) -> Path:
    """Write `cfg` as the TOML file a user would have written."""
    path.write_text(cfg.to_toml())
    return path


def run_smash(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the real `smash` entry point in a subprocess."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=env, timeout=timeout)


FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="session")
def smoke_workdir(tmp_path_factory) -> Path:
    """A workdir made from configs/smoke.toml, cut short: trained, a few archs scored, the
    best retrained. Built once per session for the listing, export and notebook tests."""
    if not FASHION.is_dir():
        pytest.skip("needs Debian's dataset-fashion-mnist (scripts/setup.sh)")
    from cli.main import main
    from core.config import load_config

    folder = tmp_path_factory.mktemp("smoke")
    short = load_config(ROOT / "configs" / "smoke.toml").replace(
        train={"steps": 20}, score={"race_top": 3, "race_max_draws": 4})
    w = str(folder / "w")
    steps = [["train", "--config", str(write_config(folder / "smoke.toml", short))],
             ["score", "--archs", "4", "--perturb", "1", "--chain", "1"],
             ["retrain", "--arch", "best", "--steps-per-epoch", "5"]]
    for argv in steps:
        assert main([*argv, "--workdir", w, "--quiet", "--json"]) == 0, argv
    return Path(w)


_SMOKE: dict[str, Path] = {}


def smoke_run(root: Path) -> Path:
    """Train, score and retrain configs/smoke.toml with the real CLI, once per session.

    SMASH_SMOKE_WORKDIR may name a finished smoke workdir to reuse (a faster edit-test
    loop); tests only ever write to copies of it.
    """
    if "workdir" not in _SMOKE and os.environ.get("SMASH_SMOKE_WORKDIR"):
        _SMOKE["workdir"] = Path(os.environ["SMASH_SMOKE_WORKDIR"])
    if "error" in _SMOKE:
        pytest.fail(_SMOKE["error"])  # failed once already this session; do not rerun minutes of CLI
    if "workdir" not in _SMOKE:
        workdir = root / "smoke"
        steps = (["train", "--config", str(ROOT / "configs" / "smoke.toml")], ["score"],
                 ["retrain", "--arch", "best"])
        for args in steps:
            proc = run_smash(*args, "--workdir", str(workdir), "--quiet", timeout=600)
            if proc.returncode != 0:
                _SMOKE["error"] = f"smash {args[0]} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
                pytest.fail(_SMOKE["error"])
        _SMOKE["workdir"] = workdir
    return _SMOKE["workdir"]


@pytest.fixture(scope="session")
def full_smoke_workdir(tmp_path_factory) -> Path:
    """The whole smoke run (configs/smoke.toml trained, scored, best retrained), for the dashboard tests."""
    return smoke_run(tmp_path_factory.getbasetemp())
