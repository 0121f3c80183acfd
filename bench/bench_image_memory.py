"""Peak memory of logging one large float64 image: how much ``log_image`` adds to the process's peak RSS.

    python bench/bench_image_memory.py [--side 8000] [--channels 1]

Reads VmHWM (the kernel's peak resident set) from /proc/self/status before and after the call, in this
process and with nothing else allocating; the array itself is made before the first reading.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import fresh_home


def _peak_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", type=int, default=8000)
    parser.add_argument("--channels", type=int, default=1, choices=(1, 3, 4))
    args = parser.parse_args()
    with fresh_home():
        import expstream

        expstream.init("bench/images")
        exp = expstream.create_experiment("images", upload_source_files=[], send_hardware_metrics=False)
        shape = (args.side, args.side) if args.channels == 1 else (args.side, args.side, args.channels)
        image = np.empty(shape)
        image[:] = np.linspace(0.0, 1.0, args.side).reshape(1, -1, *([1] * (len(shape) - 2)))  # a small PNG
        exp.log_image("warm", np.zeros((64, 64)))
        exp.wait()
        before = _peak_bytes()
        start = time.perf_counter()
        exp.log_image("big", image)
        exp.wait()
        elapsed = time.perf_counter() - start
        after = _peak_bytes()
        exp.stop()
    print(
        f"{shape} float64 ({image.nbytes / 2**20:.0f} MiB): log_image took {elapsed:.2f} s and raised peak RSS by "
        f"{(after - before) / 2**20:.0f} MiB (uint8 pixels: {image.size / 2**20:.0f} MiB)"
    )


if __name__ == "__main__":
    main()
