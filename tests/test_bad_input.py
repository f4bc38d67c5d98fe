"""Every bad input a user can give: one line on stderr, exit code 2, nothing changed.

One table drives one test. A row names the `smash` arguments and a word the error line
must hold. Before and after each row the whole tree (the trained workdir, the bad input
files, everything) is hashed: a row passes only if not one byte and not one file name
changed. Rows run `engine.cli.main` in this process, so an unhandled exception (the
traceback a user would see) fails the row; one row also runs the real entry point.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zipfile
import zlib
from pathlib import Path

import duckdb
import numpy as np
import pytest

from cli import main as cli
from core.jobs import ScoreJob
from tests.conftest import run_smash, tiny_config, write_config

CASES = [
    # ---- CLI numbers and names
    ("retrain-epochs-negative", ["retrain", "--workdir", "{w}", "--epochs", "-1"], "--epochs"),
    ("queue-retrain-epochs-negative", ["queue", "retrain", "--workdir", "{w}", "--epochs", "-5"], "--epochs"),
    ("engine-jobs-zero", ["engine", "--workdir", "{w}", "--jobs", "0"], "--jobs"),
    ("engine-stale-negative", ["engine", "--workdir", "{w}", "--stale-after", "-1"], "--stale-after"),
    ("engine-poll-negative", ["engine", "--workdir", "{w}", "--poll", "-1"], "--poll"),
    ("engine-poll-nan", ["engine", "--workdir", "{w}", "--poll", "nan"], "--poll"),
    ("correlate-k-negative", ["correlate", "--workdir", "{w}", "--k", "-3"], "--k"),
    ("correlate-score-draws-negative", ["correlate", "--workdir", "{w}", "--score-draws", "-1"], "--score-draws"),
    ("queue-correlate-score-draws-text", ["queue", "correlate", "--workdir", "{w}", "--score-draws", "all"],
     "--score-draws"),
    ("score-archs-text", ["score", "--workdir", "{w}", "--archs", "many"], "--archs"),
    ("retrain-seed-huge", ["retrain", "--workdir", "{w}", "--seed", str(2**40)], "--seed"),
    ("dashboard-port", ["dashboard", "--workdir", "{w}", "--port", "70000"], "--port"),
    ("dashboard-exposed-without-login", ["dashboard", "--workdir", "{w}", "--address", "0.0.0.0"], "--no-auth"),
    ("up-exposed-without-login", ["up", "--workdir", "{w}", "--config", "{d}/good.toml", "--address", "0.0.0.0"],
     "--no-auth"),
    ("ray-cpus-zero", ["score", "--workdir", "{w}", "--executor", "ray", "--ray-cpus", "0"], "--ray-cpus"),
    ("score-no-checkpoint", ["score", "--workdir", "{w}", "--checkpoint", "999"], "no checkpoint"),
    ("score-empty-workdir", ["score", "--workdir", "{d}/empty"], "no runs in"),
    ("retrain-unknown-arch", ["retrain", "--workdir", "{w}", "--arch", "deadbeef"], "no architecture"),
    ("unknown-command-option", ["score", "--workdir", "{w}", "--bogus"], "unrecognized"),
    # ---- run ids
    ("run-id-parent", ["score", "--workdir", "{w}", "--run", "../x"], "run id"),
    ("run-id-absolute", ["train", "--config", "{d}/good.toml", "--workdir", "{w}", "--run", "/tmp/x"], "run id"),
    # ---- config files
    ("config-missing", ["train", "--config", "{d}/missing.toml", "--workdir", "{w}"], "not found"),
    ("config-bad-value", ["train", "--config", "{d}/groups.toml", "--workdir", "{w}"], "[space].groups"),
    ("config-not-utf8", ["train", "--config", "{d}/latin1.toml", "--workdir", "{w}"], "UTF-8"),
    ("config-400-digit-int", ["train", "--config", "{d}/bigint.toml", "--workdir", "{w}"], "[train].lr"),
    ("config-400-digit-float", ["train", "--config", "{d}/bigfloat.toml", "--workdir", "{w}"], "[train].lr"),
    ("config-seed-negative", ["train", "--config", "{d}/seedneg.toml", "--workdir", "{w}"], "seed"),
    ("config-seed-huge", ["train", "--config", "{d}/seedbig.toml", "--workdir", "{w}"], "seed"),
    ("config-cuda-missing", ["train", "--config", "{d}/cuda99.toml", "--workdir", "{d}/fresh"], "cuda:99"),
    ("config-cudafoo", ["train", "--config", "{d}/cudafoo.toml", "--workdir", "{d}/fresh"], "cudafoo"),
    ("queue-config-cuda", ["queue", "train", "--config", "{d}/cuda99.toml", "--workdir", "{d}/fresh"], "cuda:99"),
    ("config-not-toml", ["train", "--config", "{d}/broken.toml", "--workdir", "{w}"], "TOML"),
    # ---- architecture JSON
    ("arch-malformed", ["retrain", "--workdir", "{w}", "--arch", "{d}/malformed.json"], "malformed arch JSON"),
    ("arch-kernel-outside-space", ["retrain", "--workdir", "{w}", "--arch", "{d}/k31.json"], "search space"),
    ("arch-unit-4000", ["retrain", "--workdir", "{w}", "--arch", "{d}/unit4000.json"], "unit4000.json"),
    ("arch-1e400", ["retrain", "--workdir", "{w}", "--arch", "{d}/inf.json"], "not finite"),
    ("arch-deep-nesting", ["retrain", "--workdir", "{w}", "--arch", "{d}/deep.json"], "nested"),
    ("arch-not-utf8", ["export", "--workdir", "{w}", "--arch", "{d}/latin1.json", "--out", "{d}/o.json"], "UTF-8"),
    # ---- data files
    ("npz-missing", ["train", "--config", "{d}/npz-missing.toml", "--workdir", "{w}"], "not found"),
    ("npz-huge-header", ["train", "--config", "{d}/npz-huge.toml", "--workdir", "{w}"], "claims shape"),
    ("npz-label-2e40", ["train", "--config", "{d}/npz-label.toml", "--workdir", "{w}"], "label"),
    ("npz-nchw", ["train", "--config", "{d}/npz-nchw.toml", "--workdir", "{w}"], "N x C x H x W"),
    ("npz-split-below-batch", ["train", "--config", "{d}/npz-small.toml", "--workdir", "{w}"], "batch_size"),
    ("png-decompression-bomb", ["train", "--config", "{d}/bomb.toml", "--workdir", "{w}"], "bomb.png"),
    ("imagefolder-symlink-loop", ["train", "--config", "{d}/loop.toml", "--workdir", "{w}"], "already read"),
    # ---- store files
    ("store-not-duckdb", ["score", "--workdir", "{d}/garbage"], "not a SMASH Explorer store"),
    ("store-foreign-duckdb", ["score", "--workdir", "{d}/foreign"], "not a SMASH Explorer store"),
    # ---- export paths
    ("export-over-store", ["export", "--workdir", "{w}", "--out", "{w}/smash.duckdb"], "store"),
    ("export-into-checkpoints", ["export", "--workdir", "{w}", "--out", "{ckpt}/x.json"], "checkpoint"),
    ("export-existing-file", ["export", "--workdir", "{w}", "--out", "{d}/good.toml"], "--force"),
    ("export-onto-directory", ["export", "--workdir", "{w}", "--out", "{d}", "--force"], "directory"),
    ("export-no-model", ["export", "--workdir", "{w}", "--format", "onnx", "--out", "{d}/m.onnx"], "retrain"),
    ("export-existing-card", ["export", "--workdir", "{w}", "--out", "{d}/new-arch.json"], "--force"),
    ("graph-existing-file", ["graph", "best", "--workdir", "{w}", "--out", "{d}/mine.dot"], "--force"),
]


def _tree(root: Path) -> dict[str, str]:
    """Every path under root -> a hash of its bytes (files), its target (links) or "dir"."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _npz(path: Path, **arrays: np.ndarray) -> None:
    np.savez(path, **arrays)


def _npz_huge_header(path: Path) -> None:
    """An .npz whose x.npy header claims a terabyte-sized array over a few bytes of data."""
    header = {"descr": "|u1", "fortran_order": False, "shape": (1 << 20, 1 << 10, 1 << 10)}
    with zipfile.ZipFile(path, "w") as zf:
        with zf.open("x.npy", "w") as f:
            np.lib.format.write_array_header_1_0(f, header)
            f.write(b"\0" * 64)
        with zf.open("y.npy", "w") as f:
            np.lib.format.write_array(f, np.zeros(4, dtype=np.int64))


def _png_claiming(path: Path, width: int, height: int) -> None:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b""))


def _png(path: Path, value: int) -> None:
    from PIL import Image

    Image.fromarray(np.full((8, 8), value, dtype=np.uint8)).save(path)


def _data_config(d: Path, name: str, data: dict, **sections) -> None:
    write_config(d / f"{name}.toml", tiny_config(data=data, **sections))


def _write_inputs(d: Path, arch: dict) -> None:
    """Every bad input file the table refers to, in folder `d`."""
    write_config(d / "good.toml", tiny_config())
    (d / "empty").mkdir()
    (d / "groups.toml").write_text("[space]\ngroups = [1, 3]\n")
    (d / "latin1.toml").write_bytes('name = "caf\xe9"\n'.encode("latin-1"))
    (d / "bigint.toml").write_text("[train]\nlr = " + "9" * 400 + "\n")
    (d / "bigfloat.toml").write_text("[train]\nlr = 1" + "0" * 400 + ".5\n")
    (d / "seedneg.toml").write_text("seed = -1\n")
    (d / "seedbig.toml").write_text(f"seed = {2**40}\n")
    (d / "cuda99.toml").write_text('device = "cuda:99"\n')
    (d / "cudafoo.toml").write_text('device = "cudafoo"\n')
    (d / "broken.toml").write_text("[train\nsteps = 1\n")
    (d / "new-arch.json.card.json").write_text('{"mine": "a card"}\n')  # the card's place is taken
    (d / "mine.dot").write_text("digraph mine {}\n")
    # architecture JSON
    (d / "malformed.json").write_text(json.dumps({"unit": 4, "bottleneck": 4, "stem_channels": 8,
                                                  "blocks": [{"bank_units": 1}]}))
    k31 = json.loads(json.dumps(arch))
    k31["blocks"][0]["layers"][0]["paths"][0][0]["kernel"] = [31, 31]
    (d / "k31.json").write_text(json.dumps(k31))
    wide = json.loads(json.dumps(arch))
    wide["blocks"][0]["layers"][0]["units"] = 4000
    (d / "unit4000.json").write_text(json.dumps(wide))
    (d / "inf.json").write_text(json.dumps(arch).replace('"unit": 4', '"unit": 1e400', 1))
    (d / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (d / "latin1.json").write_bytes(b'{"unit": "\xe9"}')
    # data files
    x = np.zeros((40, 8, 8), dtype=np.uint8)
    y = np.arange(40) % 4
    _data_config(d, "npz-missing", {"dataset": "npz", "root": str(d / "nope.npz")})
    _npz_huge_header(d / "huge.npz")
    _data_config(d, "npz-huge", {"dataset": "npz", "root": str(d / "huge.npz"), "val_size": 2})
    _npz(d / "label.npz", x=x, y=np.where(y == 3, 2**40, y))
    _data_config(d, "npz-label", {"dataset": "npz", "root": str(d / "label.npz"), "val_size": 4})
    _npz(d / "nchw.npz", x=np.zeros((40, 3, 16, 16), dtype=np.uint8), y=y)
    _data_config(d, "npz-nchw", {"dataset": "npz", "root": str(d / "nchw.npz"), "val_size": 4})
    _npz(d / "small.npz", x=x[:30], y=y[:30])
    _data_config(d, "npz-small", {"dataset": "npz", "root": str(d / "small.npz"), "val_size": 10,
                                  "limit_train": 0, "limit_test": 0}, train={"batch_size": 32})
    for cls in ("a", "b"):
        (d / "bomb" / "train" / cls).mkdir(parents=True)
        _png(d / "bomb" / "train" / cls / "ok.png", 10)
    _png_claiming(d / "bomb" / "train" / "a" / "bomb.png", 100_000, 100_000)
    _data_config(d, "bomb", {"dataset": "imagefolder", "root": str(d / "bomb"), "val_size": 1})
    for cls in ("a", "b"):
        (d / "loop" / "train" / cls).mkdir(parents=True)
        for i in range(3):
            _png(d / "loop" / "train" / cls / f"{i}.png", 40 * i)
    (d / "loop" / "train" / "a" / "again").symlink_to(d / "loop" / "train" / "a")
    _data_config(d, "loop", {"dataset": "imagefolder", "root": str(d / "loop"), "val_size": 1})
    # store files
    (d / "garbage").mkdir()
    (d / "garbage" / "smash.duckdb").write_bytes(b"not a database at all" * 100)
    (d / "foreign").mkdir()
    con = duckdb.connect(str(d / "foreign" / "smash.duckdb"))
    con.execute("CREATE TABLE other (x INTEGER)")
    con.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, str]:
    """A workdir with a trained and scored tiny run, and every bad input file beside it."""
    from engine.search import score_run
    from engine.train.hypernet import train_hypernet
    from store import Store, store_path

    base = tmp_path_factory.mktemp("bad")
    w = base / "w"
    w.mkdir()
    store = Store(store_path(w))
    run_id = train_hypernet(tiny_config(), w, store=store)["run_id"]
    score_run(w, store, run_id, ScoreJob(archs=3))
    best = store.leaderboard(run_id, limit=1).iloc[0]["arch_id"]
    d = base / "inputs"
    d.mkdir()
    _write_inputs(d, store.arch(run_id, best)["arch"])
    return {"base": str(base), "w": str(w), "d": str(d), "ckpt": str(w / run_id / "checkpoints")}


def _invoke(argv: list[str], capsys) -> tuple[int, str]:
    """engine.cli.main in this process: (exit code, stderr); argparse's exit counts too."""
    umask = os.umask(0o022)
    os.umask(umask)
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code
    finally:
        os.umask(umask)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("name, args, needle", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(world, capsys, name, args, needle):
    argv = [a.format(**world) for a in args]
    before = _tree(Path(world["base"]))
    code, err = _invoke(argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2, f"{name}: exit {code}; stderr: {err}"
    assert len(lines) == 1, f"{name}: stderr is not one line:\n{err}"
    assert needle in lines[0], f"{name}: {needle!r} not in {lines[0]!r}"
    assert "Traceback" not in err
    assert _tree(Path(world["base"])) == before, f"{name}: files changed"


def test_real_entry_point_gives_one_line(world):
    """The installed command path (a subprocess) behaves as the in-process rows."""
    proc = run_smash("retrain", "--workdir", world["w"], "--epochs", "-1")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_store_checkpoints_and_logs_are_private(tmp_path):
    """Files the command creates are the user's alone, whatever the caller's umask."""
    cfg = write_config(tmp_path / "c.toml", tiny_config(train={"steps": 3, "checkpoint_every": 3}))
    proc = run_smash("train", "--config", str(cfg), "--workdir", str(tmp_path / "w"), "--quiet")
    assert proc.returncode == 0, proc.stderr
    made = [p for p in (tmp_path / "w").rglob("*")]
    assert made
    for p in made:
        mode = p.stat().st_mode & 0o777
        assert mode & 0o077 == 0, f"{p} is {oct(mode)}"
