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

__all__ = ["EdgeMark", "Key", "Position", "WalkState"]

T = TypeVar("T")
#: What tells two items of a listing apart (a transaction's ``id``, a card's ``uuid``).
Key = int | str
#: A walk's edge as a position keeps it: the second, the keys seen of it, and how many of its
#: rows were repeated (``None``: not known, as inside a page).
EdgeMark = tuple[datetime, frozenset[Key], int | None]

_FORMAT = 2  # the version of to_dict()'s layout (1: before edge and handed; still read)


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
      (resuming with others is a ``ValueError``);
    - ``edge``: the ``created_at`` second of the last row handed out before ``page``, which
      ``page`` may go on with (a resumed walk fetches that second whole once, so that an
      unstable order of equal seconds cannot hide a row); ``None`` for listings without
      ``created_at``, and for positions saved by older versions; ``edge_repeats``: rows of
      that second that a page repeated (as many were lost, and are fetched on resuming), or
      ``None`` when not known (inside a page: the resumed walk fetches the second whole);
    - ``handed``: how many rows the walk has handed out in all, and ``expected``: how many
      its snapshot held as it began (what lets the resumed walk prove it is complete, even
      when rows were dated into the past meanwhile); ``None`` when not known.

    Reading ``pager.position`` after every row is cheap: ``seen`` is put together only when it
    is asked for (by ``to_dict``, pickling or comparing).
    """

    __slots__ = (
        "_before",
        "_edge_keys",
        "_order",
        "_seen",
        "edge",
        "edge_repeats",
        "expected",
        "handed",
        "listing",
        "page",
        "parameters",
        "snapshot",
    )

    page: int
    snapshot: datetime
    listing: str
    parameters: tuple[tuple[str, str], ...]
    edge: datetime | None
    edge_repeats: int | None
    expected: int | None
    handed: int | None
    _before: frozenset[Key]  # keys handed out before the page's rows in _order
    _edge_keys: frozenset[Key]  # keys of the edge's second handed out
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
        edge: datetime | None = None,
        handed: int | None = None,
        edge_repeats: int | None = None,
        expected: int | None = None,
    ) -> None:
        _fill(self, page, snapshot, frozenset(seen), (), listing, tuple(parameters))
        _SET_EDGE(self, edge)
        _SET_EDGE_REPEATS(self, edge_repeats)
        _SET_EXPECTED(self, expected)
        _SET_HANDED(self, handed)
        _SET_EDGE_KEYS(self, frozenset())

    @property
    def seen(self) -> frozenset[Key]:
        seen = self._seen
        if seen is None:
            seen = self._before.union(self._order, self._edge_keys)
            _SET_SEEN(self, seen)
        return seen

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a Position is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("a Position is immutable")

    def _key(self) -> tuple[Any, ...]:
        """Everything it says, in :func:`_restore`'s order (``seen`` as a frozenset)."""
        return (
            self.page,
            self.snapshot,
            self.seen,
            self.listing,
            self.parameters,
            self.edge,
            self.handed,
            self.edge_repeats,
            self.expected,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Position):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __reduce__(self) -> tuple[Any, ...]:
        page, snapshot, seen, *rest = self._key()
        return (_restore, (page, snapshot, tuple(seen), *rest))

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
            "edge": None if self.edge is None else self.edge.isoformat(),
            "handed": self.handed,
            "edge_repeats": self.edge_repeats,
            "expected": self.expected,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Position:
        """The position that :meth:`to_dict` gave; ``ValueError`` for anything else."""
        if not isinstance(doc, Mapping) or doc.get("format") not in (1, _FORMAT):
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
        edge, handed, repeats = doc.get("edge"), doc.get("handed"), doc.get("edge_repeats")
        expected = doc.get("expected")
        for name, count in (("handed", handed), ("edge_repeats", repeats), ("expected", expected)):
            if count is not None and (type(count) is not int or count < 0):
                raise ValueError(f"position: {name!r} must be an int >= 0 or null")
        return cls(
            page=page,
            snapshot=_aware(snapshot),
            seen=frozenset(seen),
            listing=listing,
            parameters=tuple((name, value) for name, value in parameters),
            edge=None if edge is None else _aware(edge, "edge"),
            handed=handed,
            edge_repeats=repeats,
            expected=expected,
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
_SET_EDGE, _SET_HANDED, _SET_EDGE_KEYS, _SET_EDGE_REPEATS, _SET_EXPECTED = (
    vars(Position)[name].__set__
    for name in ("edge", "handed", "_edge_keys", "edge_repeats", "expected")
)


def _restore(
    page: int,
    snapshot: datetime,
    seen: tuple[Key, ...],
    listing: str,
    parameters: tuple[tuple[str, str], ...],
    edge: datetime | None = None,
    handed: int | None = None,
    edge_repeats: int | None = None,
    expected: int | None = None,
) -> Position:
    return Position(
        page=page,
        snapshot=snapshot,
        seen=seen,
        listing=listing,
        parameters=parameters,
        edge=edge,
        handed=handed,
        edge_repeats=edge_repeats,
        expected=expected,
    )


def _is_pair(value: object) -> bool:
    return (
        isinstance(value, list) and len(value) == 2 and all(isinstance(part, str) for part in value)
    )


def _aware(value: object, name: str = "snapshot") -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"position: {name!r} must be an ISO 8601 str")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"position: {name!r} is not an ISO 8601 time: {value!r:.40}") from None
    if when.tzinfo is None:
        raise ValueError(f"position: {name!r} has no timezone")
    return when


class WalkState(Generic[T]):
    """What one walk has handed out, kept apart from the walk's requests.

    The pager keeps the state of its latest walk for ``pager.position``, while the requests
    die with the iterator (dropping or closing it cancels them). The item iterator hands rows
    out of ``left``; how many it has handed is ``len(order) - len(left)``, counted only when a
    position is asked for. The state keeps keys, not rows: a row handed out is the caller's.
    """

    __slots__ = (
        "edge_after",
        "edge_before",
        "expected",
        "handed_before",
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
        handed: int | None = None,
        edge: EdgeMark | None = None,
        expected: int | None = None,
    ) -> None:
        self.listing: str = listing
        self.expected: int | None = expected  # rows the snapshot held as the walk began
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
        self.handed_before: int | None = handed  # rows handed out before the page (if known)
        # the second the page began in (the edge), and the one it ends in (see Position.edge)
        self.edge_before: EdgeMark | None = edge
        self.edge_after: EdgeMark | None = edge

    def turn(self, number: int, rows: Sequence[T], edge: EdgeMark | None = None) -> Sequence[T]:
        """Move to page ``number``; its rows less those the two pages before handed out (rows
        shift by as many as were inserted earlier in the listing meanwhile). ``edge``: the
        second the page ends in, and the keys of its rows seen so far.
        """
        if self.handed_before is not None:
            self.handed_before += len(self.order)
        self.edge_before, self.edge_after = self.edge_after, edge
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
        count = self.handed_before
        if handed >= len(order):  # the page is done (or none was fetched yet)
            page, before, order, edge = self.page + 1, self.page_keys, (), self.edge_after
            count = None if count is None else count + len(self.order)
        else:
            page, before, order, edge = self.page, self.prev_keys, order[:handed], self.edge_before
            count = None if count is None else count + handed
            if edge is not None:  # the page's head was read: its repeats are not the edge's
                edge = (edge[0], edge[1], None)
        # a new Position that shares the walk's keys (neither changes once the walk passed them)
        position = Position.__new__(Position)
        _fill(position, page, snapshot, before, order, self.listing, self.parameters)
        _SET_HANDED(position, count)
        _SET_EXPECTED(position, self.expected)
        if edge is None:
            _SET_EDGE(position, None)
            _SET_EDGE_KEYS(position, frozenset())
            _SET_EDGE_REPEATS(position, None)
        else:
            _SET_EDGE(position, edge[0])
            _SET_EDGE_KEYS(position, edge[1])
            _SET_EDGE_REPEATS(position, edge[2])
            if position._seen is not None and edge[1]:
                _SET_SEEN(position, None)  # the edge's keys join what was seen
        return position
