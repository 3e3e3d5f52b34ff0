"""The fair queue on its own, with plain objects: who starts next, and the order the rest would follow."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pipeline.executor.fair import FairQueue


@dataclass(eq=False)
class Job:
    name: str

    @property
    def owner(self) -> str:
        return self.name[0]

    def __repr__(self) -> str:
        return self.name


def queue_of(*names: str, priorities: dict[str, int] | None = None) -> tuple[FairQueue[Job], dict[str, Job]]:
    queue: FairQueue[Job] = FairQueue()
    jobs = {}
    for name in names:
        jobs[name] = Job(name)
        queue.push(jobs[name], priority=(priorities or {}).get(name, 0))
    return queue, jobs


def names(jobs) -> list[str]:
    return [job.name for job in jobs]


def take_all(queue: FairQueue[Job]) -> list[str]:
    taken = []
    while (job := queue.take_next()) is not None:
        taken.append(job.name)
    return taken


def test_owners_take_turns_instead_of_first_come_first_served():
    queue, _ = queue_of("a1", "a2", "a3", "b1", "b2", "c1")
    assert len(queue) == 6
    assert names(queue.order()) == ["a1", "b1", "c1", "a2", "b2", "a3"]
    assert take_all(queue) == ["a1", "b1", "c1", "a2", "b2", "a3"]
    assert len(queue) == 0 and queue.take_next() is None and queue.order() == []


def test_an_owner_with_jobs_in_service_goes_behind_the_others():
    queue, _ = queue_of("a1", "b1", "c1")
    running = {"a": 2, "b": 1}
    assert names(queue.order(lambda owner: running.get(owner, 0))) == ["c1", "b1", "a1"]
    assert queue.take_next(lambda owner: running.get(owner, 0)).name == "c1"


def test_the_owner_served_least_recently_goes_first_and_a_newcomer_before_both():
    queue, _ = queue_of("a1", "a2", "b1", "b2")
    assert queue.take_next().name == "a1"
    assert queue.take_next().name == "b1"
    queue.push(Job("c1"))  # never served: ahead of a and b, though it came last
    assert names(queue.order()) == ["c1", "a2", "b2"]


def test_rejoining_after_an_empty_spell_does_not_jump_the_line():
    queue, _ = queue_of("a1", "b1", "b2")
    assert queue.take_next().name == "a1"
    queue.push(Job("a2"))  # a was served last; b waited longer
    assert names(queue.order()) == ["b1", "a2", "b2"]


def test_a_higher_priority_tier_overtakes_turns_and_jobs_in_service():
    queue, _ = queue_of("a1", "b1", "b2", "c1", "c2", priorities={"b2": 1, "c2": 2})
    running = {"c": 5}
    assert names(queue.order(lambda owner: running.get(owner, 0))) == ["c2", "b2", "a1", "b1", "c1"]
    # An owner's own favoured job overtakes their older one too; with nothing in service,
    # c (served first) is back before b.
    assert take_all(queue) == ["c2", "b2", "a1", "c1", "b1"]


def test_ties_go_to_the_oldest_job_whatever_the_owners_are_called():
    queue, _ = queue_of("z1", "m1", "a1")
    assert names(queue.order()) == ["z1", "m1", "a1"]


def test_remove_withdraws_a_waiting_item_without_counting_as_a_turn():
    queue, jobs = queue_of("a1", "a2", "b1", "b2")
    look_alike = Job("b1")
    assert queue.remove(look_alike) is False  # items are told apart by identity
    assert queue.remove(jobs["b1"]) is True
    assert queue.remove(jobs["b1"]) is False
    assert len(queue) == 3
    assert names(queue.order()) == ["a1", "b2", "a2"]
    assert queue.remove(Job("x1")) is False


def test_take_starts_a_chosen_item_and_serves_its_owner():
    queue, jobs = queue_of("a1", "a2", "b1", "b2")
    assert queue.take_next().name == "a1"
    queue.take(jobs["b1"])  # e.g. a batch-mate: b now went after a
    assert names(queue.order()) == ["a2", "b2"]
    with pytest.raises(ValueError, match="not waiting"):
        queue.take(jobs["b1"])


def test_order_is_what_successive_takes_would_start():
    queue, jobs = queue_of(
        "a1", "b1", "a2", "c1", "a3", "b2", "d1", "c2", "b3", priorities={"c2": 1, "a3": 1}
    )
    queue.take(jobs["b1"])
    running = {"a": 1, "d": 2}
    predicted = names(queue.order(lambda owner: running.get(owner, 0)))
    started = []
    while (job := queue.take_next(lambda owner: running.get(owner, 0))) is not None:
        running[job.owner] = running.get(job.owner, 0) + 1
        started.append(job.name)
    assert started == predicted
    assert predicted == ["c2", "a3", "b2", "c1", "b3", "d1", "a1", "a2"]


def test_iteration_and_drain_give_the_waiting_items_oldest_first():
    queue, _ = queue_of("a1", "b1", "a2", priorities={"a2": 3})
    assert names(queue) == ["a1", "b1", "a2"]
    assert names(queue.drain()) == ["a1", "b1", "a2"]
    assert len(queue) == 0 and list(queue) == []
