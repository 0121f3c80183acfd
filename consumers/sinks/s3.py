"""An S3 bucket through the ``minio`` client, kept S3-generic (path-style, plain S3 calls only).

Every put is checked: the client sends the payload's SHA-256 (HTTP) or MD5 (HTTPS) for the server
to verify, and the ETag the server answers must be the MD5 of the object (``md5(md5(part)...)-N``
for a multipart upload); a server whose ETags are not MD5s gets small objects read back instead.
``compose`` does not use S3's server-side compose (its parts must be at least 5 MiB): it spools the
parts' concatenation to a temporary file and uploads that. Errors leave as :class:`StorageError`
without credentials.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from expstream.consumers.sinks.base import ObjectStore, check_digest, validate_key
from expstream.exceptions import ConfigurationError, StorageError
from expstream.service_urls import parse_s3_url

__all__ = ["S3ObjectStore"]

MIN_PART_SIZE = 5 * 1024 * 1024
_MISSING = {"NoSuchKey", "NoSuchObject", "NotFound", "ResourceNotFound"}
_MD5_ETAG = re.compile(r"[0-9a-f]{32}(-\d+)?")
_SPOOL_BYTES = 16 * 1024 * 1024
_COPY_BUFFER = 1024 * 1024


def _expected_etag(part_md5s: list[bytes]) -> str:
    """The ETag S3 gives an object uploaded in these parts (one part: its MD5)."""
    if len(part_md5s) == 1:
        return part_md5s[0].hex()
    return f"{hashlib.md5(b''.join(part_md5s)).hexdigest()}-{len(part_md5s)}"


class S3ObjectStore(ObjectStore):
    """Objects as keys of one bucket; created if missing. Thread-safe (one pooled HTTP client)."""

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        *,
        access_key: str,
        secret_key: str,
        secure: bool = False,
        ca: Path | None = None,
        region: str | None = None,
        part_size: int = 16 * 1024 * 1024,
        verify_limit: int = 16 * 1024 * 1024,
    ) -> None:
        import certifi
        import urllib3
        from minio import Minio

        if part_size < MIN_PART_SIZE:
            raise ConfigurationError(f"S3 part size must be at least {MIN_PART_SIZE} bytes, got {part_size}")
        self.endpoint = endpoint
        self.bucket = bucket
        self.secure = secure
        self.part_size = part_size
        self.verify_limit = verify_limit
        self._secrets = [s for s in (secret_key, access_key) if s]
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=10.0, read=120.0),
            maxsize=16,
            cert_reqs="CERT_REQUIRED",
            ca_certs=str(ca) if ca is not None else os.environ.get("SSL_CERT_FILE") or certifi.where(),
            retries=urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
        )
        self._client = Minio(
            endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region, http_client=http
        )
        self._ensure_bucket()

    @classmethod
    def from_url(cls, url: str, ca: Path | None = None) -> S3ObjectStore:
        """``http(s)://access_key:secret_key@host:port/bucket`` (``?region=...`` optional)."""
        parsed = parse_s3_url(url)
        return cls(
            parsed.endpoint,
            parsed.bucket,
            access_key=parsed.access_key,
            secret_key=parsed.secret_key,
            secure=parsed.secure,
            ca=ca,
            region=parsed.region,
        )

    def __repr__(self) -> str:
        return f"S3ObjectStore('{'https' if self.secure else 'http'}://{self.endpoint}/{self.bucket}')"

    # --- errors ------------------------------------------------------------------------------

    def _scrub(self, exc: BaseException) -> str:
        from minio.error import S3Error

        text = f"{exc.code}: {exc.message}" if isinstance(exc, S3Error) else f"{type(exc).__name__}: {exc}"
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except (KeyError, StorageError, ValueError):
            raise
        except Exception as exc:
            raise StorageError(f"S3 {what} failed on {self!r}: {self._scrub(exc)}") from exc

    @staticmethod
    def _missing(exc: BaseException) -> bool:
        from minio.error import S3Error

        return isinstance(exc, S3Error) and exc.code in _MISSING

    def _ensure_bucket(self) -> None:
        from minio.error import S3Error

        with self._errors(f"bucket check of {self.bucket!r}"):
            if self._client.bucket_exists(self.bucket):
                return
            try:
                self._client.make_bucket(self.bucket)
            except S3Error as exc:
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

    # --- the port ----------------------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        validate_key(key)
        self._upload(key, io.BytesIO(data), len(data))

    def _upload(self, key: str, stream: IO[bytes], length: int) -> None:
        """Upload ``length`` bytes of a seekable stream, then check the server got exactly them."""
        start = stream.tell()
        part_md5s = []
        part_size = self.part_size if length > self.part_size else max(length, 1)
        while chunk := stream.read(part_size):
            part_md5s.append(hashlib.md5(chunk).digest())
        expected = _expected_etag(part_md5s or [hashlib.md5(b"").digest()])
        stream.seek(start)
        with self._errors(f"put of {key!r}"):
            # minio only reads it: any readable binary stream does (its hint says BinaryIO)
            result = self._client.put_object(self.bucket, key, cast(BinaryIO, stream), length, part_size=self.part_size)
        etag = (result.etag or "").strip('"').lower()
        if _MD5_ETAG.fullmatch(etag):
            if etag != expected:
                raise StorageError(f"S3 put of {key!r}: the server's ETag {etag} is not the data's {expected}")
        elif length <= self.verify_limit:  # not an MD5 ETag (e.g. encrypted at rest): read it back
            stream.seek(start)
            if hashlib.sha256(self.get(key)).digest() != hashlib.sha256(stream.read(length)).digest():
                raise StorageError(f"S3 put of {key!r}: the object read back differs from the data written")

    def get(self, key: str) -> bytes:
        validate_key(key)
        with self._object(key) as response:
            return bytes(response.read())

    @contextmanager
    def _object(self, key: str) -> Iterator[Any]:
        """The open response of ``key`` (KeyError when absent); its connection goes back to the pool after."""
        with self._errors(f"get of {key!r}"):
            response: Any = None
            try:
                response = self._client.get_object(self.bucket, key)
                yield response
            except Exception as exc:
                if self._missing(exc):
                    raise KeyError(key) from None
                raise
            finally:
                if response is not None:
                    response.close()
                    response.release_conn()

    def exists(self, key: str) -> bool:
        validate_key(key)
        with self._errors(f"stat of {key!r}"):
            try:
                self._client.stat_object(self.bucket, key)
            except Exception as exc:
                if self._missing(exc):
                    return False
                raise
        return True

    def delete(self, key: str) -> None:
        validate_key(key)
        with self._errors(f"delete of {key!r}"):
            self._client.remove_object(self.bucket, key)  # S3 answers 204 for absent keys too

    def list(self, prefix: str) -> list[str]:
        with self._errors(f"list of {prefix!r}"):
            return sorted(o.object_name for o in self._client.list_objects(self.bucket, prefix=prefix, recursive=True))

    def compose(self, key: str, parts: Sequence[str], *, sha256: str | None = None) -> None:
        """Spool the parts' concatenation (memory, then disk past 16 MiB) and upload it as one object;
        with ``sha256`` the spool is hashed on the way and uploaded only if it matches."""
        validate_key(key)
        for part in parts:
            validate_key(part)
        digest = hashlib.sha256()
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
            for part in parts:
                self._copy_into(part, spool, digest)
            check_digest(key, digest, sha256)
            length = spool.tell()
            spool.seek(0)
            self._upload(key, spool, length)

    def _copy_into(self, key: str, out: IO[bytes], digest: Any) -> None:
        with self._object(key) as response:
            while block := response.read(_COPY_BUFFER):
                digest.update(block)
                out.write(block)
