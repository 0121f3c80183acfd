"""provision.py without starting servers: Kafka cluster ids, failed starts, TLS material, env output."""

from __future__ import annotations

import json
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _provision

provision = _provision()


def test_a_kafka_cluster_id_never_starts_with_a_dash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """urlsafe base64 starts with '-' one time in 64, which the storage tool reads as an option."""
    draws = iter([b"\xf8" + bytes(15), bytes(16)])  # 0xf8 encodes to a leading '-'
    monkeypatch.setattr(provision.secrets, "token_bytes", lambda n: next(draws))
    monkeypatch.setattr(provision, "kafka_home", lambda: tmp_path / "kafka")
    formatted: list[list[str]] = []
    real_run = provision._run

    def run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        if cmd[0] == "java":
            formatted.append(cmd)
            return subprocess.CompletedProcess(cmd, 0, "", "")
        return real_run(cmd, **kw)  # openssl for the certificates

    monkeypatch.setattr(provision, "_run", run)
    svc = {"port": 1, "controller_port": 2, "sasl_ssl_port": 3, "data_dir": str(tmp_path), "password": "pw"}
    provision._kafka_prepare(svc)
    (command,) = formatted
    cluster_id = command[command.index("-t") + 1]
    assert not cluster_id.startswith("-") and len(cluster_id) == 22
    assert svc["secure_env"]["EXPSTREAM_KAFKA_SASL_PASSWORD"] == "pw"
    properties = (tmp_path / "server.properties").read_text()
    assert "SASL_SSL://127.0.0.1:3" in properties and 'user_expstream="pw"' in properties


def test_a_service_that_fails_before_launch_leaves_no_state_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(svc: dict[str, Any]) -> list[str]:
        raise provision.ServiceError("cannot prepare")

    monkeypatch.setattr(provision, "_kafka_prepare", broken)
    state_path = tmp_path / "services.json"
    with pytest.raises(provision.ServiceError, match="cannot prepare"):
        provision.start(["kafka"], state_path)
    assert not state_path.exists() or json.loads(state_path.read_text())["services"] == {}


def test_the_test_certificates_verify_for_127_0_0_1(tmp_path: Path) -> None:
    tls = provision._tls(tmp_path)
    assert provision._tls(tmp_path) == tls  # made once, then reused
    context = ssl.create_default_context(cafile=tls["ca"])
    context.load_verify_locations(tls["ca"])
    keystore = Path(tls["keystore"]).read_text()
    assert keystore.startswith("-----BEGIN PRIVATE KEY-----") and "BEGIN CERTIFICATE" in keystore
    checked = subprocess.run(
        ["openssl", "verify", "-CAfile", tls["ca"], "-verify_ip", "127.0.0.1", tls["cert"]],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr


def test_env_lines_are_shell_quoted_and_secure_ones_come_on_request() -> None:
    state = {
        "env": {"EXPSTREAM_S3": "https://u:p@h:1/b"},
        "secure_env": {"EXPSTREAM_KAFKA_SASL_PASSWORD": "a b'c"},
    }
    assert provision.exports(state) == "export EXPSTREAM_S3=https://u:p@h:1/b\n"
    assert provision.exports(state, secure=True) == "export EXPSTREAM_KAFKA_SASL_PASSWORD='a b'\"'\"'c'\n"
