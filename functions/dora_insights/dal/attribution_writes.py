"""What the attribution repository's writes take (``logic.ports.AttributionRepository``, stored by
``dal.attribution.AttributionStore``): pure values that logic builds and dal stores.

They stand apart from ``dal.attribution`` (which imports botocore) so that logic, through
``logic.ports``, imports them cheaply: named tuples, not frozen dataclasses, since every function's
cold start creates them (about 0.1 ms each against 0.5 ms, measured with ``-X importtime``).
Pending-index keys and ``superseded`` mappings are as the repository handed them out
(``awaiting_keys``, ``superseded``): opaque to logic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:  # annotations only
    from dora_insights.domain.attribution import FinalAttribution, StreamLedger
    from dora_insights.domain.model import Attribution

__all__ = ["RETRY_ATTEMPT", "RETRY_BY", "FinalWrite", "PendingWrite", "ReplacementOutbox", "Rewind"]

# On a deployment's outbox item: the ``attempt`` of its retry message in flight (``PendingWrite.retry_attempt``),
# and when the sweep steps in if that message has not carried the chain on (the due time its sender set).
RETRY_ATTEMPT = "retry_attempt"
RETRY_BY = "retry_by"


class PendingWrite(NamedTuple):
    """What a Pending attempt stores: the attribution, the pending-index keys of what it waits for, and
    when its outbox item is due for the sweep (leased past the retry: if the retry's message is lost,
    the sweep finds it then); ``retry_attempt``, recorded on the outbox item with that due time (as
    ``retry_by``, which the sweep's lease does not move): the ``attempt`` of the retry message sent after
    the write (the attribution's attempts), the token of the deployment's one retry chain (None: none is
    sent). ``due`` None: no new attempt but the same one refreshed (what it waits for, its attribution at
    the same attempts) by an attempt that does not drive the retry chain; the outbox item stays as it is."""

    attribution: Attribution
    awaiting: Sequence[Mapping[str, str]]
    due: str | None
    retry_attempt: int | None = None


class FinalWrite(NamedTuple):
    """What a final attempt stores: ``final`` (the attribution and what it shipped), recorded in the
    stream's ledger as the attempt read it (its entries and branch marks are written conditional on the
    positions read), its changes past the first page under ``details_id``, a new set of pages (fresh:
    nothing points at them until the attribution does)."""

    final: FinalAttribution
    ledger: StreamLedger
    details_id: str


class ReplacementOutbox(NamedTuple):
    """What replacing a deployment (DX upsert) settles in the attribution outbox: the old version's
    pending-index keys and normalised repository (with its attribution, what there is to undo), whether
    the new version is owed an attribution, whether the old one had an outbox item, and when the new
    version's outbox item is due for the sweep."""

    awaiting: Sequence[Mapping[str, str]]
    repository: str | None
    owed: bool
    had_outbox: bool
    due: str


class Rewind(NamedTuple):
    """Attributing a deployment again from scratch after a correction (issue 16), its ledger rewound to
    the stream's marks as they stood before it. What to undo first: its own attribution as read
    (``superseded``) and what removed deployments of the stream left (``clean_also``, each
    ``{"deployment_id", "leftovers"}``). With ``reset`` its attribution becomes a Pending placeholder
    one attempt on (conditional on the attempts read); without, the caller writes the deployment. Without
    ``rewound`` the attempt reads the marks as they stand, as a late arrival's: for a success whose commit is
    not in the code data yet, which takes back what later successes shipped once it resolves."""

    superseded: Mapping[str, Any] | None
    clean_also: Sequence[Mapping[str, Any]] = ()
    reset: bool = False
    rewound: bool = True
