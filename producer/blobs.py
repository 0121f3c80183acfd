"""Blob upload: bytes become ArtifactChunk events on the blobs topic, addressed by their sha256."""

from __future__ import annotations

from typing import BinaryIO

from expstream.producer.stream import ExperimentStream
from expstream.producer.uploads import blob_chunks
from expstream.producer.writer import Writer

__all__ = ["send_bytes", "send_source"]

#: chunks handed to the transport per call: bounds memory for large files
_CHUNKS_PER_SEND = 8


def send_source(
    writer: Writer, stream: ExperimentStream, source: bytes | BinaryIO, chunk_bytes: int
) -> tuple[str, int]:
    """Send a blob in chunks; returns ``(sha256, size)`` once every chunk is with the transport."""
    blob = blob_chunks(source, chunk_bytes)
    pending: list[bytes] = []
    for offset, data in blob.chunks:
        pending.append(
            stream.encode_now(
                "ArtifactChunk", {"sha256": blob.sha256, "offset": offset, "size": blob.size, "data": data}
            )
        )
        if len(pending) >= _CHUNKS_PER_SEND:
            writer.send_blob(stream, pending)
            pending = []
    if pending:
        writer.send_blob(stream, pending)
    return blob.sha256, blob.size


def send_bytes(writer: Writer, stream: ExperimentStream, data: bytes, chunk_bytes: int) -> tuple[str, int]:
    return send_source(writer, stream, data, chunk_bytes)
