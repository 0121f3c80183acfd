"""Legacy ``neptune.utils`` helpers that integrations import."""

from expstream.git_info import get_git_info

__all__ = ["get_git_info"]
