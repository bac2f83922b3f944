"""CLIXML -> :class:`TrackingEvent`, fast: for pypsrp's pipeline output and for
Export-Clixml files.

pypsrp's generic deserializer turns about 1,000 MessageTrackingEvents a second into
``GenericComplexObject``s (remoting-facts §4.3). Here the CLIXML goes straight into a
``TrackingEvent`` with a precomputed property table, in one of two ways:

- :func:`convert_event` walks a parsed ``<Obj>`` element. It accepts every shape below and
  is the reference; :func:`read_clixml` uses it for Export-Clixml files.
- :func:`convert_text` first tries a scanner over the message *text* that recognises the
  exact layout PowerShell writes on the wire with a few regular expressions, which costs
  less than building the element tree at all. Anything it does not recognise completely
  (or a value it cannot convert) goes to the element walker instead, so both give the same
  answer; ``tests/test_clixml.py`` checks that they agree. :class:`FastSerializer` uses it.

Shapes accepted for a MessageTrackingEvent ``<Obj>`` (remoting-facts §4.2, tracking-facts §4.1):

- type names with or without ``Deserialized.`` (the walker also takes Select-Object's
  ``Selected.``); ``<TNRef>`` to an earlier ``<TN>``;
- properties in ``<Props>`` or ``<MS>`` (a re-exported deserialized object may use either);
- strings ``<S>`` with ``_xHHHH_`` escapes; numbers ``<I32>``/``<I64>``/``<U32>``/``<U64>``…
  (a text field such as InternalMessageId may come as a number: it stays text);
- ``<DT>`` with an offset -> aware UTC; ``<Nil/>`` -> ``""``, ``None`` or ``()``;
- lists: any ``<Obj>`` holding ``<LST>`` (``System.String[]``, Exchange's
  ``MultiValuedProperty``, a re-exported ``ArrayList``) or ``<IE>``; a plain string is
  one item;
- ``<Ref RefId=…>`` to an object converted earlier in the same stream;
- EventData as ``KeyValuePair`` objects (``Key``/``Value`` props, typed values) or as
  ``[Key, Value]`` strings (types guessed, see ``_clixml_values.guess_typed``);
- MessageLatency / MessageLatencyType are dropped (the event derives them); the note
  properties PSComputerName / RunspaceId / PSShowComputerName are not fields; any other
  property goes to ``event.extra`` as text.

For SEND, DELIVER and DEFER the cmdlet rewrites a timestamp-only MessageInfo into the
server's local time and culture (``DateTime.ToString()``); it is turned back into the log's
``yyyy-MM-ddTHH:mm:ss.fffZ``, with ``.000`` for the milliseconds that text lost (see
:func:`convert_event` for the culture and time-zone settings).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import datetime, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import defusedxml  # type: ignore[import-untyped]
import defusedxml.ElementTree as DET  # type: ignore[import-untyped]
from pypsrp.serializer import Serializer

from msgtrack.decode import encode_custom_data, join_list
from msgtrack.errors import InputError, UsageError
from msgtrack.events import FIELD_BY_PROP, TrackingEvent
from msgtrack.report import RunReport
from msgtrack.sources._clixml_values import (
    UTC,
    culture_parser,
    decode_string,
    guess_typed,
    local_to_log_timestamp,
    parse_datetime,
    split_kvp_list_text,
    split_kvp_text,
)

__all__ = [
    "EVENT_TYPE",
    "FastSerializer",
    "Refs",
    "convert_event",
    "convert_text",
    "check_settings",
    "is_event_type",
    "read_clixml",
]

log = logging.getLogger(__name__)

EVENT_TYPE = "Microsoft.Exchange.Management.TransportLogSearchTasks.MessageTrackingEvent"
NAMESPACE = "http://schemas.microsoft.com/powershell/2004/04"

# Export-Clixml files put every element in the PowerShell namespace; PSRP messages do not.
# One lookup maps either spelling to the bare tag.
_TAGS = (
    "Obj Objs Ref TN TNRef T ToString Props MS LST IE DCT QUE STK En Nil S DT TS I32 I64 U32 "
    "U64 I16 U16 By SB B C G Db Sg D Version URI XD SBK BA SS"
).split()
_LOCAL: dict[str, str] = {t: t for t in _TAGS} | {f"{{{NAMESPACE}}}{t}": t for t in _TAGS}
_INT_TAGS = frozenset({"I32", "I64", "U32", "U64", "I16", "U16", "By", "SB"})
_FLOAT_TAGS = frozenset({"Db", "Sg", "D"})
_STRING_TAGS = frozenset({"S", "URI", "XD", "SBK"})
_LIST_TAGS = frozenset({"LST", "IE", "QUE", "STK"})

#: Properties the event derives itself, and remoting's note properties.
_DERIVED_PROPS = frozenset({"MessageLatency", "MessageLatencyType"})
_NOTE_PROPS = frozenset({"PSComputerName", "RunspaceId", "PSShowComputerName"})
#: Events whose timestamp-only MessageInfo the cmdlet rewrites (tracking-facts §1.3).
_LOCAL_INFO_EVENTS = frozenset({"SEND", "DELIVER", "DEFER"})


class Refs:
    """The RefId tables of one CLIXML stream: one PSRP message, or a whole Export-Clixml
    file (where a later object may point at an earlier one). ``types`` holds ``<TN>``s
    (elements until first read), ``objs`` the values converted from ``<Obj>``s."""

    __slots__ = ("types", "objs")

    def __init__(self) -> None:
        self.types: dict[str, ET.Element | tuple[str, ...]] = {}
        self.objs: dict[str, Any] = {}

    def type_names(self, tn_or_ref: ET.Element) -> tuple[str, ...]:
        """Names of a ``<TN>`` (registering it) or of the ``<TN>`` a ``<TNRef>`` points to."""
        ref_id = tn_or_ref.get("RefId") or ""
        if _LOCAL.get(tn_or_ref.tag) == "TN":
            names = tuple(decode_string(t.text) for t in tn_or_ref)
            self.types[ref_id] = names
            return names
        found = self.types.get(ref_id)
        if found is None:
            raise ValueError(f"<TNRef RefId={ref_id!r}> points to no earlier <TN>")
        if not isinstance(found, tuple):
            found = self.types[ref_id] = tuple(decode_string(t.text) for t in found)
        return found

    def obj(self, ref: ET.Element) -> Any:
        ref_id = ref.get("RefId") or ""
        try:
            return self.objs[ref_id]
        except KeyError:
            raise ValueError(f"<Ref RefId={ref_id!r}> points to no earlier object") from None


def is_event_type(names: tuple[str, ...] | list[str]) -> bool:
    """True if a TN list names a MessageTrackingEvent, with or without ``Deserialized.``
    (and ``Selected.``, which Select-Object output carries: its missing properties stay
    empty)."""
    for name in names:
        if name.endswith(EVENT_TYPE):
            while name.startswith(("Deserialized.", "Selected.")):
                name = name.split(".", 1)[1]
            if name == EVENT_TYPE:
                return True
    return False


def check_settings(culture: str, tz: str | tzinfo | None) -> None:
    """Raise :class:`UsageError` for a culture or time zone the converter cannot use."""
    try:
        culture_parser(culture)
        if isinstance(tz, str):
            _zone(tz)
    except (ValueError, KeyError) as err:  # ZoneInfoNotFoundError is a KeyError
        raise UsageError(str(err).strip("'\"")) from None


class _Ctx:
    __slots__ = ("culture",)

    def __init__(self, culture: str) -> None:
        self.culture = culture


# --------------------------------------------------------------------------- primitives
# Both paths convert a primitive value element through these, given its bare tag and its
# (XML-unescaped) text, so they cannot disagree about a value.


def _prim_text(tag: str, text: str | None) -> str:
    """A primitive as the text the admin would see."""
    if tag in _STRING_TAGS:
        return decode_string(text)
    if tag == "Nil":
        return ""
    if tag == "B":
        return "True" if (text or "").strip().lower() == "true" else "False"
    if tag == "C":
        return chr(int(text or "0"))
    return (text or "").strip()  # numbers, DT, TS, G, Version, BA ...


def _prim_str(tag: str, text: str | None, ctx: _Ctx) -> str:
    return _prim_text(tag, text)


def _prim_int(tag: str, text: str | None, ctx: _Ctx) -> int | None:
    if tag in _INT_TAGS:
        return int(text or "")
    if tag == "Nil":
        return None
    value = _prim_text(tag, text).strip()
    return int(value) if value else None


def _prim_time(tag: str, text: str | None, ctx: _Ctx) -> datetime:
    # Kept in the offset it carries: _finish needs that offset for MessageInfo.
    if tag == "DT" or tag == "S":
        return parse_datetime(decode_string(text))
    raise ValueError(f"a <{tag}> is not a date-time")


def _prim_list(tag: str, text: str | None, ctx: _Ctx) -> tuple[str, ...]:
    value = _prim_text(tag, text)
    return (value,) if value else ()


def _prim_data(tag: str, text: str | None, ctx: _Ctx) -> dict[str, Any]:
    return _data_from_text(_prim_text(tag, text), ctx)


def _prim_value(tag: str, text: str | None, ctx: _Ctx) -> Any:
    """An EventData value, typed like ``decode.decode_custom_data`` types a log item:
    B -> "True"/"False" (the log's S: item), G/TS/Version -> text, Nil -> ""."""
    if tag == "S":
        return decode_string(text)
    if tag in _INT_TAGS:
        return int(text or "")
    if tag in _FLOAT_TAGS:
        return float(text or "")
    if tag == "DT":
        return parse_datetime(text or "").astimezone(UTC)
    return _prim_text(tag, text)


def _kvp_from_text(text: str, ctx: _Ctx) -> tuple[str, Any] | None:
    pair = split_kvp_text(text)
    if pair is None:
        return (text, "") if text else None
    return pair[0], guess_typed(pair[1], ctx.culture)


def _data_from_text(text: str, ctx: _Ctx) -> dict[str, Any]:
    """``{[A, 1], [B, x]}`` (the display string of a whole EventData array)."""
    return {k: guess_typed(v, ctx.culture) for k, v in split_kvp_list_text(text)}


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, tuple):
        return join_list(str(v) for v in value)
    if isinstance(value, dict):
        return encode_custom_data(value)
    return "" if value is None else str(value)


# --------------------------------------------------------------------------- element walker


def _text(el: ET.Element, refs: Refs) -> str:
    """Any value element as text; objects by their list items or ToString."""
    tag = _LOCAL.get(el.tag, el.tag)
    if tag == "Obj":
        return _obj_text(el, refs)
    if tag == "Ref":
        return _as_text(refs.obj(el))
    return _prim_text(tag, el.text)


def _obj_text(el: ET.Element, refs: Refs) -> str:
    """An object shown as text: its list items joined like the log joins them, else its
    ToString (enums, EnhancedTimeSpan, anything Exchange sent as a display string)."""
    to_string = None
    items = None
    scalar = None
    for child in el:
        tag = _LOCAL.get(child.tag, child.tag)
        if tag == "ToString":
            to_string = decode_string(child.text)
        elif tag in _LIST_TAGS:
            items = tuple(_text(i, refs) for i in child)
        elif tag == "TN":
            refs.types[child.get("RefId") or ""] = child
        elif tag not in ("TNRef", "Props", "MS", "DCT"):
            scalar = _text(child, refs)  # an enum's or a boxed primitive's value
    if items is not None:
        value = join_list(items)
    elif to_string is not None:
        value = to_string
    else:
        value = scalar or ""
    _remember(el, refs, value)
    return value


def _remember(el: ET.Element, refs: Refs, value: Any) -> None:
    ref_id = el.get("RefId")
    if ref_id is not None:
        refs.objs[ref_id] = value


def _el_str(el: ET.Element, refs: Refs, ctx: _Ctx) -> str:
    if el.tag == "S":  # the common case, inline
        text = el.text
        if text is None:
            return ""
        return text if "_" not in text else decode_string(text)
    return _text(el, refs)


def _el_int(el: ET.Element, refs: Refs, ctx: _Ctx) -> int | None:
    tag = _LOCAL.get(el.tag, el.tag)
    if tag == "Obj" or tag == "Ref":
        value = _text(el, refs).strip()
        return int(value) if value else None
    return _prim_int(tag, el.text, ctx)


def _el_time(el: ET.Element, refs: Refs, ctx: _Ctx) -> datetime:
    return _prim_time(_LOCAL.get(el.tag, el.tag), el.text, ctx)


def _el_list(el: ET.Element, refs: Refs, ctx: _Ctx) -> tuple[str, ...]:
    tag = _LOCAL.get(el.tag, el.tag)
    if tag == "Obj":
        items = None
        to_string = None
        for child in el:
            ctag = _LOCAL.get(child.tag, child.tag)
            if ctag in _LIST_TAGS:
                items = tuple(
                    (decode_string(i.text) if i.tag == "S" else _text(i, refs)) for i in child
                )
            elif ctag == "TN":
                refs.types[child.get("RefId") or ""] = child
            elif ctag == "ToString":
                to_string = decode_string(child.text)
        if items is None:  # sent as a display string only: one item, like a bare <S>
            items = (to_string,) if to_string else ()
        _remember(el, refs, items)
        return items
    if tag == "Ref":
        value = refs.obj(el)
        if isinstance(value, tuple) and all(isinstance(v, str) for v in value):
            return value
        text = _as_text(value)
        return (text,) if text else ()
    return _prim_list(tag, el.text, ctx)


def _el_value(el: ET.Element, refs: Refs, ctx: _Ctx) -> Any:
    tag = _LOCAL.get(el.tag, el.tag)
    if tag == "Ref":
        value = refs.obj(el)
        return value if not isinstance(value, tuple) else _as_text(value)
    if tag == "Obj":
        return _obj_text(el, refs)
    return _prim_value(tag, el.text, ctx)


def _el_kvp(item: ET.Element, refs: Refs, ctx: _Ctx) -> tuple[str, Any] | None:
    tag = _LOCAL.get(item.tag, item.tag)
    if tag == "Obj":
        key: str | None = None
        value: Any = ""
        to_string = None
        for child in item:
            ctag = _LOCAL.get(child.tag, child.tag)
            if ctag == "Props" or ctag == "MS":
                for p in child:
                    name = p.get("N")
                    if name == "Key":
                        key = _text(p, refs)
                    elif name == "Value":
                        value = _el_value(p, refs, ctx)
            elif ctag == "ToString":
                to_string = decode_string(child.text)
            elif ctag == "TN":
                refs.types[child.get("RefId") or ""] = child
        pair: tuple[str, Any] | None
        if key is not None:
            pair = (key, value)
        elif to_string is not None:
            pair = _kvp_from_text(to_string, ctx)
        else:
            pair = None
        _remember(item, refs, pair)
        return pair
    if tag == "Ref":
        found = refs.obj(item)
        if isinstance(found, tuple) and len(found) == 2:
            return found
        return _kvp_from_text(_as_text(found), ctx)
    if tag == "Nil":
        return None
    return _kvp_from_text(_prim_text(tag, item.text), ctx)


def _el_data(el: ET.Element, refs: Refs, ctx: _Ctx) -> dict[str, Any]:
    tag = _LOCAL.get(el.tag, el.tag)
    data: dict[str, Any] = {}
    if tag == "Obj":
        to_string = None
        found_list = False
        for child in el:
            ctag = _LOCAL.get(child.tag, child.tag)
            if ctag in _LIST_TAGS:
                found_list = True
                for item in child:
                    pair = _el_kvp(item, refs, ctx)
                    if pair is not None:
                        data[pair[0]] = pair[1]
            elif ctag == "TN":
                refs.types[child.get("RefId") or ""] = child
            elif ctag == "ToString":
                to_string = decode_string(child.text)
        if not found_list and to_string:
            data = _data_from_text(to_string, ctx)
        _remember(el, refs, data)
        return data
    if tag == "Ref":
        found = refs.obj(el)
        if isinstance(found, dict):
            return dict(found)
        return _data_from_text(_as_text(found), ctx)
    return _prim_data(tag, el.text, ctx)


_ElConverter = Callable[[ET.Element, Refs, _Ctx], Any]
_PrimConverter = Callable[[str, "str | None", _Ctx], Any]
_EL_BY_KIND: dict[str, _ElConverter] = {
    "str": _el_str, "int": _el_int, "time": _el_time, "list": _el_list, "data": _el_data,
}
_PRIM_BY_KIND: dict[str, _PrimConverter] = {
    "str": _prim_str, "int": _prim_int, "time": _prim_time, "list": _prim_list,
    "data": _prim_data,
}
#: Cmdlet property name -> (TrackingEvent attribute, kind, element converter). Built once.
_PROPS: dict[str, tuple[str, str, _ElConverter, _PrimConverter]] = {
    prop: (f.attr, f.kind, _EL_BY_KIND[f.kind], _PRIM_BY_KIND[f.kind])
    for prop, f in FIELD_BY_PROP.items()
}
#: What a ``<Nil N=…/>`` property gives each field kind (the prim converters' answer
#: for Nil); a time field has no such value and goes the long way (a ValueError).
_FRESH_DICT: Any = object()  # a new {} each time
_NIL_BY_KIND: dict[str, Any] = {"str": "", "int": None, "list": (), "data": _FRESH_DICT}
_NIL_VALUES: dict[str, tuple[str, Any]] = {
    p: (f.attr, _NIL_BY_KIND[f.kind]) for p, f in FIELD_BY_PROP.items() if f.kind in _NIL_BY_KIND
}
#: The integer fields, for the scanner's inline ``<I32>`` case (``_prim_int``: ``int(text)``).
_INT_ATTRS: dict[str, str] = {p: f.attr for p, f in FIELD_BY_PROP.items() if f.kind == "int"}
#: EventData value tags converted by one builtin (``_prim_value`` for the others).
_VALUE_CONV: dict[str, Callable[[str], Any]] = {
    **{t: int for t in ("I32", "I64", "U32", "U64", "I16", "U16", "By", "SB")},
    **{t: float for t in ("Db", "Sg", "D")},
}
#: The text fields, for the scanner's inline ``<S>`` case.
_STR_ATTRS: dict[str, str] = {p: f.attr for p, f in FIELD_BY_PROP.items() if f.kind == "str"}


def convert_event(
    elem: ET.Element,
    *,
    origin: str = "",
    culture: str = "en-US",
    refs: Refs | None = None,
    tz: str | tzinfo | None = None,
) -> TrackingEvent | None:
    """One ``<Obj>`` element -> a :class:`TrackingEvent`, or None when it is not a
    MessageTrackingEvent (the caller then uses pypsrp's generic path).

    ``refs`` carries ``<TN>``/``<Obj>`` RefIds across the objects of one stream (pass the
    same :class:`Refs` for every object of an Export-Clixml file; a PSRP message is its own
    stream, so None is right there). ``origin`` becomes ``event.origin``; when empty the
    object's ``PSComputerName`` is used.

    MessageInfo of SEND/DELIVER/DEFER that is a whole local date-time in ``culture``
    (a name in ``CULTURE_FORMATS`` or a .NET pattern) is converted back to
    ``yyyy-MM-ddTHH:mm:ss.000Z`` UTC (the culture form has no milliseconds). The local
    offset is the event Timestamp's own offset, unless ``tz`` names the server's time zone
    (an IANA name or a tzinfo): without ``tz`` an arrival time in another DST period than
    the event is off by the DST difference. Text that does not parse is kept as it is.

    Raises ValueError for a MessageTrackingEvent that cannot be represented (no or a
    malformed Timestamp, a non-numeric TotalBytes, a dangling Ref).
    """
    if _LOCAL.get(elem.tag) != "Obj":
        return None
    if refs is None:
        refs = Refs()
    ctx = _Ctx(culture)
    kw: dict[str, Any] = {}
    extra: dict[str, str] | None = None
    computer = ""
    known = False
    for child in elem:
        tag = _LOCAL.get(child.tag, child.tag)
        if tag == "TN" or tag == "TNRef":
            if not is_event_type(refs.type_names(child)):
                return None
            known = True
            continue
        if tag != "Props" and tag != "MS":
            continue  # ToString, or anything a future serializer adds
        if not known:  # properties before any type name: not an object we recognise
            return None
        for prop in child:
            name = prop.get("N") or ""
            spec = _PROPS.get(name)
            if spec is not None:
                try:
                    kw[spec[0]] = spec[2](prop, refs, ctx)
                except ValueError as err:
                    raise ValueError(f"{name}: {err}") from None
            elif name in _DERIVED_PROPS:
                continue
            elif name in _NOTE_PROPS:
                if name == "PSComputerName":
                    computer = _text(prop, refs)
            else:
                if extra is None:
                    extra = {}
                extra[decode_string(name)] = _text(prop, refs)
    if not known:
        return None
    return _finish(kw, extra, computer, origin, culture, tz)


# --------------------------------------------------------------------------- building

# Building the frozen dataclass through __init__ costs ~10 µs (one object.__setattr__ per
# field); filling __dict__ from a template is ~1 µs and gives an equal object. Only done
# while TrackingEvent is a plain dataclass (no __post_init__, no __slots__); a test pins it.
_FAST_BUILD = not hasattr(TrackingEvent, "__post_init__") and "__slots__" not in vars(
    TrackingEvent
)
_TEMPLATE: dict[str, Any] = dict(vars(TrackingEvent(timestamp=datetime(2000, 1, 1, tzinfo=UTC))))
_new = object.__new__


def _build(kw: dict[str, Any]) -> TrackingEvent:
    if not _FAST_BUILD:  # pragma: no cover - only if events.py changes shape
        return TrackingEvent(**kw)
    ev = _new(TrackingEvent)
    d = ev.__dict__
    d.update(_TEMPLATE)
    d["event_data"] = {}
    d["extra"] = {}
    d.update(kw)
    return ev


@lru_cache(maxsize=32)
def _zone(name: str) -> tzinfo:
    return ZoneInfo(name)


def _finish(kw: dict[str, Any], extra: dict[str, str] | None, computer: str, origin: str,
            culture: str, tz: str | tzinfo | None) -> TrackingEvent:
    stamp = kw.get("timestamp")
    if stamp is None:
        raise ValueError("MessageTrackingEvent without a Timestamp")
    offset = stamp.utcoffset()
    kw["timestamp"] = stamp.astimezone(UTC)
    info = kw.get("message_info")
    if info and info[0].isdigit() and kw.get("event_id", "").upper() in _LOCAL_INFO_EVENTS:
        local = culture_parser(culture)(info)
        if local is not None:
            zone = _zone(tz) if isinstance(tz, str) else tz
            kw["message_info"] = local_to_log_timestamp(local, offset, zone)
    if extra:
        kw["extra"] = extra
    kw["origin"] = origin or computer
    return _build(kw)


# --------------------------------------------------------------------------- text scanner
# PowerShell (and the psrpcore/peer writers) emit one fixed layout with no white space:
#   <Obj RefId="0"><TN RefId="0"><T>…</T>…</TN><ToString>…</ToString><Props>
#     <S N="ClientIp">…</S> <Nil N="Reference" /> <Obj N="Recipients" RefId="1"><TNRef …/>
#     <LST><S>…</S></LST></Obj> …</Props><MS>…</MS></Obj>
# One findall over the <Props> (and <MS>) content yields one token per property, a nested
# object whole (a list of KeyValuePair objects too, taken apart after by _PAIR). Text that
# is none of these becomes one-character tokens with no group set, so nothing is skipped
# unnoticed. Anything else returns None and the element walker decides. Few groups per
# token matter: findall builds a tuple of every group for every token.

_TYPE_RE = r'(?:<TN RefId="\d+">(?:<T>[^<]*</T>)*</TN>|<TNRef RefId="\d+" ?/>)'
# The names of nested properties are skipped, so the pattern itself keeps out what the XML
# parser would change or reject in them; top-level names are checked by _odd_name instead
# (only where a name is not a known one: a plain [^"] is much cheaper for sre).
_PRIM_RE = r'<\w+ N="[^"<&\t\n]*"(?: ?/>|>[^<]*</\w+>)'
# PowerShell writes <Obj N=… RefId=…>, psrpcore <Obj RefId=… N=…>.
_ID_RE = r'(?: RefId="\d+")?'
_PAIR_HEAD = r'<Obj RefId="\d+">' + _TYPE_RE + r"(?:<ToString>[^<]*</ToString>)?<Props>"
_PAIR_RE = (_PAIR_HEAD + r'<S N="Key">[^<]*</S><\w+ N="Value"(?: ?/>|>[^<]*</\w+>)'
            r"</Props></Obj>")
_HEAD_RE = (r'<Obj RefId="\d+"><TN RefId="\d+">((?:<T>[^<]*</T>)+)</TN>'
            r"(?:<ToString>[^<]*</ToString>)?<Props>")
_TOKEN_RE = (
    # a primitive property
    r'<(?P<tag>\w+) N="(?P<name>[^"]*)"(?: ?/>|>(?P<text>[^<]*)</(?P=tag)>)'
    # an object property: a list of strings, an enum, an EnhancedTimeSpan, a display string
    r'|<Obj' + _ID_RE + r' N="(?P<obj>[^"]*)"' + _ID_RE + ">" + _TYPE_RE
    + r"(?:<ToString>(?P<tostring>[^<]*)</ToString>)?"
    r"(?:(?P<items><LST>(?:<S>[^<]*</S>|<S ?/>|<Nil ?/>)*</LST>)"
    # a list of KeyValuePair objects (EventData), split up by _PAIR below
    r"|<LST>(?P<pairs>(?:" + _PAIR_RE + r"|<Nil ?/>)+)</LST>"
    r"|(?:<Props>(?:" + _PRIM_RE + r")*</Props>|<\w+>[^<]*</\w+>)?)</Obj>"
    # Anything else is one character of its own, a token with no group set: the loop
    # gives up on it. So findall never skips text unnoticed.
    r"|[\s\S]"
)


def _compile(pattern: str) -> re.Pattern[str]:
    """The scanner's patterns, compiled for speed with the same matches:

    - Every ``[^<]*``, ``[^<]+``, ``[^"]*``, ``[^"<&\\t\\n]*``, ``\\w+`` and ``\\d+`` above is
      followed by a character it cannot match, and every repeated group by a tag its
      items cannot start with, so giving back can never help a match: made possessive,
      sre keeps no backtracking state for them (Python 3.10 has no possessive quantifiers).
    - ``\\w`` and ``\\d`` only meet tag names and RefIds, which are ASCII: ``re.ASCII``
      tests them by table instead of Unicode database calls.
    """
    if sys.version_info >= (3, 11):
        pattern = (pattern.replace("[^<]*", "[^<]*+").replace("[^<]+", "[^<]++")
                   .replace('[^"]*', '[^"]*+').replace('[^"<&\\t\\n]*', '[^"<&\\t\\n]*+')
                   .replace(r"\w+", r"\w++").replace(r"\d+", r"\d++")
                   .replace(")*", ")*+").replace(")+", ")++"))
    return re.compile(pattern, re.ASCII)


_TOKEN = _compile(_TOKEN_RE)
_HEAD = _compile(_HEAD_RE)
# The Key and Value of each KeyValuePair object that _TOKEN matched. Text and attributes
# cannot hold a "<", so each '<S N="Key">' starts a Key. The number of matches must be the
# number of objects, since _PRIM_RE's closing tag need not match its opening one.
_PAIR = _compile(r'<S N="Key">([^<]*)</S><(\w+) N="Value"(?: ?/>|>([^<]*)</\2>)')
# The note properties PowerShell remoting adds to every object, in its order: one match
# instead of three tokens.
_STANDARD_MS = _compile(
    r'<MS><S N="PSComputerName">([^<]*)</S><G N="RunspaceId">[^<]*</G>'
    r'<B N="PSShowComputerName">(?:true|false)</B></MS></Obj>')
_ITEM = _compile(r"<S>([^<]*)</S>|<(?:S|Nil) ?/>")
_PLAIN_T = f"<T>{EVENT_TYPE}</T>"
_DESERIALIZED_T = f"<T>Deserialized.{EVENT_TYPE}</T>"
_ENTITY = re.compile(r"&(?:([^;&<]*);)?")
_CHAR_REF = re.compile(r"#(?:[0-9]+|x[0-9a-fA-F]+)", re.ASCII)
#: A name the scanner takes as written only when the XML parser would read it the same:
#: no reference, no "<", no tab or newline (an attribute value reads those as spaces).
#: Checked where a name is not one of the known ones (those are plain).
_odd_name = re.compile(r"[<&\t\n]").search
_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}


#: The scanner's read-only _Ctx per culture name (a handful of names per process).
_CTXS: dict[str, _Ctx] = {}


class _Unsure(Exception):
    """The scanner met something it does not handle; the element walker takes over."""


def _entity(m: re.Match[str]) -> str:
    """One reference as the XML parser reads it; anything the parser would reject (a
    bare "&", an unknown entity, a character XML does not allow) is the walker's."""
    name = m.group(1)
    if name is None:
        raise _Unsure("a bare &")
    found = _ENTITIES.get(name)
    if found is not None:
        return found
    if _CHAR_REF.fullmatch(name) is not None:
        code = int(name[2:], 16) if name[1] == "x" else int(name[1:])
        if code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD \
                or 0x10000 <= code <= 0x10FFFF:
            return chr(code)
    raise _Unsure(f"reference &{name};")


def _unescape(text: str) -> str:
    if "&" not in text:
        return text
    if "&#" not in text:
        # The other four named entities first: replacing them cannot make an "&amp;"
        # (nor an "&"), so when every "&" left starts an "&amp;", each "&" was a named
        # entity and replacing "&amp;" last gives what _ENTITY.sub gives.
        out = (text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
               .replace("&apos;", "'"))
        if out.count("&") == out.count("&amp;"):
            return out.replace("&amp;", "&")
    return _ENTITY.sub(_entity, text)


def _scan_items(block: str) -> tuple[str, ...]:
    if "&" not in block and "_" not in block:  # nothing to decode ("" for <S />, <Nil />)
        return tuple(_ITEM.findall(block))
    return tuple(decode_string(t if "&" not in t else _unescape(t)) for t in _ITEM.findall(block))


def _scan_pairs(block: str, ctx: _Ctx) -> dict[str, Any]:
    """The KeyValuePair objects of an EventData-like list -> a dict, by each Value's type."""
    found = _PAIR.findall(block)
    if len(found) != block.count("<Obj "):
        raise _Unsure("a KeyValuePair with mismatched tags")
    pairs: dict[str, Any] = {}
    value_conv = _VALUE_CONV
    if "&" not in block and "_" not in block:  # nothing to unescape or decode anywhere
        for key, tag, text in found:
            if tag == "S":
                pairs[key] = text
            else:
                conv = value_conv.get(tag)
                pairs[key] = conv(text) if conv is not None else _prim_value(tag, text, ctx)
        return pairs
    for key, tag, text in found:
        if "&" in key:
            key = _unescape(key)
        if "_" in key:
            key = decode_string(key)
        if "&" in text:
            pairs[key] = _prim_value(tag, _unescape(text), ctx)
        elif tag == "S":
            pairs[key] = text if "_" not in text else decode_string(text)
        else:
            conv = value_conv.get(tag)
            pairs[key] = conv(text) if conv is not None else _prim_value(tag, text, ctx)
    return pairs


def _scan_object(kind: str, name: str, to_string: str, items: str, ctx: _Ctx) -> Any:
    """A nested ``<Obj>`` property that came as one token, by the kind of field it feeds."""
    if kind == "list":
        if items:
            return _scan_items(items)
        text = decode_string(_unescape(to_string))
        return (text,) if text else ()
    if kind == "data":
        if items:
            data: dict[str, Any] = {}
            for text in _scan_items(items):
                pair = _kvp_from_text(text, ctx)
                if pair is not None:
                    data[pair[0]] = pair[1]
            return data
        return _data_from_text(decode_string(_unescape(to_string)), ctx)
    if kind == "str":
        if items:
            return join_list(_scan_items(items))
        if to_string:
            return decode_string(_unescape(to_string))
    raise _Unsure(f"{name}: an object for a {kind} field")


def _scan_event(text: str, origin: str, culture: str,
                tz: str | tzinfo | None) -> TrackingEvent | None:
    """The text scanner; None when it is not sure (then use the element walker)."""
    head = _HEAD.match(text)
    if head is None:
        return None
    names = head.group(1)
    if _PLAIN_T not in names and _DESERIALIZED_T not in names:
        return None  # not an event, or an unusual type name: the walker decides
    start = head.end()
    props_end = text.rfind("</Props>")
    if "\r" in text:  # XML turns CR LF into LF; leave that to the parser
        return None
    computer = ""
    other_notes = False
    if text.startswith("</Obj>", props_end + 8) and len(text) == props_end + 14:
        pass  # no note properties
    elif (standard := _STANDARD_MS.fullmatch(text, props_end + 8)) is not None:
        computer = standard.group(1)
    elif text.startswith("<MS>", props_end + 8) and text.endswith("</MS></Obj>"):
        other_notes = True
    else:
        return None
    tokens = _TOKEN.findall(text, start, props_end)
    if other_notes:  # the same tokens as <Props> (the glue between them is not a token)
        tokens += _TOKEN.findall(text, props_end + 12, len(text) - 11)
    ctx = _CTXS.get(culture)
    if ctx is None:
        ctx = _CTXS[culture] = _Ctx(culture)
    kw: dict[str, Any] = {}
    extra: dict[str, str] | None = None
    str_attrs = _STR_ATTRS
    nil_values = _NIL_VALUES
    props = _PROPS
    int_attrs = _INT_ATTRS
    try:
        if "&" in computer or "_" in computer:
            computer = decode_string(_unescape(computer))
        for tag, name, value, obj, to_string, items, pairs in tokens:
            # the common primitives first, inline
            if tag == "S":
                attr = str_attrs.get(name)
                if attr is not None:
                    if "&" in value:
                        value = _unescape(value)
                    kw[attr] = value if "_" not in value else decode_string(value)
                    continue
            elif tag == "Nil":
                nil = nil_values.get(name)
                if nil is not None:
                    kw[nil[0]] = nil[1] if nil[1] is not _FRESH_DICT else {}
                    continue
            elif tag == "DT" and name == "Timestamp":
                # _finish turns it to UTC; a text parse_datetime refuses (ValueError)
                # goes to the walker like every other surprise.
                kw["timestamp"] = parse_datetime(value)
                continue
            elif tag == "I32":
                attr = int_attrs.get(name)
                if attr is not None and "&" not in value:
                    kw[attr] = int(value)
                    continue
            if tag:  # any other primitive property
                if "&" in value:
                    value = _unescape(value)
                spec = props.get(name)
                if spec is not None:
                    kw[spec[0]] = spec[3](tag, value, ctx)
                elif name in _DERIVED_PROPS:
                    pass
                elif name in _NOTE_PROPS:
                    if name == "PSComputerName":
                        computer = _prim_text(tag, value)
                else:
                    if _odd_name(name):
                        raise _Unsure("a property name the parser would change or reject")
                    if extra is None:
                        extra = {}
                    extra[decode_string(name)] = _prim_text(tag, value)
            elif pairs:  # a list of KeyValuePair objects
                spec = props.get(obj)
                if spec is None or spec[1] != "data":
                    raise _Unsure(f"{obj}: a list of objects")
                kw[spec[0]] = _scan_pairs(pairs, ctx)
            elif obj:
                spec = props.get(obj)
                if spec is not None:
                    if items and spec[1] == "list":
                        kw[spec[0]] = _scan_items(items)
                    else:
                        kw[spec[0]] = _scan_object(spec[1], obj, to_string, items, ctx)
                elif obj in _DERIVED_PROPS or obj in ("RunspaceId", "PSShowComputerName"):
                    pass
                else:
                    if _odd_name(obj):
                        raise _Unsure("a property name the parser would change or reject")
                    as_text = _scan_object("str", obj, to_string, items, ctx)
                    if obj == "PSComputerName":
                        computer = as_text
                    else:
                        if extra is None:
                            extra = {}
                        extra[decode_string(obj)] = as_text
            else:
                raise _Unsure("unexpected text")
        return _finish(kw, extra, computer, origin, culture, tz)
    except (_Unsure, ValueError):
        return None  # the element walker gives the definitive answer (or error)


def convert_text(
    text: str,
    *,
    origin: str = "",
    culture: str = "en-US",
    tz: str | tzinfo | None = None,
) -> TrackingEvent | None:
    """One CLIXML document holding one top-level ``<Obj>`` (a PSRP PIPELINE_OUTPUT
    message) -> a :class:`TrackingEvent`, or None when it is not a MessageTrackingEvent.

    Same contract as :func:`convert_event` (ValueError for a malformed event,
    ``xml.etree.ElementTree.ParseError`` for text that is not XML). Only call it on text
    that starts with ``<Obj``: such a document cannot declare a DTD, so the plain parser
    used for the fallback cannot expand entities.
    """
    event = _scan_event(text, origin, culture, tz)
    if event is not None:
        return event
    return convert_event(ET.fromstring(text), origin=origin, culture=culture, tz=tz)


# --------------------------------------------------------------------------- pypsrp hook

_SNIFF = "TransportLogSearchTasks.MessageTrackingEvent</T>"


class FastSerializer(Serializer):
    """pypsrp 0.9.1's Serializer, with a fast path for MessageTrackingEvent output.

    ``Message.unpack`` deserializes every PIPELINE_OUTPUT message with
    ``serializer.deserialize(xml_text)`` (a ``str``, no metadata, ``clear=True``). When
    that text is a top-level ``<Obj>`` whose type names a MessageTrackingEvent, it becomes
    a :class:`TrackingEvent` through :func:`convert_text`; every other call (other objects,
    records, state messages, nested calls with ``clear=False`` or metadata) runs pypsrp's
    own code unchanged. An event that does not convert (ValueError) is logged, counted in
    :attr:`failures`, and left to pypsrp, so it arrives as a ``GenericComplexObject``.
    """

    def __init__(self, *, origin: str = "", culture: str = "en-US",
                 tz: str | tzinfo | None = None) -> None:
        super().__init__()
        check_settings(culture, tz)  # fail now, not on the first event
        self.origin = origin
        self.culture = culture
        self.tz = tz
        #: MessageTrackingEvents that did not convert and went the generic way.
        self.failures = 0

    def deserialize(self, element: Any, metadata: Any = None, clear: bool = True) -> Any:
        if metadata is None and clear:
            event = None
            if isinstance(element, str):
                if is_event_text(element):
                    event = self.event_or_none(element)
            elif isinstance(element, ET.Element):
                event = self._guarded(convert_event, element)
            if event is not None:
                self._clear()  # what the base class does for a top-level call
                return event
        return super().deserialize(element, metadata, clear)

    def event_or_none(self, text: str) -> TrackingEvent | None:
        """The event in a PIPELINE_OUTPUT text, or None (logged and counted) if it does not
        convert and must go pypsrp's generic way."""
        return self._guarded(convert_text, text)

    def _guarded(self, convert: Callable[..., TrackingEvent | None], value: Any
                 ) -> TrackingEvent | None:
        try:
            return convert(value, origin=self.origin, culture=self.culture, tz=self.tz)
        except ET.ParseError:
            return None  # pypsrp logs it and hands back the raw text
        except ValueError as err:
            self.failures += 1
            log.warning("MessageTrackingEvent not converted (%s); using pypsrp's generic "
                        "deserializer", err)
            return None


def is_event_text(text: str) -> bool:
    """Whether a PIPELINE_OUTPUT text is a top-level MessageTrackingEvent object."""
    return text.startswith("<Obj") and text.find(_SNIFF, 0, 2000) > 0


# --------------------------------------------------------------------------- Export-Clixml

#: Nested objects remembered for ``<Ref>``s across an Export-Clixml file. PowerShell only
#: writes a Ref for the same .NET instance seen again, which tracking output practically
#: never does across events; the cap keeps memory flat on huge files.
MAX_FILE_REFS = 10_000
#: Whole events remembered for a top-level ``<Ref>`` (the same event exported twice).
MAX_RECENT_EVENTS = 64

_TRUNCATION_CODES = frozenset({3, 5, 6, 20})  # no element found, unclosed token/char/CDATA


def read_clixml(
    path: str | os.PathLike[str],
    report: RunReport,
    *,
    culture: str = "en-US",
    tz: str | tzinfo | None = None,
) -> Iterator[TrackingEvent]:
    """Stream the MessageTrackingEvents of an Export-Clixml file (UTF-16 with BOM from
    Windows PowerShell, UTF-8 from PowerShell 7), with flat memory.

    Parsed by defusedxml with DTDs, entity declarations and external references
    forbidden: such a file raises :class:`InputError` before anything is expanded. A file
    cut short yields the events before the break, then reports a ``bad-file`` problem.
    Objects of other types, or events that do not convert, are each reported as a
    ``bad-line`` problem at ``path:line`` (where the object starts) and skipped. Counts
    ``events``; ``event.origin`` is ``path:line``.
    """
    where = os.fspath(path)
    check_settings(culture, tz)
    try:
        source = open(path, "rb")  # noqa: SIM115 - closed in the finally below
    except OSError as err:
        raise InputError(f"cannot read: {err.strerror or err}", path=where) from None
    target = _TopLevel()
    parser = DET.DefusedXMLParser(target=target, forbid_dtd=True, forbid_entities=True,
                                  forbid_external=True)
    target.expat = parser.parser
    refs = Refs()
    recent: dict[str, TrackingEvent] = {}
    count = 0
    try:
        while True:
            chunk = source.read(64 * 1024)
            error: ET.ParseError | None = None
            try:
                if chunk:
                    parser.feed(chunk)
                else:
                    parser.close()
            except ET.ParseError as err:
                error = err  # the objects finished before it still count
            except defusedxml.DefusedXmlException as err:
                log.debug("%s: %r", where, err)
                raise InputError(
                    "refused: the file declares a DTD/entities (possible entity-expansion "
                    "attack)", path=where,
                    hint="Export-Clixml never writes a DTD; export the events again on the "
                         "server (Get-MessageTrackingLog ... | Export-Clixml FILE)",
                ) from None
            except _NotAnExport as err:
                report.problem("bad-file", where, str(err))
                return
            for elem, line in target.done:
                count += 1
                event = _file_object(elem, refs, recent, report, f"{where}:{line}", culture, tz)
                if event is not None:
                    report.count("events")
                    yield event
                elem.clear()
            if target.done:
                del target.root[: len(target.done)]  # type: ignore[union-attr]
                target.done.clear()
            if len(refs.objs) > MAX_FILE_REFS:
                for key in list(refs.objs)[: MAX_FILE_REFS // 2]:
                    del refs.objs[key]
            if error is not None:
                report.problem("bad-file", where, _parse_problem(error, target, count))
                return
            if not chunk:
                return
    finally:
        source.close()


class _NotAnExport(Exception):
    pass


class _TopLevel:
    """Parser target: the C TreeBuilder builds the elements, and each finished child of the
    root is queued with the line its start tag is on."""

    def __init__(self) -> None:
        self.builder = ET.TreeBuilder()
        self.expat: Any = None  # the parser's expat object, for line numbers
        self.depth = 0
        self.line = 0
        self.root: ET.Element | None = None
        self.done: list[tuple[ET.Element, int]] = []

    def start(self, tag: str, attrs: dict[str, str]) -> ET.Element:
        self.depth += 1
        if self.depth == 2:
            self.line = self.expat.CurrentLineNumber
        elem = self.builder.start(tag, attrs)
        if self.depth == 1:
            if _LOCAL.get(tag) != "Objs":
                raise _NotAnExport(f"not an Export-Clixml file (root element <{tag}>)")
            self.root = elem
        return elem

    def end(self, tag: str) -> ET.Element:
        elem = self.builder.end(tag)
        self.depth -= 1
        if self.depth == 1:
            self.done.append((elem, self.line))
        return elem

    def data(self, text: str) -> None:
        self.builder.data(text)

    def close(self) -> ET.Element:
        return self.builder.close()


def _parse_problem(err: ET.ParseError, target: _TopLevel, count: int) -> str:
    line, _column = getattr(err, "position", (0, 0))
    message = str(err).split(":", 1)[0]
    if target.root is None and getattr(err, "code", None) == 3:  # no element found
        return "empty file, not an Export-Clixml file"
    kind = "truncated" if getattr(err, "code", None) in _TRUNCATION_CODES else "malformed"
    return f"{kind} XML at line {line}: {message} (after {count} objects)"


def _file_object(elem: ET.Element, refs: Refs, recent: dict[str, TrackingEvent],
                 report: RunReport, here: str, culture: str,
                 tz: str | tzinfo | None) -> TrackingEvent | None:
    if _LOCAL.get(elem.tag, elem.tag) == "Ref":  # the same event exported twice
        found = recent.get(elem.get("RefId") or "")
        if found is None:
            report.problem("bad-line", here, "reference to an earlier object that is not a "
                           "recent MessageTrackingEvent; skipped")
        return found
    try:
        event = convert_event(elem, origin=here, culture=culture, refs=refs, tz=tz)
    except ValueError as err:
        report.problem("bad-line", here, f"MessageTrackingEvent not converted: {err}; skipped")
        return None
    if event is None:
        report.problem("bad-line", here,
                       f"not a MessageTrackingEvent ({_describe(elem, refs)}); skipped")
        return None
    ref_id = elem.get("RefId")
    if ref_id is not None:
        recent[ref_id] = event
        if len(recent) > MAX_RECENT_EVENTS:
            del recent[next(iter(recent))]
    return event


def _describe(elem: ET.Element, refs: Refs) -> str:
    tag = _LOCAL.get(elem.tag, elem.tag)
    if tag != "Obj":
        return f"<{tag}>"
    for child in elem:
        if _LOCAL.get(child.tag) in ("TN", "TNRef"):
            try:
                names = refs.type_names(child)
            except ValueError:
                break
            if names:
                return names[0]
    return "an object without type names"
