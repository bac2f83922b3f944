"""One Query value: applied server-side as cmdlet parameters, or client-side as a predicate.

The same Query means the same thing for ``search --log`` and ``search --server``.
Semantics follow Get-MessageTrackingLog (tracking-facts §7): End is exclusive,
addresses match exactly and case-insensitively, MessageSubject is a
case-insensitive substring, Recipients match if any recipient matches.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from msgtrack.errors import UsageError
from msgtrack.events import TrackingEvent


def parse_when(text: str) -> datetime:
    """Parse an ISO 8601 --start/--end value to aware UTC.

    A value with ``Z`` or an offset is exact; a naive value is read in the local time
    zone of the machine running msgtrack (DST-aware, via the C library).
    """
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"not an ISO 8601 date/time: {text!r}",
            hint="use e.g. 2026-11-27, 2026-11-27T08:00 (local) or 2026-11-27T08:00Z (UTC)",
        ) from None
    # A naive datetime's astimezone() interprets it as local time.
    return value.astimezone(timezone.utc)


def _folded(values: Iterable[str]) -> frozenset[str]:
    return frozenset(v.casefold() for v in values)


#: Query attribute -> Get-MessageTrackingLog parameter.
_CMDLET_PARAMETERS = {
    "sender": "Sender",
    "recipients": "Recipients",
    "event_ids": "EventId",
    "sources": "Source",
    "subject": "MessageSubject",
    "message_id": "MessageId",
    "internal_message_id": "InternalMessageId",
    "network_message_id": "NetworkMessageId",
    "reference": "Reference",
}


@dataclass(frozen=True)
class Query:
    start: datetime | None = None  #: inclusive, aware UTC
    end: datetime | None = None  #: exclusive, aware UTC
    sender: str | None = None
    recipients: tuple[str, ...] = ()
    event_ids: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    subject: str | None = None
    message_id: str | None = None
    internal_message_id: str | None = None
    network_message_id: str | None = None
    reference: str | None = None
    # Decoded fields: never a cmdlet parameter, always client-side.
    auth_methods: tuple[str, ...] = ()
    auth_categories: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise UsageError(f"Query.{name} must be timezone-aware")
        if self.start and self.end and self.end <= self.start:
            raise UsageError("--end must be later than --start")
        # Pre-fold once so matches() does no per-event work it can avoid.
        object.__setattr__(self, "_recipients", _folded(self.recipients))
        object.__setattr__(self, "_event_ids", _folded(self.event_ids))
        object.__setattr__(self, "_sources", _folded(self.sources))
        object.__setattr__(self, "_auth_methods", _folded(self.auth_methods))
        object.__setattr__(self, "_auth_categories", _folded(self.auth_categories))

    def with_window(self, start: datetime | None, end: datetime | None) -> Query:
        return replace(self, start=start, end=end)

    def matches(self, ev: TrackingEvent) -> bool:
        if self.start is not None and ev.timestamp < self.start:
            return False
        if self.end is not None and ev.timestamp >= self.end:
            return False
        if self._event_ids and ev.event_id.casefold() not in self._event_ids:  # type: ignore[attr-defined]
            return False
        if self._sources and ev.source.casefold() not in self._sources:  # type: ignore[attr-defined]
            return False
        if self.sender is not None and ev.sender.casefold() != self.sender.casefold():
            return False
        if self._recipients and not any(  # type: ignore[attr-defined]
            r.casefold() in self._recipients for r in ev.recipients  # type: ignore[attr-defined]
        ):
            return False
        if self.subject is not None and self.subject.casefold() not in ev.message_subject.casefold():
            return False
        if self.message_id is not None and ev.message_id.casefold() != self.message_id.casefold():
            return False
        if self.internal_message_id is not None and ev.internal_message_id != self.internal_message_id:
            return False
        if (self.network_message_id is not None
                and ev.network_message_id.casefold() != self.network_message_id.casefold()):
            return False
        if self.reference is not None and self.reference not in ev.reference:
            return False
        if self._auth_methods or self._auth_categories:  # type: ignore[attr-defined]
            return self._matches_auth(ev)
        return True

    def _matches_auth(self, ev: TrackingEvent) -> bool:
        auth = ev.info.auth
        if auth is None:
            return False
        if self._auth_methods and not (  # type: ignore[attr-defined]
            auth.method.casefold() in self._auth_methods  # type: ignore[attr-defined]
            or auth.code.casefold() in self._auth_methods  # type: ignore[attr-defined]
        ):
            return False
        if self._auth_categories and not (  # type: ignore[attr-defined]
            auth.category.casefold() in self._auth_categories  # type: ignore[attr-defined]
            or auth.letter.casefold() in self._auth_categories  # type: ignore[attr-defined]
        ):
            return False
        return True

    def cmdlet_parameters(self) -> dict[str, object]:
        """The Get-MessageTrackingLog parameters this query can be sent as (not Start/End).

        -EventId and -Source take one value: several values stay client-side.
        """
        params: dict[str, object] = {}
        for attr, name in _CMDLET_PARAMETERS.items():
            value = getattr(self, attr)
            if attr in ("event_ids", "sources"):
                if len(value) == 1:
                    params[name] = value[0]
            elif attr == "recipients":
                if value:
                    params[name] = list(value)
            elif value is not None:
                params[name] = value
        return params

    def client_side(self, sent: Iterable[str]) -> Query:
        """What is left to check on the client once ``sent`` parameters ran on the server.

        The server's own matching wins where it differs (e.g. -Sender also matches the
        mailbox's proxy addresses), so those fields are not re-checked here.
        """
        sent = set(sent)
        cleared: dict[str, object] = {}
        for attr, name in _CMDLET_PARAMETERS.items():
            if name in sent:
                cleared[attr] = () if attr in ("recipients", "event_ids", "sources") else None
        return replace(self, **cleared)  # type: ignore[arg-type]

    @property
    def is_unfiltered(self) -> bool:
        return self == Query(start=self.start, end=self.end)


def apply(query: Query, events: Iterable[TrackingEvent]) -> Iterator[TrackingEvent]:
    """Yield the events that match; a generator, so nothing is collected."""
    matches = query.matches
    return (ev for ev in events if matches(ev))
