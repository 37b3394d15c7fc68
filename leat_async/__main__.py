"""``python -m leat_async``: the ``leat-async`` command."""

from .cli import main

raise SystemExit(main())
