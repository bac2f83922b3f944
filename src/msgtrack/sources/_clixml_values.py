"""Value-level helpers for CLIXML: ``_xHHHH_`` escapes, ``<DT>`` timestamps, and the
culture-formatted date-times that Get-MessageTrackingLog writes into MessageInfo and
EventData. Pure functions over strings; the element walking lives in ``clixml.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone, tzinfo
from functools import lru_cache

UTC = timezone.utc

# --------------------------------------------------------------------------- _xHHHH_ escapes

# PowerShell's decoder matches the x case-insensitively (psrpcore escapes "_X" too), so we do.
_ESCAPE_RE = re.compile(r"_[xX]([0-9A-Fa-f]{4})_")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
# What the PSRP encoder escapes: C0, DEL + C1, anything outside the BMP (as a UTF-16 surrogate
# pair), lone surrogates and the two non-characters .NET's XmlWriter rejects.
_NEEDS_ESCAPE_RE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff\U00010000-\U0010ffff]")
_LITERAL_X_RE = re.compile(r"_(?=[xX])")


def _unescape_one(m: re.Match[str]) -> str:
    return chr(int(m.group(1), 16))


def decode_string(text: str | None) -> str:
    """Undo CLIXML's ``_xHHHH_`` escapes (surrogate pairs and ``_x005F_`` included).

    ``None`` (an empty ``<S/>``) is ``""``. A lone surrogate escape, which no real string
    can hold, becomes U+FFFD so the text can still be written as UTF-8 later.
    """
    if text is None:
        return ""
    if "_" not in text:  # the common case costs one scan
        return text
    out = _ESCAPE_RE.sub(_unescape_one, text)
    if _SURROGATE_RE.search(out) is not None:
        out = out.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return out


def _escape_one(m: re.Match[str]) -> str:
    units = m.group(0).encode("utf-16-be", "surrogatepass")
    return "".join(f"_x{units[i]:02X}{units[i + 1]:02X}_" for i in range(0, len(units), 2))


def encode_string(text: str) -> str:
    """The inverse of :func:`decode_string`: what a PowerShell peer puts inside ``<S>``
    (before XML escaping of ``& < >``)."""
    text = _LITERAL_X_RE.sub("_x005F_", text)
    return _NEEDS_ESCAPE_RE.sub(_escape_one, text)


# --------------------------------------------------------------------------- <DT>


def parse_datetime(text: str) -> datetime:
    """A CLIXML ``<DT>`` (``2024-01-31T09:15:07.1234567-05:00``, ``…Z`` or no zone) ->
    aware datetime *in the offset it carries* (UTC when it carries none).

    .NET writes 7 fractional digits; Python 3.10's ``fromisoformat`` takes 3 or 6, so
    the fraction is cut or padded to 6 (100 ns precision is lost, never rounded up).
    Raises ValueError.
    """
    t = text.strip()
    # Fast paths: the exact round-trip forms of a local and of a UTC DateTime.
    if len(t) == 33 and t[19] == "." and t[27] in "+-":
        return datetime.fromisoformat(t[:26] + t[27:])
    if len(t) == 28 and t[19] == "." and t[27] == "Z":
        return datetime.fromisoformat(t[:26] + "+00:00")
    if t.endswith(("Z", "z")):
        t = t[:-1] + "+00:00"
    if len(t) > 19 and t[19] == ".":
        end = 20
        while end < len(t) and t[end].isdigit():
            end += 1
        t = t[:20] + t[20:end][:6].ljust(6, "0") + t[end:]
    value = datetime.fromisoformat(t)
    if value.tzinfo is None:  # DateTimeKind.Unspecified: nothing better to assume
        value = value.replace(tzinfo=UTC)
    return value


# --------------------------------------------------------------------------- culture date-times

#: .NET ``DateTime.ToString()`` patterns (short date + long time) by culture name, as
#: Windows Server writes them. Extend this table, or pass a pattern instead of a name.
CULTURE_FORMATS: dict[str, str] = {
    "en-US": "M/d/yyyy h:mm:ss tt",
    "en-GB": "dd/MM/yyyy HH:mm:ss",
    "en-AU": "d/MM/yyyy h:mm:ss tt",
    "en-CA": "yyyy-MM-dd h:mm:ss tt",
    "de-DE": "dd.MM.yyyy HH:mm:ss",
    "de-CH": "dd.MM.yyyy HH:mm:ss",
    "fr-FR": "dd/MM/yyyy HH:mm:ss",
    "es-ES": "dd/MM/yyyy H:mm:ss",
    "it-IT": "dd/MM/yyyy HH:mm:ss",
    "nl-NL": "d-M-yyyy HH:mm:ss",
    "sv-SE": "yyyy-MM-dd HH:mm:ss",
    "ja-JP": "yyyy/MM/dd H:mm:ss",
    "invariant": "MM/dd/yyyy HH:mm:ss",
    "iso": "yyyy-MM-dd HH:mm:ss",
}

_TOKEN_RE = re.compile(r"yyyy|MM?|dd?|HH?|hh?|mm?|ss?|tt|\s+|.", re.S)
_TOKEN_GROUPS = {
    "yyyy": r"(?P<year>\d{4})",
    "M": r"(?P<month>\d{1,2})", "MM": r"(?P<month>\d{1,2})",
    "d": r"(?P<day>\d{1,2})", "dd": r"(?P<day>\d{1,2})",
    "H": r"(?P<hour>\d{1,2})", "HH": r"(?P<hour>\d{1,2})",
    "h": r"(?P<hour12>\d{1,2})", "hh": r"(?P<hour12>\d{1,2})",
    "m": r"(?P<minute>\d{1,2})", "mm": r"(?P<minute>\d{1,2})",
    "s": r"(?P<second>\d{1,2})", "ss": r"(?P<second>\d{1,2})",
    "tt": r"(?P<ampm>[AaPp]\.?[Mm]\.?)",
}

CultureParser = Callable[[str], "datetime | None"]


@lru_cache(maxsize=64)
def culture_parser(culture: str) -> CultureParser:
    """A function ``text -> naive local datetime | None`` for a culture name in
    :data:`CULTURE_FORMATS` or a .NET pattern such as ``"dd.MM.yyyy HH:mm:ss"``.

    Digits are matched leniently (1 or 2 for every 2-digit token) and any run of white
    space (including the narrow no-break space newer Windows builds use) matches any
    other. Raises ValueError for an unknown culture name.
    """
    pattern = CULTURE_FORMATS.get(culture, culture)
    if "yyyy" not in pattern:
        known = ", ".join(sorted(CULTURE_FORMATS))
        raise ValueError(f"unknown culture {culture!r}: use one of {known} or a .NET pattern")
    parts = []
    for token in _TOKEN_RE.findall(pattern):
        if token in _TOKEN_GROUPS:
            parts.append(_TOKEN_GROUPS[token])
        elif token.isspace():
            parts.append(r"\s+")
        else:
            parts.append(re.escape(token))
    regex = re.compile("".join(parts) + r"\Z")

    def parse(text: str) -> datetime | None:
        m = regex.match(text.strip())
        if m is None:
            return None
        g = m.groupdict()
        if g.get("hour12") is not None:
            hour = int(g["hour12"]) % 12
            if (g.get("ampm") or "A")[0] in "Pp":
                hour += 12
        else:
            hour = int(g.get("hour") or 0)
        try:
            return datetime(int(g["year"]), int(g["month"]), int(g["day"]), hour,
                            int(g.get("minute") or 0), int(g.get("second") or 0))
        except ValueError:  # 31/02, hour 25 ...
            return None

    return parse


def local_to_log_timestamp(local: datetime, offset: timedelta | None,
                           zone: tzinfo | None = None) -> str:
    """A naive server-local time -> the log's ``yyyy-MM-ddTHH:mm:ss.fffZ`` (UTC).

    ``zone`` (a ZoneInfo for the server's time zone) wins over ``offset``; without it the
    caller's ``offset`` is used, which is wrong by the DST difference when the time lies
    in another DST period than the event that supplied the offset. The culture form has
    whole seconds only, so the milliseconds are always ``.000``.
    """
    if zone is not None:
        aware = local.replace(tzinfo=zone)
    else:
        aware = local.replace(tzinfo=timezone(offset or timedelta(0)))
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


# --------------------------------------------------------------------------- EventData text

_INT_RE = re.compile(r"-?(?:0|[1-9]\d{0,18})\Z")
_FLOAT_RE = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+(?:[eE][-+]?\d+)?|[eE][-+]?\d+)\Z")
_LOG_TS_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,7})?Z\Z")


def guess_typed(text: str, culture: str = "en-US") -> object:
    """Best-effort type for an EventData value that arrived as ``[Key, Value]`` text, where
    the original type tag is gone: an integer without leading zeros -> int; a number with
    a fraction or an exponent -> float; a log timestamp or a date-time in ``culture`` -> aware UTC datetime
    (culture text is assumed to be UTC: custom-data times are UTC); anything else -> str.
    A string value that merely looks like a number is therefore typed differently from the
    log file's ``S:`` item.
    """
    if not text or len(text) > 40:
        return text
    c = text[0]
    if c.isdigit() or c == "-":
        if _INT_RE.match(text):
            return int(text)
        if _FLOAT_RE.match(text):
            try:
                return float(text)
            except ValueError:  # pragma: no cover - the regex admits only floats
                return text
        if _LOG_TS_RE.match(text):
            try:
                return parse_datetime(text).astimezone(UTC)
            except ValueError:
                return text
    try:
        local = culture_parser(culture)(text)
    except ValueError:
        local = None
    if local is not None:
        return local.replace(tzinfo=UTC)
    return text


def split_kvp_text(text: str) -> tuple[str, str] | None:
    """``[Key, Value]`` (KeyValuePair.ToString) -> ``(Key, Value)``; None if not that shape."""
    t = text.strip()
    if len(t) < 2 or t[0] != "[" or t[-1] != "]":
        return None
    inner = t[1:-1]
    key, sep, value = inner.partition(", ")
    if not sep:
        return None
    return key, value


_KVP_LIST_RE = re.compile(r"\[([^,\[\]]*), ((?:[^\[\]]|\[[^\[\]]*\])*)\]")


def split_kvp_list_text(text: str) -> list[tuple[str, str]]:
    """``{[A, 1], [B, x]}`` (a whole EventData array that was sent as one string)."""
    return _KVP_LIST_RE.findall(text)
