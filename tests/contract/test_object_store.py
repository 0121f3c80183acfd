"""The ObjectStore contract, run against every adapter in ``expstream.wiring.OBJECT_STORES``."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from expstream.consumers.sinks.base import ObjectStore
from expstream.exceptions import ConfigurationError, StorageError
from expstream.wiring import OBJECT_STORES, create_object_store


def _options(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, object]:
    if kind == "localfs":
        return {"root": tmp_path / "store"}
    if kind == "s3":  # a bucket of its own on the session's S3 server
        return {"url": request.getfixturevalue("new_s3_url")(), "ca": request.getfixturevalue("s3_ca")}
    return {}


@pytest.fixture(params=OBJECT_STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    options = _options(request.param, request, tmp_path)
    adapter = create_object_store(request.param, **options)
    yield adapter
    adapter.close()
    adapter.close()  # idempotent


BINARY = bytes(range(256)) * 3


def test_put_then_get_returns_the_same_bytes(store: ObjectStore) -> None:
    store.put("blobs/ab/cdef", BINARY)
    assert store.get("blobs/ab/cdef") == BINARY
    assert store.exists("blobs/ab/cdef")


def test_empty_object(store: ObjectStore) -> None:
    store.put("empty", b"")
    assert store.get("empty") == b""
    assert store.exists("empty")


def test_overwrite_replaces_the_object(store: ObjectStore) -> None:
    store.put("k", b"first, longer value")
    store.put("k", b"second")
    assert store.get("k") == b"second"
    assert store.list("") == ["k"]


def test_missing_key(store: ObjectStore) -> None:
    assert not store.exists("nope")
    with pytest.raises(KeyError):
        store.get("nope")
    store.delete("nope")  # absent keys are fine


def test_delete(store: ObjectStore) -> None:
    store.put("a/b/c", b"1")
    store.put("a/b/d", b"2")
    store.delete("a/b/c")
    assert not store.exists("a/b/c")
    assert store.get("a/b/d") == b"2"
    store.delete("a/b/d")
    assert store.list("") == []


def test_a_deleted_folder_key_can_become_an_object(store: ObjectStore) -> None:
    store.put("x/y", b"1")
    store.delete("x/y")
    store.put("x", b"2")
    assert store.get("x") == b"2"


def test_list_by_prefix_is_sorted_and_a_plain_string_prefix(store: ObjectStore) -> None:
    keys = ["exp/2/b", "exp/1/a", "exp/10/c", "exp/1/sub/z", "other/q", "top"]
    for key in keys:
        store.put(key, key.encode())
    assert store.list("") == sorted(keys)
    assert store.list("exp/") == ["exp/1/a", "exp/1/sub/z", "exp/10/c", "exp/2/b"]
    assert store.list("exp/1") == ["exp/1/a", "exp/1/sub/z", "exp/10/c"]
    assert store.list("exp/1/") == ["exp/1/a", "exp/1/sub/z"]
    assert store.list("exp/1/a") == ["exp/1/a"]
    assert store.list("t") == ["top"]
    assert store.list("missing/") == []
    assert store.list("../") == []


def test_non_ascii_keys(store: ObjectStore) -> None:
    store.put("wyniki/zażółć 漢字.csv", b"x")
    assert store.list("wyniki/") == ["wyniki/zażółć 漢字.csv"]
    assert store.get("wyniki/zażółć 漢字.csv") == b"x"


def test_compose_concatenates_parts_in_order(store: ObjectStore) -> None:
    store.put("parts/0", b"abc")
    store.put("parts/1", BINARY)
    store.put("parts/2", b"")
    store.compose("whole/blob", ["parts/0", "parts/1", "parts/2", "parts/0"])
    assert store.get("whole/blob") == b"abc" + BINARY + b"abc"
    assert store.get("parts/1") == BINARY  # parts stay


def test_compose_can_overwrite_one_of_its_parts(store: ObjectStore) -> None:
    store.put("k", b"12")
    store.put("j", b"34")
    store.compose("k", ["k", "j"])
    assert store.get("k") == b"1234"


def test_compose_with_a_missing_part_raises_key_error_and_writes_nothing(store: ObjectStore) -> None:
    store.put("p0", b"x")
    with pytest.raises(KeyError):
        store.compose("whole", ["p0", "p-missing"])
    assert not store.exists("whole")
    assert store.list("") == ["p0"]


@pytest.mark.parametrize("key", ["", "/abs", "../up", "a/../../up", "a//b", "a/./b", "a/", "a\\b", "a\0b", "."])
def test_keys_that_could_escape_are_refused(store: ObjectStore, key: str) -> None:
    with pytest.raises(ValueError):
        store.put(key, b"x")
    with pytest.raises(ValueError):
        store.get(key)
    with pytest.raises(ValueError):
        store.compose(key, [])


def test_concurrent_writers_never_leave_a_torn_object(store: ObjectStore) -> None:
    values = [bytes([i]) * 100_000 for i in range(8)]
    seen: list[bytes] = []

    def write(value: bytes) -> None:
        for _ in range(5):
            store.put("shared", value)
            seen.append(store.get("shared"))

    threads = [threading.Thread(target=write, args=(v,)) for v in values]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(s in values for s in seen)
    assert store.get("shared") in values


def test_unknown_adapter_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="memory"):
        create_object_store("nosuchstore")


def test_local_folder_survives_reopening(tmp_path: Path) -> None:
    create_object_store("localfs", root=tmp_path).put("a/b", b"kept")
    assert create_object_store("localfs", root=tmp_path).get("a/b") == b"kept"


def test_local_folder_key_that_is_also_a_folder_raises_storage_error(tmp_path: Path) -> None:
    store = create_object_store("localfs", root=tmp_path)
    store.put("a/b", b"1")
    with pytest.raises(StorageError):
        store.put("a", b"2")
    store.put("c", b"3")
    with pytest.raises(StorageError):
        store.put("c/d", b"4")
    assert store.list("") == ["a/b", "c"]
    assert list((tmp_path / "tmp").iterdir()) == []  # failed writes leave no temporary files


# --- S3 specifics ---------------------------------------------------------------------------------


@pytest.fixture
def s3_bucket(new_s3_url: Callable[[], str]) -> str:
    return new_s3_url()


def test_s3_multipart_put_and_compose_of_large_objects(s3_bucket: str, s3_ca: Path | None) -> None:
    from expstream.consumers.sinks.s3 import MIN_PART_SIZE, S3ObjectStore

    store = S3ObjectStore.from_url(s3_bucket, ca=s3_ca)
    store.part_size = MIN_PART_SIZE  # 11 MiB → three parts
    big = hashlib.sha256(b"seed").digest() * (11 * 1024 * 1024 // 32) + b"tail"
    store.put("big", big)  # the multipart ETag is checked against the parts' MD5s
    assert store.get("big") == big
    store.put("small", b"abc")
    store.compose("whole", ["big", "small", "big"])
    assert hashlib.sha256(store.get("whole")).digest() == hashlib.sha256(big + b"abc" + big).digest()


def test_s3_creates_its_bucket_and_keeps_secrets_out_of_repr_and_errors(s3_bucket: str, s3_ca: Path | None) -> None:
    from expstream.consumers.sinks.s3 import S3ObjectStore

    parts = urlsplit(s3_bucket)
    secret = parts.password
    assert secret
    store = S3ObjectStore.from_url(s3_bucket, ca=s3_ca)
    store.put("a", b"1")
    assert S3ObjectStore.from_url(s3_bucket, ca=s3_ca).get("a") == b"1"  # an existing bucket is fine
    assert secret not in repr(store) and f"{parts.username}:" not in repr(store)
    wrong = urlunsplit(parts._replace(netloc=f"{parts.username}:{secret}x@{parts.hostname}:{parts.port}"))
    with pytest.raises(StorageError) as caught:
        S3ObjectStore.from_url(wrong, ca=s3_ca)
    assert secret not in str(caught.value)
    assert caught.value.__cause__ is not None
    with pytest.raises(ConfigurationError) as bad:
        S3ObjectStore.from_url(f"ftp://user:{secret}@host/bucket")
    assert secret not in str(bad.value)


def test_s3_unreachable_server_is_a_storage_error() -> None:
    from expstream.consumers.sinks.s3 import S3ObjectStore

    with pytest.raises(StorageError) as caught:
        S3ObjectStore.from_url("http://key:topsecret@127.0.0.1:9/bucket")
    assert "topsecret" not in str(caught.value)
