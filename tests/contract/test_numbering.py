"""The numbering port's contract, run over both adapters: the counter file of the embedded default and
the Kafka sequencer of the distributed mode.

What every adapter promises (producer/numbering/base.py): numbers of a project start at 1 and go up by one,
are never handed out twice (across instances, threads and restarts), a run id keeps its number for every
process that attaches, projects count independently, and past the limit nothing is handed out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from expstream.exceptions import ExperimentNumbersExhausted
from expstream.producer.numbering import Numbering

#: makes a new adapter instance over the same shared state, as another process would see it
NumberingFactory = Callable[..., Numbering]


@pytest.fixture(params=["local_file", "kafka"])
def new_numbering(request: pytest.FixtureRequest, tmp_path: Path) -> NumberingFactory:
    if request.param == "local_file":
        from expstream.producer.numbering.local_file import LocalFileNumbering

        folder = tmp_path / "numbers"
        return lambda **kw: LocalFileNumbering(folder, **kw)
    from expstream.producer.numbering.kafka import KafkaNumbering

    settings = request.getfixturevalue("cluster")  # own topic prefix: a numbering topic of its own
    return lambda **kw: KafkaNumbering(settings, **kw)


def test_numbers_start_at_one_and_count_up_per_project(new_numbering: NumberingFactory) -> None:
    numbering = new_numbering()
    assert [numbering.next_number("acme/a") for _ in range(3)] == [1, 2, 3]
    assert numbering.next_number("acme/b") == 1
    assert numbering.next_number("acme/a") == 4


def test_another_instance_goes_on_where_the_last_stopped(new_numbering: NumberingFactory) -> None:
    first = new_numbering()
    assert [first.next_number("acme/a"), first.next_number("acme/a")] == [1, 2]
    second = new_numbering()  # a later process: never reuses a number
    assert second.next_number("acme/a") == 3
    assert first.next_number("acme/a") == 4  # and the first one sees the second's claim


def test_a_run_id_keeps_its_number_for_every_process_that_attaches(new_numbering: NumberingFactory) -> None:
    creator = new_numbering()
    assert creator.next_number("acme/a") == 1
    assert creator.number_for_run("acme/a", "job-7") == (2, True)
    assert creator.number_for_run("acme/a", "job-7") == (2, False)
    attacher = new_numbering()
    assert attacher.number_for_run("acme/a", "job-7") == (2, False)
    assert attacher.number_for_run("acme/a", "job-8") == (3, True)
    assert attacher.number_for_run("acme/b", "job-7") == (1, True)  # run ids belong to their project
    assert creator.next_number("acme/a") == 4


def test_concurrent_claims_get_distinct_consecutive_numbers(new_numbering: NumberingFactory) -> None:
    instances = [new_numbering(), new_numbering()]
    got: list[int] = []
    lock = threading.Lock()

    def claim(numbering: Numbering, count: int) -> None:
        for _ in range(count):
            number = numbering.next_number("acme/race")
            with lock:
                got.append(number)

    threads = [threading.Thread(target=claim, args=(instances[i % 2], 10)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(got) == list(range(1, 41))


def test_past_the_limit_nothing_is_handed_out(new_numbering: NumberingFactory) -> None:
    numbering = new_numbering(limit=2)
    assert [numbering.next_number("acme/a"), numbering.number_for_run("acme/a", "r")] == [1, (2, True)]
    with pytest.raises(ExperimentNumbersExhausted, match="acme/a"):
        numbering.next_number("acme/a")
    with pytest.raises(ExperimentNumbersExhausted, match="acme/a"):
        numbering.number_for_run("acme/a", "another")
    assert numbering.number_for_run("acme/a", "r") == (2, False)  # attaching needs no new number
    assert numbering.next_number("acme/b") == 1  # other projects are not affected
    later = new_numbering(limit=2)
    with pytest.raises(ExperimentNumbersExhausted):
        later.next_number("acme/a")
