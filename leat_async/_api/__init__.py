"""The API's vocabulary, pure: no I/O, no clock, nothing of ours below it.

What a request looks like (``wire``: paths, bodies, the answer's classification), what comes
back (``models``, ``giftcard_models``, read by ``convert``), what can go wrong (``errors``) and
how arguments are checked (``params``). Every function here is a function of its inputs, tested
without sockets.

May import: the standard library, attrs, cattrs, yarl and the optional fast JSON readers; never
another ``leat_async`` module outside ``_api``.
"""
