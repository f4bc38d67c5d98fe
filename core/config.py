"""Run configuration: typed, validated dataclasses loaded from TOML.

Every section is a frozen dataclass whose fields carry their defaults; a TOML file
only names what it changes. Unknown keys, wrong types and out-of-range values raise
`ConfigError` with one line naming the setting and what is allowed. The whole config
round-trips through `to_dict` / `from_dict`, so it is saved with every checkpoint and
every run row.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import BadRequest
from core.metric import DELTAS, SCORE_METRICS
from core.vocab import DEFAULT_OP_PROBS, PATH_SHAPES


class ConfigError(BadRequest):
    """A setting is unknown, of the wrong type, or out of range."""


def _require(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


DATASETS = ("fashion-mnist", "cifar10", "cifar100", "imagefolder", "npz", "synthetic")
WIDTH_PRIORS = ("authors", "soft")
WEIGHT_NORMS = ("tensor", "channel")


@dataclass(frozen=True)
class DataConfig:
    """Where the images come from and how they are split and augmented."""

    dataset: str = "fashion-mnist"
    """fashion-mnist (Debian's dataset-fashion-mnist), cifar10, cifar100, imagefolder, npz,
    or synthetic (generated in memory; for tests)."""
    root: str = ""
    """Folder or file holding the data; empty means the data set's default location."""
    val_size: int = 5000
    """Images held out of the training set (seeded) to compute SMASH scores."""
    image_size: int = 0
    """Resize ImageFolder images to this square size; 0 keeps 32 for ImageFolder."""
    limit_train: int = 0
    """Use only this many training images (before the split); 0 uses all."""
    limit_test: int = 0
    """Use only this many test images; 0 uses all."""
    crop_padding: int = 4
    """Random-crop padding in pixels for training; 0 disables cropping."""
    flip: bool = True
    """Random horizontal flips for training."""

    def __post_init__(self) -> None:
        _require(self.dataset in DATASETS,
                 f"[data].dataset = {self.dataset!r}; allowed: {', '.join(DATASETS)}")
        _require(self.val_size >= 1, f"[data].val_size = {self.val_size}; must be >= 1")
        for name in ("image_size", "limit_train", "limit_test", "crop_padding"):
            _require(getattr(self, name) >= 0, f"[data].{name} = {getattr(self, name)}; must be >= 0")


@dataclass(frozen=True)
class SpaceConfig:
    """The memory-bank search space. Channel counts are in units of `unit` channels."""

    unit: int = 8
    """N: channels per unit; banks and layer widths are multiples of it."""
    max_units: int = 8
    """k: a layer emits between 1 and k units (its op width)."""
    bank_units: tuple[int, ...] = (1, 2)
    """Allowed memory-bank sizes, in units; each block samples one."""
    blocks: int = 3
    """Blocks at halving resolutions, joined by transitions."""
    stem_channels: int = 64
    """Channels of the first block's input; each later block gets twice the last."""
    stem_stride: int = 1
    """Stride of the stem conv: 2 halves the resolution the first block runs at."""
    block_growth: float = 3.0
    """A block's banks hold at most this many times its input channels."""
    depth: int = 12
    """Reference depth: a block's full channel budget is depth x its input channels."""
    budget: tuple[float, float] = (0.3, 0.5)
    """Budget fraction range sampled per block at the start of training."""
    final_max_budget: float = 1.0
    """The budget range's upper end anneals to this value."""
    bottleneck: int = 4
    """A layer's 1x1 emits min(bottleneck x width, input) channels."""
    kernels: tuple[int, ...] = (3, 5, 7)
    """Kernel sizes per axis; the largest allowed anneals from the first to the last."""
    max_dilation: int = 3
    """Largest dilation per axis (for the smallest kernel; larger kernels get less)."""
    groups: tuple[int, ...] = (1, 2, 4, 8)
    """Group counts for op convs; each must divide `unit`."""
    op_probs: tuple[float, ...] = DEFAULT_OP_PROBS
    """Sampling weights of the op layouts of core.vocab.OPS, in its order: (1), (1,1), (2),
    (2,1), (2,2) convs per path."""
    anneal_fraction: float = 0.5
    """Kernel range and budget anneal to their final values over this fraction of training."""
    width_prior: str = "authors"
    """How a layer's width (units) relates to what it reads. A width d units away from the
    read width is drawn with weight authors: 1/(0.01 + 10|d|), the authors' prior, under
    which the width equals the read width in nearly every layer (about 99%); soft:
    1/(1 + |d|), a flatter prior (width equal to the read width in about a quarter of
    layers; the only prior before this setting existed)."""

    def __post_init__(self) -> None:
        s = "[space]."
        _require(self.unit >= 1, f"{s}unit = {self.unit}; must be >= 1")
        _require(self.max_units >= 1, f"{s}max_units = {self.max_units}; must be >= 1")
        _require(len(self.bank_units) >= 1 and all(b >= 1 for b in self.bank_units),
                 f"{s}bank_units = {list(self.bank_units)}; must be a non-empty list of ints >= 1")
        _require(all(self.max_units % b == 0 for b in self.bank_units),
                 f"{s}bank_units = {list(self.bank_units)}; each must divide max_units = {self.max_units}")
        _require(list(self.bank_units) == sorted(set(self.bank_units)),
                 f"{s}bank_units = {list(self.bank_units)}; must be increasing and distinct")
        _require(1 <= self.blocks <= 6, f"{s}blocks = {self.blocks}; allowed 1..6")
        big_bank = max(self.bank_units) * self.unit
        _require(self.stem_channels >= big_bank and self.stem_channels % big_bank == 0,
                 f"{s}stem_channels = {self.stem_channels}; must be a multiple of the largest bank "
                 f"({max(self.bank_units)} units x {self.unit} = {big_bank} channels)")
        _require(self.stem_stride in (1, 2), f"{s}stem_stride = {self.stem_stride}; allowed 1 or 2")
        _require(self.block_growth >= 1.5,
                 f"{s}block_growth = {self.block_growth}; must be >= 1.5 so layers have banks to write")
        _require(self.depth >= 1, f"{s}depth = {self.depth}; must be >= 1")
        lo, hi = self.budget
        _require(0 < lo <= hi <= self.final_max_budget,
                 f"{s}budget = {list(self.budget)}; need 0 < low <= high <= final_max_budget "
                 f"({self.final_max_budget})")
        _require(self.bottleneck >= 1, f"{s}bottleneck = {self.bottleneck}; must be >= 1")
        _require(len(self.kernels) >= 1 and all(k >= 1 and k % 2 == 1 for k in self.kernels)
                 and list(self.kernels) == sorted(set(self.kernels)),
                 f"{s}kernels = {list(self.kernels)}; must be increasing distinct odd sizes")
        _require(self.max_dilation >= 1, f"{s}max_dilation = {self.max_dilation}; must be >= 1")
        _require(len(self.groups) >= 1 and all(g >= 1 and self.unit % g == 0 for g in self.groups)
                 and list(self.groups) == sorted(set(self.groups)),
                 f"{s}groups = {list(self.groups)}; must be increasing distinct divisors of unit = {self.unit}")
        _require(len(self.op_probs) == len(PATH_SHAPES) and all(p >= 0 for p in self.op_probs)
                 and sum(self.op_probs) > 0,
                 f"{s}op_probs = {list(self.op_probs)}; need {len(PATH_SHAPES)} non-negative weights, not all 0")
        _require(0 < self.anneal_fraction <= 1,
                 f"{s}anneal_fraction = {self.anneal_fraction}; allowed (0, 1]")
        _require(self.width_prior in WIDTH_PRIORS,
                 f"{s}width_prior = {self.width_prior!r}; allowed: {', '.join(WIDTH_PRIORS)}")

    def block_in_channels(self) -> list[int]:
        return [self.stem_channels * 2**i for i in range(self.blocks)]

    def max_banks(self, block: int, bank_units: int) -> int:
        """Banks available in `block` when banks are `bank_units` wide."""
        return int(self.block_growth * self.block_in_channels()[block]) // (bank_units * self.unit)

    def max_block_channels(self, block: int) -> int:
        """Channels of `block`'s widest bank memory over every bank size: the width of the
        shared weights that read a whole block (transitions, head, shared 1x1s)."""
        return max(self.max_banks(block, u) * u * self.unit for u in self.bank_units)

    def dilation_cap(self, kernel: int) -> int:
        """Largest dilation for `kernel`: the smallest kernel gets max_dilation, each larger
        one step less (at least 1)."""
        return max(1, self.max_dilation - self.kernels.index(kernel))

    @property
    def max_banks_any(self) -> int:
        return max(self.max_banks(b, self.bank_units[0]) for b in range(self.blocks))

    @property
    def max_bottleneck_channels(self) -> int:
        return self.bottleneck * self.max_units * self.unit


@dataclass(frozen=True)
class HyperNetConfig:
    """The HyperNet: a DenseNet of weight-normalised 3x3 convs over the encoding."""

    generate: str = "bottleneck"
    """bottleneck: generate the 1x1 bottleneck weights (the paper); bottleneck+ops: also
    generate a per-channel scale for every op conv's freely learned weights; none: no
    HyperNet, the 1x1s are freely learned weights shared by every Arch (a weight-sharing
    one-shot baseline to compare the HyperNet against)."""
    row_units: int = 4
    """Output units of the 1x1s covered by one encoding row."""
    col_units: int = 4
    """Input units of the 1x1s covered by one encoding column."""
    noise_channels: int = 1
    """Channels of N(0, I) noise concatenated to the encoding at every draw."""
    stem: int = 8
    """Channels of the first conv."""
    growth: tuple[int, ...] = (10, 10, 10)
    """Growth rate of each dense stage."""
    layers: tuple[int, ...] = (8, 10, 4)
    """Convs in each dense stage; stages are joined by convs that halve the channels."""
    dense_input: bool = True
    """The encoding (with its noise) joins the dense concatenation, so every conv of the
    first stage reads it whole, as in the authors' HyperNet. false: only the first conv
    reads it, squeezing it into `stem` channels."""
    weight_norm: str = "tensor"
    """tensor: each conv's weight is divided by the norm of the whole tensor and scaled by
    one learned gain (the authors' form); channel: per output channel, a gain each."""

    def __post_init__(self) -> None:
        s = "[hypernet]."
        allowed = ("bottleneck", "bottleneck+ops", "none")
        _require(self.generate in allowed, f"{s}generate = {self.generate!r}; allowed: {', '.join(allowed)}")
        for name in ("row_units", "col_units", "noise_channels", "stem"):
            _require(getattr(self, name) >= 1, f"{s}{name} = {getattr(self, name)}; must be >= 1")
        _require(len(self.growth) == len(self.layers) >= 1,
                 f"{s}growth and {s}layers must be lists of the same non-zero length")
        _require(all(v >= 1 for v in self.growth + self.layers), f"{s}growth/layers entries must be >= 1")
        _require(self.weight_norm in WEIGHT_NORMS,
                 f"{s}weight_norm = {self.weight_norm!r}; allowed: {', '.join(WEIGHT_NORMS)}")


@dataclass(frozen=True)
class TrainConfig:
    """SMASH training of the HyperNet and the shared free weights."""

    epochs: float = 100.0
    """Passes over the training split; `steps` overrides when > 0."""
    steps: int = 0
    batch_size: int = 50
    lr: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 1e-4
    eps: float = 1e-4
    log_every: int = 50
    """Steps per logged window of loss and error."""
    checkpoint_every: int = 500
    """Steps between checkpoints (one is always written at the end)."""

    def __post_init__(self) -> None:
        s = "[train]."
        _require(self.epochs > 0 or self.steps > 0, f"{s}epochs or {s}steps must be > 0")
        _require(self.steps >= 0, f"{s}steps = {self.steps}; must be >= 0")
        _require(self.batch_size >= 2, f"{s}batch_size = {self.batch_size}; must be >= 2 (batch norm)")
        _require(self.lr > 0, f"{s}lr = {self.lr}; must be > 0")
        _require(all(0 <= b < 1 for b in self.betas) and len(self.betas) == 2,
                 f"{s}betas = {list(self.betas)}; need two values in [0, 1)")
        _require(self.weight_decay >= 0 and self.eps > 0, f"{s}weight_decay >= 0 and eps > 0 required")
        _require(self.log_every >= 1 and self.checkpoint_every >= 1,
                 f"{s}log_every and checkpoint_every must be >= 1")


@dataclass(frozen=True)
class ScoreConfig:
    """Scoring sampled architectures with generated weights, then local search."""

    archs: int = 500
    """Random architectures to score."""
    draws: int = 3
    """Noise draws per architecture; the score is their mean, the spread their std."""
    val_images: int = 0
    """Validation images per draw; 0 uses the whole validation split."""
    batch_size: int = 250
    perturb: int = 50
    """Perturbations of the best random architecture to score."""
    chain: int = 20
    """Steps of the greedy chain from the best architecture found so far."""
    bn: str = "batch"
    """Batch-norm statistics when scoring: batch (each eval batch normalises itself) or
    recalibrated (statistics of `calib_images` training images, per Arch and draw)."""
    calib_images: int = 500
    """Training images used to recalibrate batch norm when bn = "recalibrated"."""
    probe: int = 0
    """A fixed probe set of this many architectures, re-scored at every training checkpoint
    to show how stable the ranking is over training (0: none)."""
    halving_min: int = 0
    """Successive halving of the random sample: every arch is scored on this many validation
    images per draw, the best 1/halving_eta of them on halving_eta times more, and so on up
    to val_images (0: every arch on all of val_images)."""
    halving_eta: int = 3
    """Kept fraction (1/eta) and growth of the image count per successive-halving rung."""
    race_top: int = 10
    """Racing after the search: the best `race_top` full scores are re-scored with fresh
    draws (new noise, new validation images), each round only those whose 95% interval
    still overlaps the leader's, until none does or they reach race_max_draws (0: off)."""
    race_max_draws: int = 12
    """Draws an arch may reach while racing."""
    metric: str = "error"
    """What the score measures (core/metric.py): error (fraction misclassified, the
    authors' score) or loss (mean cross-entropy, less noisy per draw)."""
    mutation_rate: float = 0.05
    """Perturbation and the greedy chain change each element of an architecture (a layer's
    reads, writes, width, op layout; each conv's kernel, dilation, groups) with this
    probability; at least one element always changes."""
    delta: float | None = None
    """The indifference zone of racing and of the leaderboard's verdicts, in the score's
    units: an arch whose score interval lies within delta of the leader's score is
    equivalent to it (core/racing.py). None: the metric's default (core/metric.py DELTAS,
    set from the truth's seed-to-seed noise in docs/correlation.md); 0: no zone (archs
    tied with the leader stay unresolved)."""

    @property
    def indifference(self) -> float | None:
        """The zone racing and the verdicts use: delta, or the metric's default; None for 0."""
        return DELTAS[self.metric] if self.delta is None else (self.delta or None)

    def __post_init__(self) -> None:
        s = "[score]."
        _require(self.delta is None or (math.isfinite(self.delta) and self.delta >= 0),
                 f"{s}delta = {self.delta}; must be >= 0 (0: no indifference zone)")
        _require(self.halving_eta >= 2, f"{s}halving_eta = {self.halving_eta}; must be >= 2")
        _require(self.metric in SCORE_METRICS,
                 f"{s}metric = {self.metric!r}; allowed: {', '.join(SCORE_METRICS)}")
        _require(0 < self.mutation_rate <= 1, f"{s}mutation_rate = {self.mutation_rate}; allowed (0, 1]")
        _require(self.archs >= 1, f"{s}archs = {self.archs}; must be >= 1")
        _require(self.draws >= 1, f"{s}draws = {self.draws}; must be >= 1")
        _require(self.batch_size >= 2, f"{s}batch_size = {self.batch_size}; must be >= 2")
        _require(self.bn in ("batch", "recalibrated"), f"{s}bn = {self.bn!r}; allowed: batch, recalibrated")
        _require(self.calib_images >= 2, f"{s}calib_images = {self.calib_images}; must be >= 2")
        _require(self.race_top == 0 or self.race_max_draws > self.draws,
                 f"{s}race_max_draws = {self.race_max_draws}; must exceed draws ({self.draws}) "
                 "for racing to add any (or set race_top = 0)")
        for name in ("val_images", "perturb", "chain", "probe", "halving_min", "race_top"):
            _require(getattr(self, name) >= 0, f"{s}{name} = {getattr(self, name)}; must be >= 0")


@dataclass(frozen=True)
class RetrainConfig:
    """Final training of one architecture with freely learned weights."""

    epochs: int = 300
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    max_steps_per_epoch: int = 0
    """Cap on steps per epoch (0: a full pass); keeps smoke retrains short."""

    def __post_init__(self) -> None:
        s = "[retrain]."
        _require(self.epochs >= 1, f"{s}epochs = {self.epochs}; must be >= 1")
        _require(self.batch_size >= 2, f"{s}batch_size = {self.batch_size}; must be >= 2")
        _require(self.lr > 0 and 0 <= self.momentum < 1 and self.weight_decay >= 0,
                 f"{s}lr > 0, 0 <= momentum < 1 and weight_decay >= 0 required")
        _require(self.max_steps_per_epoch >= 0, f"{s}max_steps_per_epoch must be >= 0")


PRECISIONS = ("auto", "fp32", "bf16")
DEVICE_RE = re.compile(r"auto|cpu|cuda(:[0-9]{1,3})?")
SEED_MAX = 2**32 - 1
INT_LIMIT = 2**62
CONFIG_MAX_BYTES = 1 << 20


@dataclass(frozen=True)
class Config:
    name: str = "run"
    seed: int = 0
    device: str = "auto"
    """auto (CUDA when present, else CPU), cpu, or cuda[:N]."""
    precision: str = "auto"
    """Math of the forward passes: auto (bf16 autocast where the hardware computes in bf16
    natively: CUDA GPUs from Ampere on, CPUs with AMX or avx512_bf16, about 1.5-2.5x faster
    convolutions at bf16's rounding; fp32 elsewhere), fp32, or bf16 (autocast even where
    bf16 is emulated). Runs report what `auto` resolved to on their machine."""
    data: DataConfig = field(default_factory=DataConfig)
    space: SpaceConfig = field(default_factory=SpaceConfig)
    hypernet: HyperNetConfig = field(default_factory=HyperNetConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    retrain: RetrainConfig = field(default_factory=RetrainConfig)

    def __post_init__(self) -> None:
        _require(DEVICE_RE.fullmatch(self.device) is not None,
                 f"device = {self.device!r}; allowed: auto, cpu, cuda, cuda:N")
        _require(0 <= self.seed <= SEED_MAX, f"seed = {self.seed}; allowed 0..{SEED_MAX}")
        _require(self.precision in PRECISIONS,
                 f"precision = {self.precision!r}; allowed: {', '.join(PRECISIONS)}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (lists, not tuples), as stored with checkpoints and runs."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Config:
        return _build(cls, raw, "")

    @classmethod
    def from_stored(cls, raw: dict[str, Any]) -> Config:
        """A config saved with a checkpoint or run. Saved configs are complete, so a
        setting missing from one was written before the setting existed: it gets the
        behaviour of that time (LEGACY), not today's default, and the run resumes as it began."""
        raw = json.loads(json.dumps(raw))
        for section, values in LEGACY.items():
            if isinstance(raw.get(section), dict):
                for key, value in values.items():
                    raw[section].setdefault(key, value)
        return _build(cls, raw, "")

    def to_toml(self) -> str:
        """The config as a TOML file a user could have written (settings left unset omitted)."""
        raw = self.to_dict()
        lines = [f"{k} = {_toml_value(v)}" for k, v in raw.items() if not isinstance(v, dict) and v is not None]
        for name, section in raw.items():
            if isinstance(section, dict):
                lines += [f"\n[{name}]", *(f"{k} = {_toml_value(v)}" for k, v in section.items() if v is not None)]
        return "\n".join(lines) + "\n"

    def replace(self, **sections: dict[str, Any]) -> Config:
        """A copy with some sections' fields overridden, e.g. replace(train={"steps": 10})."""
        raw = self.to_dict()
        for name, values in sections.items():
            if isinstance(raw.get(name), dict):
                raw[name] = {**raw[name], **values}
            else:
                raw[name] = values
        return Config.from_dict(raw)


LEGACY: dict[str, dict[str, Any]] = {
    "space": {"width_prior": "soft"},
    "hypernet": {"dense_input": False, "weight_norm": "channel"},
}
"""Behaviour of settings added later, for configs saved before they existed."""


def _check_value(value: Any, hint: Any, where: str) -> Any:
    """Coerce a TOML value to the field's declared type or raise ConfigError."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):  # an optional setting: none, or its type
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None and len(options) < len(typing.get_args(hint)):
            return None
        _require(len(options) == 1, f"{where}: unsupported setting type")
        return _check_value(value, options[0], where)
    if origin is tuple:
        args = typing.get_args(hint)
        _require(isinstance(value, list | tuple), f"{where} = {_short(value)}; expected a list")
        item_hint = args[0]
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_check_value(v, item_hint, where) for v in value)
        _require(len(value) == len(args), f"{where} = {_short(value)}; expected {len(args)} values")
        return tuple(_check_value(v, h, where) for v, h in zip(value, args, strict=True))
    if hint is bool:
        _require(isinstance(value, bool), f"{where} = {_short(value)}; expected true or false")
        return value
    if hint is int:
        _require(isinstance(value, int) and not isinstance(value, bool),
                 f"{where} = {_short(value)}; expected an integer")
        _require(abs(value) < INT_LIMIT, f"{where} = {_short(value)}; out of range")
        return value
    if hint is float:
        _require(isinstance(value, int | float) and not isinstance(value, bool)
                 and abs(value) < INT_LIMIT and math.isfinite(value),
                 f"{where} = {_short(value)}; expected a finite number of sensible size")
        return float(value)
    if hint is str:
        _require(isinstance(value, str), f"{where} = {_short(value)}; expected a string")
        return value
    raise ConfigError(f"{where}: unsupported setting type")


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(v)


def _short(value: Any) -> str:
    """repr(value), cut to 40 characters (a 400-digit number makes a useless message)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _build(cls: type, raw: Any, prefix: str) -> Any:
    label = f"[{prefix}]" if prefix else "the top level"
    _require(isinstance(raw, dict), f"{label} must be a table")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in raw.items():
        if key not in names:
            raise ConfigError(f"unknown key {key!r} in {label}; allowed: {', '.join(names)}")
        where = f"[{prefix}].{key}" if prefix else key
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value, key)
        else:
            kwargs[key] = _check_value(value, hint, where)
    try:
        return cls(**kwargs)
    except TypeError as exc:  # pragma: no cover - guarded by the key check above
        raise ConfigError(str(exc)) from exc


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    if path.stat().st_size > CONFIG_MAX_BYTES:
        raise ConfigError(f"{path}: {path.stat().st_size} bytes; a config is at most {CONFIG_MAX_BYTES}")
    try:
        raw = tomllib.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save the config as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({str(exc).splitlines()[0]})") from exc
    except (ValueError, RecursionError) as exc:  # e.g. an integer too long to convert
        raise ConfigError(f"{path}: not a usable TOML file ({str(exc).splitlines()[0][:80]})") from None
    return Config.from_dict(raw)
