"""Project.get_leaderboard over E experiments x C channels (target: 1,000 x 20 in <= 1 s).

python bench/bench_leaderboard.py [--experiments 1000] [--channels 20] [--points 10]
"""

from __future__ import annotations

import argparse
import statistics
import time

from _common import fresh_home


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--experiments", type=int, default=1000)
    parser.add_argument("--channels", type=int, default=20)
    parser.add_argument("--points", type=int, default=10)
    args = parser.parse_args()
    with fresh_home():
        import expstream
        from expstream.git_info import GitInfo

        project = expstream.init("bench/leaderboard")
        quiet = dict(
            upload_source_files=[],
            upload_stdout=False,
            upload_stderr=False,
            send_hardware_metrics=False,
            handle_uncaught_exceptions=False,
            git_info=GitInfo(commit_id="0" * 40),
        )
        t = time.perf_counter()
        for e in range(args.experiments):
            exp = project.create_experiment(f"run-{e}", params={"lr": 0.001 * e, "depth": e % 7}, **quiet)
            for c in range(args.channels):
                for x in range(args.points):
                    exp.log_metric(f"metric_{c:02d}", x, e + c + x / 10)
            exp.set_property("seed", e)
            exp.stop()
        exp.sync()
        created = time.perf_counter() - t
        times = []
        for _ in range(5):
            t = time.perf_counter()
            board = project.get_leaderboard()
            times.append(time.perf_counter() - t)
        assert len(board) == args.experiments
        assert sum(c.startswith("channel_") for c in board.columns) == args.channels
        print(
            f"get_leaderboard, {args.experiments:,} experiments x {args.channels} channels "
            f"({board.shape[1]} columns): median {statistics.median(times):.3f} s, first {times[0]:.3f} s "
            f"(set-up {created:.1f} s)"
        )


if __name__ == "__main__":
    main()
