"""The one fair-queue policy both executors start waiting jobs by.

Who starts next: the highest priority tier first; within a tier, the owner with the fewest jobs in
service (running on this process's devices, or handed to the fleet's workers), then the owner
served least recently, then the oldest job. So owners take turns, one user's burst never holds
everyone else back, and a favoured tier overtakes the rest.

Pure bookkeeping: no threads, no I/O. The executor guards it with its own lock and says how many
jobs each owner has in service, since only the executor knows what is running.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar


class Owned(Protocol):
    """What the queue needs of an item: whose job it is."""

    @property
    def owner(self) -> str: ...


ItemT = TypeVar("ItemT", bound=Owned)

# The tiers of --fast and --relax jobs: relaxed jobs wait while any fast job waits.
RELAX_TIER = 0
FAST_TIER = 1

InService = Callable[[str], int]
"""owner → how many of their jobs are already running (or on the workers)."""


def nothing_in_service(owner: str) -> int:
    return 0


@dataclass(frozen=True, eq=False)
class _Waiting(Generic[ItemT]):
    item: ItemT
    priority: int
    arrival: int  # unique and increasing: ties between owners go to the oldest job

    @property
    def rank(self) -> tuple[int, int]:
        """Within one owner: higher tier first, then oldest."""
        return -self.priority, self.arrival


class FairQueue(Generic[ItemT]):
    """Waiting items and the order they start in; see the module docstring for the rule.

    Items are told apart by identity. `take_next` and `take` record the owner as served;
    `remove` (a cancelled job) does not.
    """

    def __init__(self) -> None:
        self._by_owner: dict[str, list[_Waiting[ItemT]]] = {}  # each owner's items, best `rank` first
        # owner → the number of the take that last served them. One int per owner ever served: the
        # memory of who went last must outlive an owner's empty spells, or re-joining would jump the line.
        self._last_served: dict[str, int] = {}
        self._takes = 0
        self._arrivals = 0

    def __len__(self) -> int:
        return sum(len(waiting) for waiting in self._by_owner.values())

    def __iter__(self) -> Iterator[ItemT]:
        """The waiting items, oldest first (not the start order; that is `order`)."""
        entries = sorted(
            (entry for waiting in self._by_owner.values() for entry in waiting), key=lambda e: e.arrival
        )
        return iter([entry.item for entry in entries])

    def push(self, item: ItemT, *, priority: int = 0) -> None:
        """Add `item` to wait; a higher `priority` tier starts before every lower one."""
        self._arrivals += 1
        entry = _Waiting(item, priority, self._arrivals)
        bisect.insort(self._by_owner.setdefault(item.owner, []), entry, key=lambda e: e.rank)

    def remove(self, item: ItemT) -> bool:
        """Withdraw a waiting `item` (it will not start); False when it is not waiting."""
        entry = self._find(item)
        if entry is None:
            return False
        self._drop(entry)
        return True

    def take_next(self, in_service: InService = nothing_in_service) -> ItemT | None:
        """Remove and return the item that starts next, or None when nothing waits."""
        owner = self._next_owner(in_service)
        if owner is None:
            return None
        entry = self._by_owner[owner][0]
        self._serve(entry)
        return entry.item

    def take(self, item: ItemT) -> None:
        """Start a waiting `item` the executor chose itself (e.g. a batch-mate of the next item)."""
        entry = self._find(item)
        if entry is None:
            raise ValueError("take() of an item that is not waiting")
        self._serve(entry)

    def drain(self) -> list[ItemT]:
        """Remove and return every waiting item, oldest first (e.g. to cancel them on shutdown)."""
        items = list(self)
        self._by_owner.clear()
        return items

    def order(self, in_service: InService = nothing_in_service) -> list[ItemT]:
        """Every waiting item in the order `take_next` would start them, were none to finish meanwhile.

        Position 1 is the next to start. Each rehearsed start counts as one more job in service.
        """
        rehearsal: FairQueue[ItemT] = FairQueue()
        rehearsal._by_owner = {owner: list(waiting) for owner, waiting in self._by_owner.items()}
        rehearsal._last_served = dict(self._last_served)
        rehearsal._takes = self._takes
        counts: dict[str, int] = {}

        def counted(owner: str) -> int:
            if owner not in counts:
                counts[owner] = in_service(owner)
            return counts[owner]

        started: list[ItemT] = []
        while (item := rehearsal.take_next(counted)) is not None:
            counts[item.owner] += 1
            started.append(item)
        return started

    # ------------------------------------------------------------------ internals

    def _next_owner(self, in_service: InService) -> str | None:
        def turn(owner: str) -> tuple[int, int, int, int]:
            head = self._by_owner[owner][0]
            return -head.priority, in_service(owner), self._last_served.get(owner, -1), head.arrival

        return min(self._by_owner, key=turn, default=None)

    def _find(self, item: ItemT) -> _Waiting[ItemT] | None:
        return next((entry for entry in self._by_owner.get(item.owner, ()) if entry.item is item), None)

    def _drop(self, entry: _Waiting[ItemT]) -> None:
        owner = entry.item.owner
        waiting = self._by_owner[owner]
        waiting.remove(entry)
        if not waiting:
            del self._by_owner[owner]

    def _serve(self, entry: _Waiting[ItemT]) -> None:
        self._drop(entry)
        self._takes += 1
        self._last_served[entry.item.owner] = self._takes
