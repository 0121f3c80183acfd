"""Git metadata of the code an experiment runs, read with the ``git`` binary when there is one."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

__all__ = ["GitInfo", "get_git_info"]


@dataclass
class GitInfo:
    commit_id: str
    message: str = ""
    author_name: str = ""
    author_email: str = ""
    commit_date: dt.datetime | None = None
    repository_dirty: bool = True
    active_branch: str = ""
    remote_urls: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.commit_id is None:
            raise TypeError("commit_id must not be None")

    def to_system_properties(self) -> dict[str, str]:
        return {
            "git_commit_id": self.commit_id,
            "git_message": self.message,
            "git_author_name": self.author_name,
            "git_author_email": self.author_email,
            "git_commit_date": self.commit_date.isoformat() if self.commit_date else "",
            "git_repository_dirty": str(self.repository_dirty),
            "git_active_branch": self.active_branch,
            "git_remote_urls": ",".join(self.remote_urls),
        }


def _git(folder: str, *args: str) -> str:
    out = subprocess.run(["git", "-C", folder, *args], capture_output=True, text=True, timeout=5, check=True)
    return out.stdout.strip()


def get_git_info(start: str | None = None) -> GitInfo | None:
    """Git info of the repository around the main script (or the cwd); None when there is none."""
    if shutil.which("git") is None:
        return None
    if start is None:
        main = sys.modules.get("__main__")
        main_file = getattr(main, "__file__", None)
        start = os.path.dirname(os.path.abspath(main_file)) if main_file else os.getcwd()
    try:
        commit = _git(start, "rev-parse", "HEAD")
        fmt = _git(start, "log", "-1", "--format=%an%x00%ae%x00%cI%x00%B")
        author, email, date, message = [*fmt.split("\x00", 3), "", "", ""][:4]
        branch = _git(start, "rev-parse", "--abbrev-ref", "HEAD")
        dirty = bool(_git(start, "status", "--porcelain"))
        remotes = [line.split()[1] for line in _git(start, "remote", "-v").splitlines() if "(fetch)" in line]
    except (OSError, subprocess.SubprocessError):
        return None
    return GitInfo(
        commit_id=commit,
        message=message.strip(),
        author_name=author,
        author_email=email,
        commit_date=dt.datetime.fromisoformat(date) if date else None,
        repository_dirty=dirty,
        active_branch="Detached HEAD" if branch == "HEAD" else branch,
        remote_urls=remotes,
    )
