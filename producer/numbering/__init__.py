"""Experiment numbering: ``<KEY>-<N>`` with N counting from 1 per project, no gaps, no duplicates."""

from expstream.producer.numbering.base import MAX_NUMBER, KnownNumbers, Numbering, project_key, run_experiment_id
from expstream.producer.numbering.local_file import LocalFileNumbering

__all__ = ["MAX_NUMBER", "KnownNumbers", "LocalFileNumbering", "Numbering", "project_key", "run_experiment_id"]
