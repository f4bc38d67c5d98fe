"""Device and precision: what `precision = auto` resolves to, and the CPU bf16 detection behind it."""

from pathlib import Path

import pytest
import torch

from engine.runtime import device as dev
from tests.conftest import NOT_APPLICABLE

CPU = torch.device("cpu")


def proc_flags() -> frozenset[str] | None:
    """The flags line of /proc/cpuinfo, or None where there is none."""
    info = Path("/proc/cpuinfo")
    if not info.is_file():
        return None
    for line in info.read_text().splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return None


@pytest.mark.parametrize("native", [True, False])
def test_auto_is_bf16_on_the_cpu_exactly_where_it_has_native_bf16(monkeypatch, native):
    monkeypatch.setattr(dev, "cpu_has_bf16", lambda: native)
    assert dev.resolve_precision(CPU, "auto") == ("bf16" if native else "fp32")
    assert dev.resolve_precision(CPU, "fp32") == "fp32"  # the settings that say it, everywhere
    assert dev.resolve_precision(CPU, "bf16") == "bf16"
    conv = torch.nn.Conv2d(1, 2, 3)
    with dev.autocast(CPU, "auto"):
        out = conv(torch.randn(1, 1, 5, 5))
    assert out.dtype == (torch.bfloat16 if native else torch.float32)


def test_cpu_bf16_detection_agrees_with_the_kernels_flags(monkeypatch):
    flags = proc_flags()
    if flags is None:
        pytest.skip(f"{NOT_APPLICABLE} no /proc/cpuinfo flags to compare with")
    want = torch.backends.mkldnn.is_available() and bool(flags & dev.BF16_CPU_FLAGS)
    dev.cpu_has_bf16.cache_clear()
    assert dev.cpu_has_bf16() == want
    # Without torch's detection (older torch) the same answer comes from /proc/cpuinfo.
    monkeypatch.delattr(torch.cpu, "get_capabilities", raising=False)
    assert dev.cpu_flags() & dev.BF16_CPU_FLAGS == flags & dev.BF16_CPU_FLAGS
    dev.cpu_has_bf16.cache_clear()
    assert dev.cpu_has_bf16() == want
    monkeypatch.undo()
    dev.cpu_has_bf16.cache_clear()
