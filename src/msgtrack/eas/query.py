"""ActiveSync ``cs-uri-query`` decoding: plain and base64 forms, and ``&Log=`` tokens.

Plain form (every protocol version, what iOS sends)::

    User=alice&DeviceId=ApplDNQGKRB3DTD7&DeviceType=iPhone&Cmd=SmartReply&Log=V141_...

Base64 form (12.1 and later; Windows Phone, Outlook-style clients), MS-ASHTTP
(eas-facts §1.3): one blob, optionally followed by the ``&Log=`` Exchange appends::

    jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l&Log=...

``&Log=`` (eas-facts §2.2) is a ``_``-separated list of URL-escaped elements, each either
letters followed by digits (``V141``, ``Hb1680``) or ``Key:value``. Every token is kept
verbatim, known or not; a few have helpers (protocol version, errors, ABQ state).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from urllib.parse import unquote

from msgtrack.eas._fast import builder

#: MS-ASHTTP base64 command codes (5-8 are deprecated, 23 is 16.1's Find).
COMMAND_CODES: dict[int, str] = {
    0: "Sync", 1: "SendMail", 2: "SmartForward", 3: "SmartReply", 4: "GetAttachment",
    5: "GetHierarchy", 6: "CreateCollection", 7: "DeleteCollection", 8: "MoveCollection",
    9: "FolderSync", 10: "FolderCreate", 11: "FolderDelete", 12: "FolderUpdate",
    13: "MoveItems", 14: "GetItemEstimate", 15: "MeetingResponse", 16: "Search",
    17: "Settings", 18: "Ping", 19: "ItemOperations", 20: "Provision",
    21: "ResolveRecipients", 22: "ValidateCert", 23: "Find",
}
COMMAND_BY_NAME: dict[str, int] = {v: k for k, v in COMMAND_CODES.items()}

#: MS-ASHTTP base64 parameter tags, named as the plain form's keys.
PARAMETER_TAGS: dict[int, str] = {
    0: "AttachmentName", 1: "CollectionId", 2: "CollectionName", 3: "ItemId", 4: "LongId",
    5: "ParentId", 6: "Occurrence", 7: "Options", 8: "User",
}
PARAMETER_BY_NAME: dict[str, int] = {v: k for k, v in PARAMETER_TAGS.items()}

#: Bits of the base64 ``Options`` parameter.
OPTION_SAVE_IN_SENT = 0x01
OPTION_ACCEPT_MULTIPART = 0x02

#: Protocol versions that may use the base64 form, as the version byte (version x 10).
BASE64_VERSIONS = frozenset({121, 140, 141, 160, 161})

_BASE64_RE = re.compile(r"[A-Za-z0-9+/]{8,}={0,2}\Z")
_DIGITS_TOKEN_RE = re.compile(r"([A-Za-z]+)(\d+)\Z")
_KEY_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*\Z")


@dataclass(frozen=True)
class LogToken:
    raw: str  #: the element as written (URL-unescaped)
    name: str  #: ``V``, ``Error``, ``Mbx``...; the whole element when it has no known shape
    value: str | None  #: digits or the text after ``:``; None for a bare word


def _parse_token(raw: str) -> LogToken:
    key, colon, rest = raw.partition(":")
    if colon and _KEY_RE.match(key):
        return LogToken(raw, key, rest)
    m = _DIGITS_TOKEN_RE.match(raw)
    if m is not None:
        return LogToken(raw, m.group(1), m.group(2))
    return LogToken(raw, raw, None)


def format_protocol_version(number: int) -> str:
    """141 -> ``14.1``, 25 -> ``2.5`` (the ``V`` token and the base64 byte use version x 10)."""
    return f"{number // 10}.{number % 10}"


@dataclass(frozen=True)
class EasLog:
    """The ``&Log=`` data Exchange appended to one request."""

    raw: str = ""
    tokens: tuple[LogToken, ...] = ()

    def get(self, name: str) -> str | None:
        """The first token named ``name`` (exact case), or None."""
        for token in self.tokens:
            if token.name == name:
                return token.value
        return None

    @property
    def protocol_version(self) -> str:
        """From ``V141`` -> ``14.1``; ``""`` when absent."""
        value = self.get("V")
        return format_protocol_version(int(value)) if value and value.isdigit() else ""

    @property
    def errors(self) -> tuple[str, ...]:
        """The ``Error:`` names, e.g. ``("OverBudget",)``."""
        return tuple(t.value for t in self.tokens if t.name == "Error" and t.value)

    @property
    def mailbox_server(self) -> str:
        """``Mbx:<server>`` (the mailbox server that handled the request), or ``""``."""
        return self.get("Mbx") or ""


def decode_log(value: str) -> EasLog:
    """``V141_Error:X_Mbx:srv`` (URL-escaped or not) -> :class:`EasLog`. Never raises."""
    text = unquote(value)
    if not text:
        return EasLog()
    return EasLog(text, tuple(_parse_token(t) for t in text.split("_") if t))


@dataclass(frozen=True)
class EasQuery:
    """One decoded ``cs-uri-query``."""

    form: str  #: ``plain``, ``base64`` or ``none`` (empty query)
    cmd: str = ""
    user: str = ""  #: as the device wrote it, unescaped: ``alice`` or ``CONTOSO\\alice``
    device_id: str = ""
    device_type: str = ""
    #: All parameters, unescaped, first occurrence wins; base64 ones use the plain names.
    params: dict[str, str] = field(default_factory=dict)
    protocol_version: str = ""  #: base64 form only (the plain form has it in ``Log``)
    locale: int | None = None  #: base64 form only, e.g. 1033
    policy_key: int | None = None  #: base64 form only
    log_raw: str = ""  #: the ``Log`` value as logged (still URL-escaped)

    @cached_property
    def log(self) -> EasLog:
        return decode_log(self.log_raw)

    @property
    def save_in_sent(self) -> bool | None:
        """``SaveInSent=T`` (12.x plain) or the base64 Options bit; None when not given."""
        if "Options" in self.params:
            return bool(int(self.params["Options"]) & OPTION_SAVE_IN_SENT)
        value = self.params.get("SaveInSent")
        return None if value is None else value.upper() == "T"


_new_query = builder(EasQuery)


def _split_plain(query: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for part in query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        params.setdefault(unquote(key) if "%" in key else key, value)
    return params


def _lookup(params: dict[str, str], name: str) -> str:
    # Clients and Exchange agree on the case (Cmd, User, DeviceId); tolerate others.
    if name in params:
        return params[name]
    lowered = name.lower()
    for key, value in params.items():
        if key.lower() == lowered:
            return value
    return ""


def looks_base64(segment: str) -> bool:
    """Whether a query's first ``&``-segment is a base64 blob rather than ``key=value``."""
    text = unquote(segment)
    if _BASE64_RE.match(text) is None:
        return False
    # A padded blob is a multiple of 4 long; "SaveInSent=" is a plain key with no value.
    return not text.endswith("=") or len(text) % 4 == 0


def decode_base64_query(blob: str) -> EasQuery:
    """Decode the MS-ASHTTP base64 query value; ValueError when it is not one."""
    text = unquote(blob)
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"base64 query does not decode: {exc}") from None
    pos = 0

    def take(n: int, what: str) -> bytes:
        nonlocal pos
        if pos + n > len(data):
            raise ValueError(f"base64 query truncated in {what} at byte {pos}")
        chunk = data[pos:pos + n]
        pos += n
        return chunk

    version = take(1, "protocol version")[0]
    if version not in BASE64_VERSIONS:
        raise ValueError(f"base64 query has unknown protocol version byte {version}")
    code = take(1, "command code")[0]
    locale = int.from_bytes(take(2, "locale"), "little")
    device_id = take(take(1, "DeviceId length")[0], "DeviceId").decode("utf-8", "replace")
    key_len = take(1, "policy key length")[0]
    if key_len not in (0, 4):
        raise ValueError(f"base64 query has policy key length {key_len} (0 or 4 expected)")
    policy_key = int.from_bytes(take(key_len, "policy key"), "little") if key_len else None
    device_type = take(take(1, "DeviceType length")[0], "DeviceType").decode("utf-8", "replace")
    params: dict[str, str] = {}
    while pos < len(data):
        tag = take(1, "parameter tag")[0]
        raw = take(take(1, "parameter length")[0], "parameter value")
        name = PARAMETER_TAGS.get(tag, f"Tag{tag}")
        # Options is a bit field; the others are text (ids, user names).
        value = str(raw[0]) if name == "Options" and len(raw) == 1 else raw.decode("utf-8", "replace")
        params.setdefault(name, value)
    return EasQuery(
        form="base64",
        cmd=COMMAND_CODES.get(code, f"Unknown({code})"),
        user=params.get("User", ""),
        device_id=device_id,
        device_type=device_type,
        params=params,
        protocol_version=format_protocol_version(version),
        locale=locale,
        policy_key=policy_key,
    )


def encode_base64_query(query: EasQuery) -> str:
    """Inverse of :func:`decode_base64_query` (for tests and generated examples)."""
    version = int(query.protocol_version.replace(".", ""))
    out = bytearray([version, COMMAND_BY_NAME[query.cmd]])
    out += (query.locale or 0).to_bytes(2, "little")
    device_id = query.device_id.encode()
    out += bytes([len(device_id)]) + device_id
    if query.policy_key is None:
        out.append(0)
    else:
        out += bytes([4]) + query.policy_key.to_bytes(4, "little")
    device_type = query.device_type.encode()
    out += bytes([len(device_type)]) + device_type
    for name, value in query.params.items():
        raw = bytes([int(value)]) if name == "Options" else value.encode()
        out += bytes([PARAMETER_BY_NAME[name], len(raw)]) + raw
    return base64.b64encode(bytes(out)).decode("ascii")


def decode_query(query: str) -> EasQuery:
    """Decode one ``cs-uri-query`` (``-`` means empty).

    Raises ValueError only for a blob that looks base64 but is not a valid MS-ASHTTP
    query; the IIS reader reports that line as bad.
    """
    if not query or query == "-":
        return EasQuery(form="none")
    first, amp, rest = query.partition("&")
    # "User=alice" has its "=" early; a base64 blob has "=" only as trailing padding.
    eq = first.find("=")
    if (eq < 0 or eq >= len(first) - 2) and looks_base64(first):
        decoded = decode_base64_query(first)
        log_raw = _lookup(_split_plain(rest), "Log") if amp else ""
        return replace(decoded, log_raw=log_raw) if log_raw else decoded
    params = _split_plain(query)
    log_raw = params.pop("Log", "")
    # Most queries have nothing escaped outside Log; skip the unquote calls then.
    unescaped = ({k: unquote(v) for k, v in params.items()} if "%" in query else params)
    return _new_query(
        form="plain",
        cmd=_lookup(unescaped, "Cmd"),
        user=_lookup(unescaped, "User"),
        device_id=_lookup(unescaped, "DeviceId"),
        device_type=_lookup(unescaped, "DeviceType"),
        params=unescaped,
        log_raw=log_raw,
    )
