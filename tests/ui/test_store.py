"""The UI's store thread keeps chdb open between reads and lets go when another process waits for it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from expstream.consumers.sinks.chdb import ChdbTables
from expstream.ui.store import OnStoreThread, StoreThread

OTHER = """
import sys
from pathlib import Path
from expstream.consumers.sinks.chdb import ChdbTables
tables = ChdbTables(Path(sys.argv[1]))
with tables.hold(20):  # LockTimeout after 20 s if the UI never let go
    print(int(tables.query_df("SELECT count() AS n FROM experiments")["n"].iloc[0]))
"""


def test_reads_share_one_open_folder_and_a_waiting_process_gets_it(tmp_path: Path) -> None:
    tables = ChdbTables(tmp_path / "chdb")
    tables.ensure_schema()
    store = StoreThread(tables, linger=60.0, max_hold=60.0)  # would hold for a minute if nobody asked
    try:
        count = OnStoreThread(tables, store)
        assert count.query_df("SELECT 1 AS one")["one"].iloc[0] == 1
        assert tables._session is not None  # still open after the read: the next one is cheap
        done = subprocess.run([sys.executable, "-c", OTHER, str(tmp_path / "chdb")], capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "0"
        assert count.query_df("SELECT 2 AS two")["two"].iloc[0] == 2  # and the UI reads again afterwards
    finally:
        store.close()
        tables.close()
    assert tables._session is None
