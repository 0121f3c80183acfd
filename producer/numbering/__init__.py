"""Experiment numbering: ``<KEY>-<N>`` with N counting from 1 per project, no gaps, no duplicates."""

from expstream.producer.numbering.base import Numbering, project_key
from expstream.producer.numbering.local_file import LocalFileNumbering

__all__ = ["LocalFileNumbering", "Numbering", "project_key"]
