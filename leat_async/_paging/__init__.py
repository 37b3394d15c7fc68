"""Walking a listing: every row once, in order, within one snapshot, resumable.

``listing`` says what is walked (path, filters, sort) and ``pager`` is what users hold: a
:class:`~leat_async.Pager` that hands out ``walk`` iterators (``PageIterator``, ``items``)
driving pages through the dispatcher; ``position`` is where a walk stands, as data a resume can
store; ``snapshot`` pins the walk to the rows created before it began; ``ties`` proves that no
row hid behind an unstable order of equal ``created_at`` seconds; ``windows`` splits and merges
``created_at`` ranges for parallel walks.

May import: ``_api``, ``_http`` and this layer's own modules; never ``resources`` or above.
"""
