"""The table adapter with the repositories logic reaches through its ports (``logic/ports.py``).

``Repositories`` is the ``Store`` a function holds (``handlers.runtime.store()``); each accessor hands
out the concrete repository for one port, so logic never constructs a dal class itself.
"""

from __future__ import annotations

from dora_insights.dal.store import Store


class Repositories(Store):
    """A ``Store`` that also hands out the repositories of the logic ports."""
