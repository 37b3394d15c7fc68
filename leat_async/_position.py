"""Where a walk stands: what it has handed out, exactly, to checkpoint and resume.

A position names a page, the snapshot the walk is bounded by, and the keys of the rows already
handed out that could still show up from that page on: the ones handed out from that page so
far, and those of the page before it (a row inserted earlier in the listing shifts the pages by
one or more rows; the walk drops a row it has handed out before, resumed or not).
Resuming fetches that page again and hands out every row whose key is not among them.

The walk keeps only counters per row; a :class:`Position` is made when it is read.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from datetime import datetime
from typing import Any, Generic, TypeVar

__all__ = ["Key", "Position", "WalkState"]

T = TypeVar("T")
#: What tells two items of a listing apart (a transaction's ``id``, a card's ``uuid``).
Key = int | str

_FORMAT = 1  # the version of to_dict()'s layout


class Position:
    """Where a walk stands: every row before ``page``, and the rows keyed in ``seen``, have
    been handed out; nothing else has.

    Resume with the same filters: ``client.giftcard_transactions.list(<same filters>,
    resume=position)``. A position is immutable and hashable, pickles, and :meth:`to_dict` /
    :meth:`from_dict` turn it into JSON-safe data and back (for a checkpoint file or a
    database column).

    - ``page``: the page holding the next row to hand out;
    - ``snapshot``: the whole second (server time) the walk is bounded by: it sees only rows
      created before it. A listing without a ``created_at`` filter records when its walk began;
    - ``seen``: keys of rows already handed out that could still appear from ``page`` on;
    - ``listing`` and ``parameters``: the listing and the filters the walk was made with
      (resuming with others is a ``ValueError``).

    Reading ``pager.position`` after every row is cheap: ``seen`` is put together only when it
    is asked for (by ``to_dict``, pickling or comparing).
    """

    __slots__ = ("_before", "_order", "_seen", "listing", "page", "parameters", "snapshot")

    page: int
    snapshot: datetime
    listing: str
    parameters: tuple[tuple[str, str], ...]
    _before: frozenset[Key]  # keys handed out before the page's rows in _order
    _order: Sequence[Key]
    _seen: frozenset[Key] | None  # the two together, once asked for

    def __init__(
        self,
        *,
        page: int,
        snapshot: datetime,
        seen: Iterable[Key] = (),
        listing: str,
        parameters: Iterable[tuple[str, str]],
    ) -> None:
        _fill(self, page, snapshot, frozenset(seen), (), listing, tuple(parameters))

    @property
    def seen(self) -> frozenset[Key]:
        seen = self._seen
        if seen is None:
            seen = self._before.union(self._order)
            object.__setattr__(self, "_seen", seen)
        return seen

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a Position is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("a Position is immutable")

    def _key(self) -> tuple[object, ...]:
        return (self.page, self.snapshot, self.seen, self.listing, self.parameters)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Position):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _restore,
            (self.page, self.snapshot, tuple(self.seen), self.listing, self.parameters),
        )

    def __repr__(self) -> str:
        return (
            f"Position(page={self.page}, snapshot={self.snapshot.isoformat()}, "
            f"seen=<{len(self.seen)} keys>, listing={self.listing!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe data (str, int, lists): ``json.dumps(position.to_dict())`` just works."""
        return {
            "format": _FORMAT,
            "listing": self.listing,
            "parameters": [list(pair) for pair in self.parameters],
            "page": self.page,
            "snapshot": self.snapshot.isoformat(),
            "seen": sorted(self.seen, key=lambda key: (isinstance(key, str), key)),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Position:
        """The position that :meth:`to_dict` gave; ``ValueError`` for anything else."""
        if not isinstance(doc, Mapping) or doc.get("format") != _FORMAT:
            raise ValueError("not a position (made by Position.to_dict of this version)")
        listing, parameters = doc.get("listing"), doc.get("parameters")
        page, snapshot, seen = doc.get("page"), doc.get("snapshot"), doc.get("seen")
        if not isinstance(listing, str):
            raise ValueError("position: 'listing' must be a str")
        if not isinstance(parameters, list) or not all(_is_pair(p) for p in parameters):
            raise ValueError("position: 'parameters' must be a list of [name, value] strs")
        if type(page) is not int or page < 1:
            raise ValueError("position: 'page' must be an int >= 1")
        if not isinstance(seen, list) or not all(type(key) in (int, str) for key in seen):
            raise ValueError("position: 'seen' must be a list of ints or strs")
        return cls(
            page=page,
            snapshot=_aware(snapshot),
            seen=frozenset(seen),
            listing=listing,
            parameters=tuple((name, value) for name, value in parameters),
        )

    def check_resumes(self, listing: str, parameters: tuple[tuple[str, str], ...]) -> None:
        """``ValueError`` unless this position was taken from a walk of ``listing`` with these
        ``parameters`` (resuming another walk's position would skip or repeat rows).
        """
        if listing != self.listing:
            raise ValueError(
                f"resume: the position is from a walk of {self.listing!r}, not of {listing!r}"
            )
        if parameters != self.parameters:
            ours, theirs = dict(parameters), dict(self.parameters)
            names = sorted(n for n in ours.keys() | theirs.keys() if ours.get(n) != theirs.get(n))
            raise ValueError(
                "resume: the position was taken with other filters than these "
                f"(they differ in {', '.join(names)}); resume with the same filters"
            )


def _fill(
    position: Position,
    page: int,
    snapshot: datetime,
    before: frozenset[Key],
    handed: Sequence[Key],
    listing: str,
    parameters: tuple[tuple[str, str], ...],
) -> None:
    _SET_PAGE(position, page)
    _SET_SNAPSHOT(position, snapshot)
    _SET_BEFORE(position, before)
    _SET_ORDER(position, handed)
    _SET_SEEN(position, None if handed else before)
    _SET_LISTING(position, listing)
    _SET_PARAMETERS(position, parameters)


# A Position refuses assignment; it is filled through its slots' own setters (the cheapest way
# that still refuses: a position may be read after every row).
_SET_PAGE, _SET_SNAPSHOT, _SET_BEFORE, _SET_ORDER, _SET_SEEN, _SET_LISTING, _SET_PARAMETERS = (
    vars(Position)[name].__set__
    for name in ("page", "snapshot", "_before", "_order", "_seen", "listing", "parameters")
)


def _restore(
    page: int,
    snapshot: datetime,
    seen: tuple[Key, ...],
    listing: str,
    parameters: tuple[tuple[str, str], ...],
) -> Position:
    return Position(page=page, snapshot=snapshot, seen=seen, listing=listing, parameters=parameters)


def _is_pair(value: object) -> bool:
    return (
        isinstance(value, list) and len(value) == 2 and all(isinstance(part, str) for part in value)
    )


def _aware(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("position: 'snapshot' must be an ISO 8601 str")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"position: 'snapshot' is not an ISO 8601 time: {value!r:.40}") from None
    if when.tzinfo is None:
        raise ValueError("position: 'snapshot' has no timezone")
    return when


class WalkState(Generic[T]):
    """What one walk has handed out, kept apart from the walk's requests.

    The pager keeps the state of its latest walk for ``pager.position``, while the requests
    die with the iterator (dropping or closing it cancels them). The item iterator hands rows
    out of ``left``; how many it has handed is ``len(order) - len(left)``, counted only when a
    position is asked for. The state keeps keys, not rows: a row handed out is the caller's.
    """

    __slots__ = (
        "key",
        "left",
        "listing",
        "order",
        "page",
        "page_keys",
        "parameters",
        "prev_keys",
        "snapshot",
        "total_drift",
    )

    def __init__(
        self,
        *,
        listing: str,
        parameters: tuple[tuple[str, str], ...],
        key: Callable[[T], Key],
        start: int,
        snapshot: datetime | None,
        seen: Set[Key],
    ) -> None:
        self.listing: str = listing
        self.parameters: tuple[tuple[str, str], ...] = parameters
        self.key: Callable[[T], Key] = key
        self.snapshot: datetime | None = snapshot
        self.page: int = start - 1  # the page being handed out
        self.order: tuple[Key, ...] = ()  # the keys of its rows to hand out, in order
        self.left: deque[T] = deque()  # the rows of it not handed out yet
        # keys of that page as fetched (or a position's seen)
        self.page_keys: frozenset[Key] = frozenset(seen)
        self.prev_keys: frozenset[Key] = frozenset()  # keys of the page before it
        self.total_drift: int = 0  # pages whose meta.total differed from the first page's

    def turn(self, number: int, rows: Sequence[T]) -> Sequence[T]:
        """Move to page ``number``; its rows less those the two pages before handed out (rows
        shift by as many as were inserted earlier in the listing meanwhile).
        """
        order = tuple(map(self.key, rows))
        keys = frozenset(order)
        recent, before = self.page_keys, self.prev_keys
        if not (keys.isdisjoint(recent) and keys.isdisjoint(before)):
            kept = [i for i, k in enumerate(order) if k not in recent and k not in before]
            order, rows = tuple(order[i] for i in kept), [rows[i] for i in kept]
        self.prev_keys, self.page_keys = recent, keys
        self.page, self.order = number, order
        return rows

    def position(self) -> Position | None:
        """Exactly what has been handed out; ``None`` while the walk has no snapshot yet."""
        snapshot = self.snapshot
        if snapshot is None:
            return None
        order = self.order
        handed = len(order) - len(self.left)
        if handed >= len(order):  # the page is done (or none was fetched yet)
            page, before, order = self.page + 1, self.page_keys, ()
        else:
            page, before, order = self.page, self.prev_keys, order[:handed]
        # a new Position that shares the walk's keys (neither changes once the walk passed them)
        position = Position.__new__(Position)
        _fill(position, page, snapshot, before, order, self.listing, self.parameters)
        return position
