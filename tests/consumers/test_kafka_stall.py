"""The stall watch of the Kafka source on its own, with a clock the test moves (no broker: unit tests).

That a stalled member of a real group rejoins and reads its records is in test_kafka_source.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from expstream.consumers.sources import kafka as kafka_source
from expstream.consumers.sources.kafka import _StallWatch


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(kafka_source, "time", clock)
    return clock


class Lag:
    """What the source's look at its partitions answers, and how often it was asked."""

    def __init__(self, **waiting: tuple[int, int]) -> None:
        self.waiting = dict(waiting)
        self.looks = 0

    def __call__(self) -> dict[Any, tuple[int, int]]:
        self.looks += 1
        return dict(self.waiting)


def watch_until(watch: _StallWatch, clock: Clock, lag: Lag, seconds: float, delivered: tuple[str, ...] = ()) -> bool:
    """Polls every 0.5 s for ``seconds``; whether any of them found the member stuck."""
    found = False
    for _ in range(int(seconds / 0.5)):
        clock.now += 0.5
        found = watch.stuck(delivered, lag) or found
    return found


def test_records_that_wait_unreturned_for_stall_after_make_the_member_stuck(clock: Clock) -> None:
    watch = _StallWatch(stall_after=20.0, stall_check=5.0)
    lag = Lag(p0=(3, 10))

    assert not watch_until(watch, clock, lag, 24.0)  # first seen at 5 s: 19 s of waiting
    assert watch_until(watch, clock, lag, 6.0)
    assert watch.last_stuck == ["p0"]
    assert lag.looks == 6  # one look every 5 s, whatever the polls


def test_a_partition_that_returns_records_or_moves_is_not_stuck(clock: Clock) -> None:
    watch = _StallWatch(stall_after=20.0, stall_check=5.0)
    lag = Lag(p0=(3, 10), p1=(0, 5))

    for _ in range(8):  # 40 s: p0 returns records now and then, p1's position moves
        assert not watch_until(watch, clock, lag, 4.5)
        assert not watch.stuck(["p0"], lag)
        clock.now += 0.5
        lag.waiting["p1"] = (lag.waiting["p1"][0] + 1, lag.waiting["p1"][1] + 1)

    lag.waiting = {}  # caught up, then records wait again: the time counts from then
    assert not watch_until(watch, clock, lag, 10.0)
    lag.waiting = {"p1": (20, 21)}
    assert not watch_until(watch, clock, lag, 20.0)
    assert watch_until(watch, clock, lag, 10.0)
    assert watch.last_stuck == ["p1"]


def test_a_look_that_fails_finds_nothing_and_the_next_one_looks_again(clock: Clock) -> None:
    watch = _StallWatch(stall_after=20.0, stall_check=5.0)
    looks = 0

    def unreachable() -> dict[Any, tuple[int, int]]:
        nonlocal looks
        looks += 1
        raise OSError("the broker does not answer")

    for _ in range(20):
        clock.now += 5.0
        assert not watch.stuck((), unreachable)
    assert looks == 20


def test_after_a_stall_the_new_member_gets_the_whole_time_again(clock: Clock) -> None:
    watch = _StallWatch(stall_after=20.0, stall_check=5.0)
    lag = Lag(p0=(3, 10))
    assert watch_until(watch, clock, lag, 25.0)  # stuck at the very last poll

    assert not watch_until(watch, clock, lag, 24.0)
    assert watch_until(watch, clock, lag, 6.0)


class FakeConsumer:
    """A kafka-python consumer that holds one partition and never returns its three waiting records."""

    made: list[FakeConsumer] = []
    refuse_subscribe = 0  # how many of the next consumers fail to join

    def __init__(self, **options: Any) -> None:
        from kafka import TopicPartition

        self.tp = TopicPartition("x.events", 0)
        self.closed = False
        FakeConsumer.made.append(self)

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {0}

    def subscribe(self, topics: list[str], listener: Any = None) -> None:
        if FakeConsumer.refuse_subscribe:
            FakeConsumer.refuse_subscribe -= 1
            raise OSError("the coordinator does not answer")

    def assignment(self) -> set[Any]:
        return {self.tp}

    def poll(self, timeout_ms: int = 0, max_records: int = 0) -> dict[Any, list[Any]]:
        if self.closed:
            raise RuntimeError("KafkaConsumer is closed")
        return {}

    def end_offsets(self, partitions: list[Any], timeout_ms: int | None = None) -> dict[Any, int]:
        return {tp: 3 for tp in partitions}

    def committed(self, tp: Any, timeout_ms: int | None = None) -> int | None:
        return None

    def beginning_offsets(self, partitions: list[Any], timeout_ms: int | None = None) -> dict[Any, int]:
        return {tp: 0 for tp in partitions}

    def close(self, autocommit: bool = True) -> None:
        self.closed = True


def test_a_rejoin_that_fails_is_tried_again_by_the_next_poll_and_leaves_no_consumer_open(
    clock: Clock, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    import kafka

    from expstream.config import load_settings
    from expstream.exceptions import TransportError

    monkeypatch.setattr(kafka, "KafkaConsumer", FakeConsumer)
    monkeypatch.setattr(kafka_source, "ensure_topics", lambda settings: {})
    monkeypatch.setattr(FakeConsumer, "made", [])
    source = kafka_source.KafkaSource(load_settings(home=tmp_path, kafka="127.0.0.1:9"), group="g")
    FakeConsumer.refuse_subscribe = 1
    with pytest.raises(TransportError, match="the coordinator does not answer"):
        for _ in range(100):  # 50 s of polls: stuck at 25 s, and the new member cannot join
            clock.now += 0.5
            source.poll()

    first, refused = FakeConsumer.made
    assert first.closed and refused.closed  # the stuck member left; the one that failed to join is closed

    assert source.poll() == []  # joins now
    assert len(FakeConsumer.made) == 3 and not FakeConsumer.made[2].closed
    source.close()
    assert FakeConsumer.made[2].closed
