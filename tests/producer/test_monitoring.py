"""Hardware monitoring with NVML and cgroups faked at their boundaries."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from expstream.producer.monitoring import CgroupReader, GpuReader, HardwareMonitor, gpu_indices


class FakeNvml:
    """Two cards; utilization 40/70 %, memory 1 and 2 GiB used."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.calls = 0
        self.fail_after = fail_after

    def nvmlInit(self) -> None:
        pass

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("NVML_ERROR_GPU_IS_LOST")
        return index

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(gpu=[40, 70][handle])

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(used=(handle + 1) * 2**30)


def test_gpu_indices_follow_cuda_visible_devices() -> None:
    assert gpu_indices(4, None) == [0, 1, 2, 3]
    assert gpu_indices(4, "2,0,2") == [2, 0]
    assert gpu_indices(4, "1,9,2") == [1]  # CUDA stops at the first invalid index
    assert gpu_indices(4, "") == []
    assert gpu_indices(2, "GPU-5b0f7c1e") == [0, 1]


def test_sample_has_cpu_ram_and_every_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    emitted = []
    monitor = HardwareMonitor(lambda x, s: emitted.append((x, s)), gpus=GpuReader(FakeNvml()), container=False)
    sample = dict(monitor.sample_once())
    assert set(sample) == {"cpu", "ram", "gpu_util_0", "gpu_mem_0", "gpu_util_1", "gpu_mem_1"}
    assert sample["gpu_util_1"] == 70 and sample["gpu_mem_1"] == 2.0
    assert 0 <= sample["cpu"] <= 100 and sample["ram"] > 0
    assert emitted and emitted[0][0] >= 0


def test_no_nvml_means_no_gpu_series_and_no_error() -> None:
    class Broken(FakeNvml):
        def nvmlInit(self) -> None:
            raise RuntimeError("NVML Shared Library Not Found")

    monitor = HardwareMonitor(lambda x, s: None, gpus=GpuReader(Broken()), container=False)
    assert {name for name, _ in monitor.sample_once()} == {"cpu", "ram"}


def test_nvml_failing_mid_run_keeps_cpu_and_ram(caplog: pytest.LogCaptureFixture) -> None:
    monitor = HardwareMonitor(lambda x, s: None, gpus=GpuReader(FakeNvml(fail_after=2)), container=False)
    assert len(monitor.sample_once()) == 6
    with caplog.at_level(logging.WARNING, "expstream"):
        names = {name for name, _ in monitor.sample_once()}
        monitor.sample_once()
    assert names == {"cpu", "ram"}
    assert sum("NVML failed" in r.message for r in caplog.records) == 1  # rate-limited


def _cgroup_v2(root: Path, usage_usec: int) -> None:
    (root / "cgroup.controllers").write_text("cpu memory\n")
    (root / "cpu.max").write_text("50000 100000\n")  # half a core
    (root / "memory.current").write_text(str(3 * 2**30))
    (root / "memory.max").write_text("max\n")
    (root / "cpu.stat").write_text(f"usage_usec {usage_usec}\nuser_usec 1\n")


def test_cgroup_v2_limits(tmp_path: Path) -> None:
    _cgroup_v2(tmp_path, 1_000_000)
    cgroup = CgroupReader(tmp_path)
    assert cgroup.v2 and cgroup.cpu_limit_cores() == 0.5
    assert cgroup.memory_bytes() == 3 * 2**30 and cgroup.memory_limit_bytes() is None
    assert cgroup.cpu_percent(0.5) is None  # the first reading only primes
    (tmp_path / "cpu.stat").write_text("usage_usec 1000000000\n")
    assert cgroup.cpu_percent(0.5) == 100.0  # clamped


def test_cgroup_v1_limits(tmp_path: Path) -> None:
    for sub in ("cpu", "memory", "cpuacct"):
        (tmp_path / sub).mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("200000")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000")
    (tmp_path / "memory" / "memory.usage_in_bytes").write_text(str(2**30))
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text(str(4 * 2**30))
    (tmp_path / "cpuacct" / "cpuacct.usage").write_text("5")
    cgroup = CgroupReader(tmp_path)
    assert not cgroup.v2 and cgroup.cpu_limit_cores() == 2.0
    assert cgroup.memory_bytes() == 2**30 and cgroup.memory_limit_bytes() == 4 * 2**30


def test_unreadable_cgroup_files_fall_back_to_the_system(tmp_path: Path) -> None:
    monitor = HardwareMonitor(
        lambda x, s: None, gpus=GpuReader(FakeNvml()), cgroup=CgroupReader(tmp_path / "missing"), container=True
    )
    names = {name for name, _ in monitor.sample_once()}
    assert {"cpu", "ram"} <= names
