"""The one place that sends: every request of the client goes out through this layer.

``transport`` speaks aiohttp and translates its exceptions once; ``dispatch`` runs the attempt
loop through the ``gates`` (concurrency slots, admission, pacing) and asks ``outcomes`` (pure)
what an answer means; ``retry`` and ``pacing`` decide how long to wait (``redis``/``redis_lua``
keep a shared budget); ``money`` and ``recovery`` (with ``lost`` and ``lookalike``) keep
charges and reversals from being sent twice or lost; ``observe`` turns what happened into
events and log lines; ``clock`` is the injectable time source.

May import: ``_api`` and this layer's own modules; never ``_paging``, ``resources`` or above.
"""
