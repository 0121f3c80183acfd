"""Hardware monitoring: CPU, RAM and per-GPU utilization and memory, sampled on a daemon thread.

Series go to numeric logs of the *system* namespace (``cpu``, ``ram``, ``gpu_util_<i>``,
``gpu_mem_<i>``) with x = milliseconds since monitoring started, which is what
``get_hardware_utilization()`` reads back. Inside a container the cgroup (v1 or v2) limits are
used. Every reader failure is logged (at most every 30 s per source) and the thread goes on.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["CgroupReader", "GpuReader", "HardwareMonitor", "Sample", "gpu_indices"]

log = logging.getLogger("expstream")

#: legacy cadence: one sample every 3 s, measured from the start of each sample
SAMPLE_INTERVAL = 3.0
_GB = float(2**30)

#: (series name, value) pairs of one sample
Sample = list[tuple[str, float]]


class _RateLimitedWarning:
    def __init__(self, every: float = 30.0) -> None:
        self.every = every
        self._last: dict[str, float] = {}

    def __call__(self, source: str, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last.get(source, -1e9) >= self.every:
            self._last[source] = now
            log.warning(message, *args)


class CgroupReader:
    """CPU and memory as a container sees them (cgroup v2, else v1); None where unreadable."""

    def __init__(self, root: Path = Path("/sys/fs/cgroup")) -> None:
        self.root = root
        self.v2 = (root / "cgroup.controllers").exists()
        self._last: tuple[float, float] | None = None  # (cpu seconds, wall seconds)

    @staticmethod
    def _read(path: Path) -> str | None:
        try:
            return path.read_text().strip()
        except OSError:
            return None

    def memory_bytes(self) -> float | None:
        raw = self._read(self.root / "memory.current") if self.v2 else None
        if raw is None:
            raw = self._read(self.root / "memory" / "memory.usage_in_bytes")
        return float(raw) if raw and raw.isdigit() else None

    def memory_limit_bytes(self) -> float | None:
        raw = self._read(self.root / "memory.max") if self.v2 else None
        if raw is None:
            raw = self._read(self.root / "memory" / "memory.limit_in_bytes")
        if not raw or not raw.isdigit():
            return None  # "max" or unreadable: no limit
        value = float(raw)
        return value if value < 2**60 else None

    def cpu_limit_cores(self) -> float | None:
        if self.v2:
            raw = self._read(self.root / "cpu.max")
            if raw:
                quota, _, period = raw.partition(" ")
                if quota != "max" and quota.isdigit() and period.isdigit() and int(period):
                    return int(quota) / int(period)
            return None
        quota_us = self._read(self.root / "cpu" / "cpu.cfs_quota_us")
        period_us = self._read(self.root / "cpu" / "cpu.cfs_period_us")
        if quota_us and period_us and quota_us.lstrip("-").isdigit() and period_us.isdigit() and int(quota_us) > 0:
            return int(quota_us) / int(period_us)
        return None

    def cpu_seconds(self) -> float | None:
        if self.v2:
            raw = self._read(self.root / "cpu.stat")
            for line in (raw or "").splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec" and value.isdigit():
                    return int(value) / 1e6
            return None
        raw = self._read(self.root / "cpuacct" / "cpuacct.usage")
        return int(raw) / 1e9 if raw and raw.isdigit() else None

    def cpu_percent(self, cores: float) -> float | None:
        """CPU-time delta ÷ wall-time delta ÷ allowed cores, as a percentage clamped to 0-100."""
        used = self.cpu_seconds()
        if used is None:
            return None
        now = time.monotonic()
        last, self._last = self._last, (used, now)
        if last is None or now <= last[1]:
            return None
        return max(0.0, min(100.0, (used - last[0]) / (now - last[1]) / max(cores, 1e-9) * 100.0))


def gpu_indices(count: int, visible: str | None) -> list[int]:
    """Card indices to report: ``CUDA_VISIBLE_DEVICES`` as a list of integers, else all."""
    if visible is None or not visible.strip():
        return list(range(count)) if visible is None else []
    picked: list[int] = []
    for part in visible.split(","):
        part = part.strip()
        if not part.lstrip("-").isdigit():
            return list(range(count))  # UUIDs or MIG names: report every card
        index = int(part)
        if index < 0 or index >= count:
            break  # CUDA stops at the first invalid index
        if index not in picked:
            picked.append(index)
    return picked


class GpuReader:
    """Per-card utilization (%) and memory used (bytes) through NVML; no NVML means no GPUs."""

    def __init__(self, nvml: Any = None) -> None:
        self.nvml = nvml
        self.indices: list[int] = []
        if nvml is None:
            try:
                import pynvml  # from the nvidia-ml-py package
            except ImportError:
                return
            self.nvml = pynvml
        try:
            self.nvml.nvmlInit()
            count = self.nvml.nvmlDeviceGetCount()
        except Exception:  # no driver, no card, or a broken NVML
            self.nvml = None
            return
        self.indices = gpu_indices(count, os.environ.get("CUDA_VISIBLE_DEVICES"))

    def sample(self) -> list[tuple[int, float, float]]:
        """``(index, utilization %, memory used bytes)`` for every visible card."""
        out = []
        for index in self.indices:
            handle = self.nvml.nvmlDeviceGetHandleByIndex(index)
            util = float(self.nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            used = float(self.nvml.nvmlDeviceGetMemoryInfo(handle).used)
            out.append((index, util, used))
        return out


def in_container() -> bool:
    if Path("/.dockerenv").exists():
        return True
    try:
        text = Path("/proc/self/cgroup").read_text()
    except OSError:
        return False
    return any(word in text for word in ("docker", "kubepods", "containerd", "lxc"))


class HardwareMonitor:
    """Samples the machine every ``interval`` seconds and hands each sample to ``emit``."""

    def __init__(
        self,
        emit: Callable[[float, Sample], None],
        *,
        interval: float = SAMPLE_INTERVAL,
        gpus: GpuReader | None = None,
        cgroup: CgroupReader | None = None,
        container: bool | None = None,
    ) -> None:
        import psutil

        self._psutil = psutil
        self.emit = emit
        self.interval = interval
        self.gpus = gpus if gpus is not None else GpuReader()
        self.container = in_container() if container is None else container
        self.cgroup = cgroup if cgroup is not None else (CgroupReader() if self.container else None)
        self._warn = _RateLimitedWarning()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started = time.time()
        psutil.cpu_percent()  # the first call only primes the counter

    def start(self) -> None:
        """Take the first sample now (so even a short run has one), then one every ``interval``."""
        self.started = time.time()
        self.sample_once()
        self._thread = threading.Thread(target=self._run, name="expstream-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        begin = time.monotonic()
        while not self._stop.wait(max(0.0, self.interval - (time.monotonic() - begin))):
            begin = time.monotonic()
            self.sample_once()

    def sample_once(self) -> Sample:
        now = time.time()
        sample: Sample = []
        for name, read in (("cpu", self._cpu), ("ram", self._ram)):
            try:
                value = read()
            except Exception as exc:
                self._warn(name, "expstream monitoring: cannot read %s: %s", name, exc)
                continue
            if value is not None:
                sample.append((name, value))
        try:
            for index, util, used in self.gpus.sample():
                sample.append((f"gpu_util_{index}", util))
                sample.append((f"gpu_mem_{index}", used / _GB))
        except Exception as exc:
            self._warn("gpu", "expstream monitoring: NVML failed: %s", exc)
        if sample:
            self.emit((now - self.started) * 1000.0, sample)
        return sample

    def _cpu(self) -> float | None:
        if self.cgroup is not None:
            cores = self.cgroup.cpu_limit_cores() or float(os.cpu_count() or 1)
            value = self.cgroup.cpu_percent(cores)
            if value is not None:
                return value
        return float(self._psutil.cpu_percent())

    def _ram(self) -> float | None:
        if self.cgroup is not None:
            used = self.cgroup.memory_bytes()
            if used is not None:
                return used / _GB
        memory = self._psutil.virtual_memory()
        return (memory.total - memory.available) / _GB
