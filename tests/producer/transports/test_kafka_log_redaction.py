"""The SASL password never reaches a log record of kafka-python, whichever of its loggers writes it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from expstream.config import Settings
from expstream.eventlog.kafka import kafka_options

SECRET = "pä$$-wörd\\1"


def test_kafka_records_lose_the_password_as_text_and_as_request_bytes(caplog: pytest.LogCaptureFixture) -> None:
    options = kafka_options(
        Settings(
            kafka="127.0.0.1:9",
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism="PLAIN",
            kafka_sasl_username="alice",
            kafka_sasl_password=SECRET,
            home=Path("/nonexistent"),
        )
    )
    assert options["sasl_plain_password"] == SECRET  # the client still gets it
    caplog.set_level(logging.DEBUG)
    request = b"alice\x00alice\x00" + SECRET.encode()
    logging.getLogger("kafka.net.connection").debug("Request 3: SaslAuthenticateRequest(auth_bytes=%r)", request)
    logging.getLogger("kafka.some.future.module").info("password is %s", SECRET)
    logging.getLogger("myapp").info("unrelated %s", "text")
    assert SECRET not in caplog.text and repr(SECRET.encode())[2:-1] not in caplog.text
    assert caplog.text.count("***") == 2
    assert "unrelated text" in caplog.text
