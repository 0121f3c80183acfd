"""The hardware monitor's NVML reader against a real GPU: a manual check for a machine with one.

The tests fake NVML at its boundary; this compares the real readings with ``nvidia-smi``, idle and
(when torch is there) under a matmul load. It loads ``producer/monitoring.py`` by path, so the GPU
machine needs only ``nvidia-ml-py`` and ``psutil``, installed into a folder beside it:

    pip install --target build/gpu-deps nvidia-ml-py psutil     # here; build/ is git-ignored
    python3 scripts/gpu_check.py                                  # there, with build/ carried along
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOAD = (
    "import torch, time\nx = torch.randn(8192, 8192, device='cuda')\n"
    "t = time.time()\nwhile time.time() - t < 12: x @ x\n"
)


def smi(query: str) -> str:
    if shutil.which("nvidia-smi") is None:
        return "no nvidia-smi"
    return subprocess.run(
        ["nvidia-smi", f"--query-gpu={query}", "--format=csv"], capture_output=True, text=True, check=False
    ).stdout


def main() -> None:
    sys.path.insert(0, str(ROOT / "build" / "gpu-deps"))
    spec = importlib.util.spec_from_file_location("monitoring", ROOT / "producer" / "monitoring.py")
    monitoring = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(monitoring)  # type: ignore[union-attr]
    print("python", sys.version.split()[0], "CUDA_VISIBLE_DEVICES", os.environ.get("CUDA_VISIBLE_DEVICES"))
    print(smi("index,name,utilization.gpu,memory.used,memory.total"))
    reader = monitoring.GpuReader()
    print("GpuReader.sample() idle:", reader.sample())
    load = None
    try:
        import torch  # noqa: F401

        load = subprocess.Popen([sys.executable, "-c", LOAD])
        time.sleep(5)
    except ImportError as exc:
        print("no torch for a load:", exc)
    samples = []
    for _ in range(5):
        samples.append(reader.sample())
        time.sleep(1)
    print("GpuReader.sample() under load:", samples)
    print(smi("index,utilization.gpu,memory.used"))
    emitted: list[object] = []
    monitor = monitoring.HardwareMonitor(lambda x, sample: emitted.append((round(x), sample)), interval=1.0)
    monitor.start()
    time.sleep(2.5)
    monitor.stop()
    print("HardwareMonitor emitted:", json.dumps(emitted))
    if load is not None:
        load.wait()
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    print("CUDA_VISIBLE_DEVICES='' ->", monitoring.GpuReader().indices)


if __name__ == "__main__":
    main()
