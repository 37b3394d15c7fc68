"""One module per API resource, thin: arguments are checked, a request is built, the answer is
read into a model. ``giftcard_transactions`` (list, create, get, reverse) and ``giftcards``
(find by code, get, list, create, programs).

May import: ``_api``, ``_http`` and ``_paging``; never the client, the face or the jobs above it.
"""
