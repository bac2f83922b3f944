"""CLIXML -> TrackingEvent: value shapes, both converters, pypsrp hook, Export-Clixml files."""

from __future__ import annotations

import dataclasses
import gc
import itertools
import struct
import tracemalloc
import uuid
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from pathlib import Path
from xml.sax.saxutils import escape

import psrpcore.types
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pypsrp.complex_objects import GenericComplexObject, ObjectMeta
from pypsrp.messages import Message
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.serializer import Serializer
from pypsrp.wsman import WSMan

from msgtrack.decode import decode_custom_data
from msgtrack.errors import InputError, MsgtrackError, UsageError
from msgtrack.events import TrackingEvent
from msgtrack.report import RunReport
from msgtrack.sources import clixml
from msgtrack.sources._clixml_values import (
    culture_parser,
    decode_string,
    encode_string,
    guess_typed,
    parse_datetime,
)
from msgtrack.sources._psrp_fast import FastFragmenter, install_fast_serializer
from msgtrack.sources.clixml import (
    FastSerializer,
    Refs,
    convert_event,
    convert_text,
    read_clixml,
)
from tests.exchange_peer import ServerSpec
from tests.exchange_peer.synthetic import make_events

pytest_plugins = ["tests.exchange_peer.fixtures"]

DATA = Path(__file__).parent / "data" / "clixml"
UTC = timezone.utc
MTE = "Microsoft.Exchange.Management.TransportLogSearchTasks.MessageTrackingEvent"
TN = f'<TN RefId="0"><T>{MTE}</T><T>System.Object</T></TN>'
MS = ('<MS><S N="PSComputerName">ex01.contoso.com</S>'
      '<G N="RunspaceId">5b6a8c1e-3f1d-4c2b-9a77-0d1e2f3a4b5c</G>'
      '<B N="PSShowComputerName">false</B></MS>')
STAMP = '<DT N="Timestamp">2026-11-27T09:15:07.1234567-05:00</DT>'
STAMP_UTC = datetime(2026, 11, 27, 14, 15, 7, 123456, tzinfo=UTC)
STR_LIST = '<TN RefId="1"><T>System.String[]</T><T>System.Array</T><T>System.Object</T></TN>'
KVP = ("System.Collections.Generic.KeyValuePair`2[[System.String, mscorlib, Version=4.0.0.0, "
       "Culture=neutral, PublicKeyToken=b77a5c561934e089],[System.Object, mscorlib, "
       "Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089]]")


def doc(props: str, *, tn: str = TN, ms: str = MS, stamp: str = STAMP) -> str:
    """A PIPELINE_OUTPUT document: one MessageTrackingEvent with these properties."""
    return (f'<Obj RefId="0">{tn}<ToString>{MTE}</ToString><Props>{stamp}{props}</Props>'
            f"{ms}</Obj>")


def walk(text: str, **kw: object) -> TrackingEvent | None:
    return convert_event(ET.fromstring(text), **kw)  # type: ignore[arg-type]


def scan(text: str, **kw: object) -> TrackingEvent | None:
    """The text scanner alone (None = it left the document to the element walker)."""
    return clixml._scan_event(text, kw.get("origin", ""), kw.get("culture", "en-US"),  # type: ignore[arg-type]
                              kw.get("tz"))  # type: ignore[arg-type]


def both(text: str, *, scanned: bool = True, **kw: object) -> TrackingEvent:
    """Convert with both paths; they must agree, and the scanner must (not) take it."""
    walked = walk(text, **kw)
    assert walked is not None
    fast = scan(text, **kw)
    if scanned:
        assert fast is not None, "the scanner should handle this shape"
        assert fast == walked
        assert fast.origin == walked.origin
    else:
        assert fast is None, "the scanner should leave this shape to the walker"
    assert convert_text(text, **kw) == walked  # type: ignore[arg-type]
    return walked


def kvp(key: str, value: str, ref: int) -> str:
    tn = (f'<TN RefId="5"><T>{KVP}</T><T>System.ValueType</T><T>System.Object</T></TN>'
          if ref == 10 else '<TNRef RefId="5" />')
    return (f'<Obj RefId="{ref}">{tn}<ToString>[{escape(key)}, …]</ToString><Props>'
            f'<S N="Key">{escape(key)}</S>{value}</Props></Obj>')


def event_data(*items: str) -> str:
    return (f'<Obj N="EventData" RefId="9"><TN RefId="4"><T>{KVP}[]</T><T>System.Array</T>'
            f'<T>System.Object</T></TN><LST>{"".join(items)}</LST></Obj>')


# --------------------------------------------------------------------------- value shapes

SHAPES = [
    # (id, property XML, attribute, expected value, scanner handles it)
    ("S", '<S N="ClientIp">10.0.0.15</S>', "client_ip", "10.0.0.15", True),
    ("S-empty", '<S N="MessageSubject" />', "message_subject", "", True),
    ("S-empty-pair", '<S N="MessageSubject"></S>', "message_subject", "", True),
    ("S-crlf", '<S N="MessageSubject">a_x000D__x000A_b</S>', "message_subject", "a\r\nb", True),
    ("S-surrogates", '<S N="MessageSubject">x _xD83D__xDE00_ y</S>', "message_subject",
     "x \U0001F600 y", True),
    ("S-literal-x", '<S N="MessageSubject">_x005F_x0041_</S>', "message_subject", "_x0041_",
     True),
    ("S-upper-X", '<S N="MessageSubject">_X2013_</S>', "message_subject", "\u2013", True),
    ("S-lone-surrogate", '<S N="MessageSubject">_xD83D_!</S>', "message_subject", "\ufffd!",
     True),
    ("S-not-an-escape", '<S N="MessageSubject">_x12_ _xZZZZ_ a_b</S>', "message_subject",
     "_x12_ _xZZZZ_ a_b", True),
    ("S-entities", '<S N="MessageId">&lt;a&amp;b@x&gt; &#x41;&#66; &quot;&apos;</S>',
     "message_id", "<a&b@x> AB \"'", True),
    ("S-trailing-space", '<S N="MessageInfo">04I: </S>', "message_info", "04I: ", True),
    ("Nil-text", '<Nil N="Sender" />', "sender", "", True),
    ("I64-text", '<I64 N="InternalMessageId">25769803777</I64>', "internal_message_id",
     "25769803777", True),
    ("S-id", '<S N="InternalMessageId">25769803777</S>', "internal_message_id",
     "25769803777", True),
    ("G-text", '<G N="NetworkMessageId">3F2A6C1E-5B7D-4E8F-9A0B-1C2D3E4F5A6B</G>',
     "network_message_id", "3F2A6C1E-5B7D-4E8F-9A0B-1C2D3E4F5A6B", True),
    ("Version-text", '<Version N="SchemaVersion">15.2.1258.12</Version>', "schema_version",
     "15.2.1258.12", True),
    ("I32", '<I32 N="TotalBytes">20000</I32>', "total_bytes", 20000, True),
    ("I64", '<I64 N="TotalBytes">5000000000</I64>', "total_bytes", 5000000000, True),
    ("U32", '<U32 N="RecipientCount">3</U32>', "recipient_count", 3, True),
    ("U64", '<U64 N="RecipientCount">3</U64>', "recipient_count", 3, True),
    ("S-int", '<S N="TotalBytes">42</S>', "total_bytes", 42, True),
    ("Nil-int", '<Nil N="TotalBytes" />', "total_bytes", None, True),
    ("String[]", f'<Obj N="Recipients" RefId="1">{STR_LIST}<LST><S>a@x</S><S>b@y</S></LST>'
     "</Obj>", "recipients", ("a@x", "b@y"), True),
    ("MultiValuedProperty",
     '<Obj N="Reference" RefId="1"><TN RefId="1"><T>Microsoft.Exchange.Data.'
     "MultiValuedProperty`1[[System.String, mscorlib, Version=4.0.0.0, Culture=neutral, "
     "PublicKeyToken=b77a5c561934e089]]</T><T>Microsoft.Exchange.Data.MultiValuedPropertyBase"
     "</T><T>System.Object</T></TN><LST><S>&lt;dsn1@x&gt;</S></LST></Obj>",
     "reference", ("<dsn1@x>",), True),
    ("LST-empty-items", f'<Obj N="RecipientStatus" RefId="1">{STR_LIST}<LST><S></S><S />'
     "<Nil /></LST></Obj>", "recipient_status", ("", "", ""), True),
    ("LST-empty", f'<Obj N="Recipients" RefId="1">{STR_LIST}<LST></LST></Obj>', "recipients",
     (), True),
    ("LST-escapes", f'<Obj N="Recipients" RefId="1">{STR_LIST}<LST><S>a_x005F_x@x</S>'
     "<S>b&amp;c@y</S></LST></Obj>", "recipients", ("a_x@x", "b&c@y"), True),
    ("IE", f'<Obj N="Recipients" RefId="1">{STR_LIST}<IE><S>a@x</S></IE></Obj>', "recipients",
     ("a@x",), False),
    ("Nil-list", '<Nil N="Reference" />', "reference", (), True),
    ("S-list", '<S N="Recipients">a@x</S>', "recipients", ("a@x",), True),
    ("ToString-list", '<Obj N="Recipients" RefId="1"><TN RefId="1"><T>Some.Type</T></TN>'
     "<ToString>a@x</ToString></Obj>", "recipients", ("a@x",), True),
    ("Ref-list", f'<Obj N="Recipients" RefId="1">{STR_LIST}<LST><S>a@x</S></LST></Obj>'
     '<Ref N="RecipientStatus" RefId="1" />', "recipient_status", ("a@x",), False),
    ("Nil-data", '<Nil N="EventData" />', "event_data", {}, True),
    ("S-data", '<S N="EventData">{[A, 1], [B, x y], [C, 0.5]}</S>', "event_data",
     {"A": 1, "B": "x y", "C": 0.5}, True),
    ("kvp-typed", event_data(
        kvp("S", '<S N="Value">Normal</S>', 10), kvp("I32", '<I32 N="Value">2</I32>', 11),
        kvp("I64", '<I64 N="Value">5000000000</I64>', 12),
        kvp("Db", '<Db N="Value">0.701</Db>', 13), kvp("Sg", '<Sg N="Value">1.5</Sg>', 14),
        kvp("DT", '<DT N="Value">2026-11-27T14:15:07.1230000Z</DT>', 15),
        kvp("DT-offset", '<DT N="Value">2026-11-27T09:15:07.1230000-05:00</DT>', 16),
        kvp("B", '<B N="Value">true</B>', 17), kvp("Nil", '<Nil N="Value" />', 18),
        kvp("G", '<G N="Value">1b2c3d4e-0000-0000-0000-000000000007</G>', 19),
        kvp("S-escaped", '<S N="Value">a_x000A_b &amp; c</S>', 20),
        kvp("S-empty", '<S N="Value" />', 21)),
     "event_data", {
         "S": "Normal", "I32": 2, "I64": 5000000000, "Db": 0.701, "Sg": 1.5,
         "DT": datetime(2026, 11, 27, 14, 15, 7, 123000, tzinfo=UTC),
         "DT-offset": datetime(2026, 11, 27, 14, 15, 7, 123000, tzinfo=UTC),
         "B": "True", "Nil": "", "G": "1b2c3d4e-0000-0000-0000-000000000007",
         "S-escaped": "a\nb & c", "S-empty": ""}, True),
    ("kvp-strings", event_data(
        "<S>[A, Normal]</S>", "<S>[N, 2]</S>", "<S>[Neg, -7]</S>", "<S>[Zero, 007]</S>",
        "<S>[F, 0.701]</S>", "<S>[When, 2026-11-27T14:15:07.123Z]</S>",
        "<S>[Local, 11/27/2026 2:15:07 PM]</S>", "<S>[Text, a, b]</S>", "<S>odd</S>",
        "<Nil />", "<S />"),
     "event_data", {
         "A": "Normal", "N": 2, "Neg": -7, "Zero": "007", "F": 0.701,
         "When": datetime(2026, 11, 27, 14, 15, 7, 123000, tzinfo=UTC),
         "Local": datetime(2026, 11, 27, 14, 15, 7, tzinfo=UTC), "Text": "a, b", "odd": ""},
     True),
    ("kvp-ToString-only", event_data(
        f'<Obj RefId="10"><TN RefId="5"><T>{KVP}</T></TN><ToString>[A, 1]</ToString></Obj>'),
     "event_data", {"A": 1}, False),
    ("kvp-empty", event_data(), "event_data", {}, True),
]


@pytest.mark.parametrize(("xml", "attr", "expected", "scanned"),
                         [pytest.param(*case[1:], id=case[0]) for case in SHAPES])
def test_value_shapes(xml, attr, expected, scanned):
    ev = both(doc(xml), scanned=scanned)
    assert getattr(ev, attr) == expected
    assert type(getattr(ev, attr)) is type(expected)
    assert ev.timestamp == STAMP_UTC
    assert ev.extra == {}


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-27T09:15:07.1234567-05:00", datetime(2026, 11, 27, 14, 15, 7, 123456, tzinfo=UTC)),
    ("2026-11-27T14:15:07.1234567Z", datetime(2026, 11, 27, 14, 15, 7, 123456, tzinfo=UTC)),
    ("2026-11-27T19:45:07.5+05:30", datetime(2026, 11, 27, 14, 15, 7, 500000, tzinfo=UTC)),
    ("2026-11-27T14:15:07", datetime(2026, 11, 27, 14, 15, 7, tzinfo=UTC)),
    ("2026-11-27T14:15:07.123", datetime(2026, 11, 27, 14, 15, 7, 123000, tzinfo=UTC)),
    ("2026-11-28T00:15:07.9999999+10:00", datetime(2026, 11, 27, 14, 15, 7, 999999, tzinfo=UTC)),
])
def test_timestamps_become_utc_with_the_offset_they_carry(text, expected):
    ev = both(doc("", stamp=f'<DT N="Timestamp">{text}</DT>'))
    assert ev.timestamp == expected
    assert ev.timestamp.tzinfo is UTC


def test_parse_datetime_keeps_the_offset_and_never_rounds_up():
    value = parse_datetime("2026-12-31T23:59:59.9999999-05:00")
    assert value.utcoffset() == timedelta(hours=-5)
    assert value.microsecond == 999999
    with pytest.raises(ValueError):
        parse_datetime("27.11.2026")


@pytest.mark.parametrize(("xml", "message"), [
    ("", "without a Timestamp"),
    ('<I32 N="TotalBytes">many</I32>', "TotalBytes"),
    ('<Ref N="Recipients" RefId="7" />', "points to no earlier object"),
])
def test_a_malformed_event_raises_value_error(xml, message):
    stamp = "" if not xml else STAMP
    text = doc(xml, stamp=stamp)
    assert scan(text) is None
    with pytest.raises(ValueError, match=message):
        walk(text)
    with pytest.raises(ValueError, match=message):
        convert_text(text)


def test_a_bad_timestamp_names_the_property():
    with pytest.raises(ValueError, match="Timestamp"):
        walk(doc("", stamp='<DT N="Timestamp">yesterday</DT>'))


# --------------------------------------------------------------------------- the other props


def test_derived_and_note_properties_are_not_fields_and_unknown_ones_go_to_extra():
    xml = ('<Obj N="MessageLatency" RefId="3"><TN RefId="2">'
           "<T>Microsoft.Exchange.Data.EnhancedTimeSpan</T><T>System.ValueType</T></TN>"
           '<ToString>00:00:01.2340000</ToString><Props><I32 N="Seconds">1</I32>'
           '<I64 N="Ticks">12340000</I64></Props></Obj>'
           '<Obj N="MessageLatencyType" RefId="4"><TN RefId="3"><T>Microsoft.Exchange.'
           "Management.TransportLogSearchTasks.MessageLatencyType</T><T>System.Enum</T></TN>"
           "<ToString>EndToEnd</ToString><I32>2</I32></Obj>"
           '<S N="FutureProp">x_x0009_y</S><B N="FutureFlag">true</B>'
           '<Obj N="FutureList" RefId="5"><TNRef RefId="1" /><LST><S>a;b</S><S>c</S></LST>'
           '</Obj><Obj N="FutureThing" RefId="6"><TN RefId="6"><T>X.Y</T></TN>'
           "<ToString>shown</ToString><Props><S N=\"Inner\">i</S></Props></Obj>"
           f'<Obj N="Recipients" RefId="1">{STR_LIST}<LST><S>a@x</S></LST></Obj>')
    ev = both(doc(xml))
    assert ev.extra == {"FutureProp": "x\ty", "FutureFlag": "True",
                        "FutureList": "'a;b';c", "FutureThing": "shown"}
    assert ev.origin == "ex01.contoso.com"  # from PSComputerName
    assert both(doc(xml), origin="EX02").origin == "EX02"


def test_message_latency_as_plain_strings_is_ignored():
    ev = both(doc('<S N="MessageLatency">00:00:00.7010000</S>'
                  '<S N="MessageLatencyType">EndToEnd</S>'))
    assert ev.extra == {}


def test_properties_in_ms_count_like_props():
    ev = both(doc("", ms='<MS><S N="Sender">a@x</S><S N="PSComputerName">h</S></MS>'))
    assert (ev.sender, ev.origin) == ("a@x", "h")


def test_no_note_properties_at_all():
    ev = both(doc('<S N="Sender">a@x</S>', ms=""))
    assert (ev.sender, ev.origin) == ("a@x", "")


def test_the_standard_note_properties_decode_the_computer_name():
    ms = MS.replace("ex01.contoso.com", "ex_x0030_1&amp;co")
    assert both(doc("", ms=ms)).origin == "ex01&co"
    assert both(doc("", ms=ms.replace("false", "true"))).origin == "ex01&co"


@pytest.mark.parametrize("props", [
    pytest.param('\n  <S N="Sender">a@x</S>\n', id="indented"),
    pytest.param('<S N="Sender">a@x</S><!-- a comment -->', id="comment"),
    pytest.param(event_data(kvp("A", '<S N="Value">x</S>', 10), "<S>[B, 2]</S>"),
                 id="objects-and-strings-in-one-list"),
    pytest.param(event_data(kvp("A", '<S N="Value">x</S>', 10)).replace("<LST>", "<LST> "),
                 id="text-in-a-list"),
])
def test_text_the_scanner_does_not_know_goes_to_the_walker(props):
    """The scanner's tokens cover every character; anything else is the walker's."""
    both(doc(props), scanned=False)


def test_a_pair_with_mismatched_tags_is_an_xml_error_not_a_value():
    text = doc(event_data(kvp("A", '<S N="Value">x</I32>', 10)))
    assert scan(text) is None
    with pytest.raises(ET.ParseError):
        convert_text(text)


# --------------------------------------------------------------------------- type names


@pytest.mark.parametrize("tn", [
    pytest.param(TN, id="plain"),
    pytest.param(f'<TN RefId="0"><T>Deserialized.{MTE}</T><T>Deserialized.System.Object</T></TN>',
                 id="Deserialized"),
    pytest.param(f'<TN RefId="0"><T>Selected.X</T><T>{MTE}</T></TN>', id="second-name"),
])
def test_both_type_name_forms_are_recognised(tn):
    assert both(doc('<S N="Sender">a@x</S>', tn=tn)).sender == "a@x"


def test_select_object_output_is_recognised_by_the_walker():
    tn = (f'<TN RefId="0"><T>Selected.{MTE}</T><T>System.Management.Automation.PSCustomObject'
          "</T><T>System.Object</T></TN>")
    ev = both(doc('<S N="Sender">a@x</S>', tn=tn), scanned=False)
    assert (ev.sender, ev.event_id) == ("a@x", "")


def test_doubled_deserialized_prefix_goes_to_the_walker():
    tn = f'<TN RefId="0"><T>Deserialized.Deserialized.{MTE}</T></TN>'
    assert both(doc("", tn=tn), scanned=False).timestamp == STAMP_UTC


def test_tnref_to_an_earlier_object_in_the_same_stream():
    refs = Refs()
    first = ET.fromstring(doc('<S N="Sender">a@x</S>'))
    second = ET.fromstring(doc('<S N="Sender">b@y</S>', tn='<TNRef RefId="0" />'))
    assert convert_event(first, refs=refs).sender == "a@x"  # type: ignore[union-attr]
    assert convert_event(second, refs=refs).sender == "b@y"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="no earlier <TN>"):
        convert_event(second)  # a fresh stream knows no RefId 0


@pytest.mark.parametrize("text", [
    (DATA / "transport_service.xml").read_text(),
    '<Obj RefId="0"><TN RefId="0"><T>System.String</T></TN><ToString>x</ToString></Obj>',
    f'<Obj RefId="0"><ToString>{MTE}</ToString><Props>{STAMP}</Props></Obj>',
    f'<Obj RefId="0"><Props>{STAMP}</Props>{TN}</Obj>',
    "<S>just a string</S>",
])
def test_other_objects_are_not_recognised(text):
    assert walk(text) is None
    assert scan(text) is None
    assert convert_text(text) is None


def test_is_event_type():
    assert clixml.is_event_type([MTE])
    assert clixml.is_event_type(["Deserialized." + MTE, "System.Object"])
    assert not clixml.is_event_type(["X" + MTE])
    assert not clixml.is_event_type(["System.Object"])


# --------------------------------------------------------------------------- MessageInfo

@pytest.mark.parametrize(("culture", "event_id", "stamp", "info", "expected"), [
    ("en-US", "DELIVER", "-05:00", "11/27/2026 9:15:05 AM", "2026-11-27T14:15:05.000Z"),
    ("en-US", "SEND", "-05:00", "11/27/2026 2:15:05 PM", "2026-11-27T19:15:05.000Z"),
    ("en-US", "DEFER", "-05:00", "11/27/2026 12:05:00 AM", "2026-11-27T05:05:00.000Z"),
    ("en-US", "DELIVER", "-05:00", "11/27/2026 12:05:00 PM", "2026-11-27T17:05:00.000Z"),
    ("en-US", "deliver", "+05:30", "11/27/2026 9:15:05 AM", "2026-11-27T03:45:05.000Z"),
    ("en-GB", "DELIVER", "Z", "27/11/2026 09:15:05", "2026-11-27T09:15:05.000Z"),
    ("en-GB", "DEFER", "+00:00", "01/12/2026 23:59:59", "2026-12-01T23:59:59.000Z"),
    ("de-DE", "DELIVER", "+01:00", "27.11.2026 10:15:05", "2026-11-27T09:15:05.000Z"),
    ("de-DE", "SEND", "+01:00", "01.01.2027 00:30:00", "2026-12-31T23:30:00.000Z"),
    ("fr-FR", "DELIVER", "+01:00", "27/11/2026 10:15:05", "2026-11-27T09:15:05.000Z"),
    ("iso", "DELIVER", "+01:00", "2026-11-27 10:15:05", "2026-11-27T09:15:05.000Z"),
    ("yyyy/MM/dd H:mm:ss", "DELIVER", "+09:00", "2026/11/27 18:15:05",
     "2026-11-27T09:15:05.000Z"),
    # not rewritten: other events, other cultures' text, latency strings, ISO text
    ("en-US", "RECEIVE", "-05:00", "11/27/2026 9:15:05 AM", "11/27/2026 9:15:05 AM"),
    ("en-US", "DELIVER", "-05:00", "27.11.2026 10:15:05", "27.11.2026 10:15:05"),
    ("de-DE", "DELIVER", "+01:00", "11/27/2026 9:15:05 AM", "11/27/2026 9:15:05 AM"),
    ("en-US", "DELIVER", "-05:00", "2026-11-27T14:15:05.123Z", "2026-11-27T14:15:05.123Z"),
    ("en-US", "SEND", "-05:00", "2026-11-27T14:15:05.123Z;SRV=ex:TOTAL=1",
     "2026-11-27T14:15:05.123Z;SRV=ex:TOTAL=1"),
    ("en-US", "DELIVER", "-05:00", "13/45/2026 9:15:05 AM", "13/45/2026 9:15:05 AM"),
])
def test_culture_rewritten_message_info_goes_back_to_the_log_form(
        culture, event_id, stamp, info, expected):
    timestamp = f'<DT N="Timestamp">2026-11-27T09:15:07.0000000{stamp}</DT>'
    xml = f'<S N="EventId">{event_id}</S><S N="MessageInfo">{info}</S>'
    ev = both(doc(xml, stamp=timestamp), culture=culture)
    assert ev.message_info == expected


def test_message_info_across_a_dst_change_needs_the_server_zone():
    # 2026-03-08: New York moves from EST (-05:00) to EDT (-04:00) at 02:00 local.
    timestamp = '<DT N="Timestamp">2026-03-08T03:00:10.0000000-04:00</DT>'
    xml = '<S N="EventId">DELIVER</S><S N="MessageInfo">3/8/2026 1:59:00 AM</S>'
    text = doc(xml, stamp=timestamp)
    assert both(text, tz="America/New_York").message_info == "2026-03-08T06:59:00.000Z"
    # Without the zone the event's own offset is used: an hour off (documented).
    assert both(text).message_info == "2026-03-08T05:59:00.000Z"


def test_culture_parser_rejects_unknown_cultures(tmp_path):
    with pytest.raises(ValueError, match="unknown culture"):
        culture_parser("xx-XX")
    with pytest.raises(UsageError, match="unknown culture 'xx-XX': use one of de-CH, "):
        FastSerializer(culture="xx-XX")
    with pytest.raises(UsageError, match="Mars/Olympus"):
        FastSerializer(tz="Mars/Olympus")
    with pytest.raises(UsageError, match="unknown culture"):
        next(read_clixml(tmp_path / "any.clixml", RunReport(), culture="xx-XX"))
    assert culture_parser("en-US")("11/27/2026 9:15:05\u202fAM") == datetime(2026, 11, 27, 9, 15, 5)


@pytest.mark.parametrize(("text", "expected"), [
    ("12", 12), ("-3", -3), ("0", 0), ("012", "012"), ("1.5", 1.5), ("-0.25", -0.25),
    ("1E-05", 1e-05), ("2026-11-27T14:15:07.123Z", datetime(2026, 11, 27, 14, 15, 7, 123000,
                                                             tzinfo=UTC)),
    ("11/27/2026 2:15:07 PM", datetime(2026, 11, 27, 14, 15, 7, tzinfo=UTC)),
    ("Normal", "Normal"), ("", ""), ("1b2c3d4e-0000-0000-0000-000000000007",
                                     "1b2c3d4e-0000-0000-0000-000000000007"),
    ("99999999999999999999", "99999999999999999999"),
])
def test_guess_typed(text, expected):
    value = guess_typed(text)
    assert value == expected
    assert type(value) is type(expected)


# --------------------------------------------------------------------------- = offline


def offline_receive() -> TrackingEvent:
    """What the log-file reader produces for the same event's MSGTRK line."""
    return TrackingEvent(
        timestamp=datetime(2026, 11, 27, 14, 15, 7, 123456, tzinfo=UTC),
        client_ip="203.0.113.25", client_hostname="mail.fabrikam.com", server_ip="10.0.0.16",
        server_hostname="EX01", source_context="08DC1F3A2B4C5D6E;2026-11-27T14:15:06.998Z;0",
        connector_id="EX01\\Default Frontend EX01", source="SMTP", event_id="RECEIVE",
        internal_message_id="25769803777", message_id="<CAF1x_x0041_@mail.fabrikam.com>",
        network_message_id="3f2a6c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b",
        recipients=("alice@contoso.com", "bob@contoso.com"), recipient_status=("", ""),
        total_bytes=48211, recipient_count=2,
        message_subject="Q4 figures \u2013 R&D \U0001F600\r\nsecond line",
        sender="carol@fabrikam.com", return_path="bounces@fabrikam.com",
        directionality="Incoming", original_client_ip="203.0.113.25", message_info="00A: ",
        event_data=decode_custom_data(
            "S:FirstForestHop=EX01.contoso.com;I32:MsgRecipCount=2;Dbl:E2ELatency=0.701;"
            "Dt:ReceiveTime=2026-11-27T14:15:07.123Z;S:IsProbe=False"),
        transport_traffic_type="Email", schema_version="15.02.1258.012")


def offline_deliver() -> TrackingEvent:
    return TrackingEvent(
        timestamp=datetime(2026, 11, 27, 14, 15, 9, 500000, tzinfo=UTC),
        client_hostname="EX02", server_hostname="EX02",
        source_context="MDB:1b2c3d4e-0000-0000-0000-000000000007, Mailbox:9f8e7d6c-0000-0000-"
                       "0000-000000000001, Event:1288, MessageClass:IPM.Note, CreationTime:"
                       "2026-11-27T14:15:08.120Z, ClientType:MOMT",
        source="STOREDRIVER", event_id="DELIVER", internal_message_id="25769803777",
        message_id="<CAF1x@mail.fabrikam.com>",
        network_message_id="3f2a6c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b",
        recipients=("alice@contoso.com",), recipient_status=("",), total_bytes=48211,
        recipient_count=1, message_subject="Q4 figures", sender="carol@fabrikam.com",
        return_path="bounces@fabrikam.com", directionality="Incoming",
        # the log has .fff; the cmdlet's culture text has whole seconds only
        message_info="2026-11-27T14:15:06.000Z",
        event_data=decode_custom_data(
            "S:MailboxDatabaseGuid=1b2c3d4e-0000-0000-0000-000000000007;"
            "S:DeliveryPriority=Normal;I32:MsgRecipCount=1;Dbl:E2ELatency=3.5;"
            "Dt:DeliveryTime=2026-11-27T14:15:09.500Z"),
        transport_traffic_type="Email", schema_version="15.02.1258.012")


@pytest.mark.parametrize(("name", "expected", "origin"), [
    ("receive_smtp.xml", offline_receive(), "ex01.contoso.com"),
    ("deliver_deserialized.xml", offline_deliver(), "ex02.contoso.com"),
])
def test_sample_equals_the_offline_event(name, expected, origin):
    text = (DATA / name).read_text()
    ev = both(text)
    assert ev == expected
    assert ev.origin == origin
    assert ev.info == expected.info  # the decoded views agree too
    assert ev.message_latency_type == expected.message_latency_type


def test_the_event_is_a_normal_frozen_trackingevent():
    ev = both((DATA / "receive_smtp.xml").read_text())
    assert not hasattr(TrackingEvent, "__post_init__")  # the fast build relies on this
    assert set(vars(ev)) == {f.name for f in dataclasses.fields(TrackingEvent)}
    rebuilt = TrackingEvent(**{f.name: getattr(ev, f.name)
                               for f in dataclasses.fields(TrackingEvent)})
    assert rebuilt == ev and repr(rebuilt) == repr(ev)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.sender = "x"  # type: ignore[misc]
    other = both((DATA / "receive_smtp.xml").read_text())
    assert other.event_data is not ev.event_data and other.extra is not ev.extra


# --------------------------------------------------------------------------- pypsrp hook


def psrp_message(text: str, message_type: int = 0x00041004) -> bytes:
    """A PSRP message as Fragmenter.defragment hands it to Message.unpack."""
    ids = uuid.UUID(int=1).bytes_le + uuid.UUID(int=2).bytes_le
    return struct.pack("<II", 1, message_type) + ids + b"\xef\xbb\xbf" + text.encode()


def test_fast_serializer_converts_events_through_message_unpack():
    fast = FastSerializer(origin="EX01")
    message = Message.unpack(psrp_message((DATA / "receive_smtp.xml").read_text()), fast)
    ev = message.data.data
    assert isinstance(ev, TrackingEvent)
    assert ev == offline_receive()
    assert ev.origin == "EX01"
    assert fast.obj == {} and fast.tn == {}


def test_fast_serializer_leaves_other_objects_to_pypsrp():
    fast, generic = FastSerializer(), Serializer()
    text = (DATA / "transport_service.xml").read_text()
    got = Message.unpack(psrp_message(text), fast).data.data
    want = Message.unpack(psrp_message(text), generic).data.data
    assert isinstance(got, GenericComplexObject)
    assert got.adapted_properties == want.adapted_properties
    assert got.extended_properties == want.extended_properties
    assert got.types == want.types
    assert fast.deserialize("<S>text_x000A_</S>") == "text\n"
    assert fast.deserialize("<I32>5</I32>") == 5
    assert fast.deserialize("not xml") == "not xml"


def test_fast_serializer_handles_non_output_messages():
    state = ('<Obj RefId="0"><MS><I32 N="PipelineState">4</I32></MS></Obj>')
    message = Message.unpack(psrp_message(state, 0x00041006), FastSerializer())
    assert message.data.state == 4


def test_fast_serializer_falls_back_for_a_broken_event(caplog):
    fast = FastSerializer()
    text = doc("", stamp='<DT N="Timestamp">not a date</DT>')
    got = fast.deserialize(text)
    assert isinstance(got, GenericComplexObject)
    assert got.adapted_properties["Timestamp"] == "not a date"
    assert fast.failures == 1
    assert "not converted" in caplog.text


def test_fast_serializer_takes_elements_and_defers_with_metadata():
    fast = FastSerializer()
    element = ET.fromstring((DATA / "receive_smtp.xml").read_text())
    assert fast.deserialize(element) == offline_receive()
    generic = fast.deserialize((DATA / "receive_smtp.xml").read_text(),
                               ObjectMeta("ObjDynamic", object=GenericComplexObject))
    assert isinstance(generic, GenericComplexObject)


def fragments(object_id: int, blob: bytes, size: int) -> list[bytes]:
    """``blob`` cut into PSRP fragments of at most ``size`` data bytes each."""
    parts = [blob[i:i + size] for i in range(0, len(blob), size)] or [b""]
    return [struct.pack(">QQBI", object_id, n, (n == 0) | (n == len(parts) - 1) << 1, len(part))
            + part for n, part in enumerate(parts)]


def comparable_message(message: object) -> tuple[int, object]:
    data = message.data  # type: ignore[attr-defined]
    value = getattr(data, "data", data)
    if isinstance(value, GenericComplexObject):
        value = (value.types, value.adapted_properties, value.extended_properties)
    elif not isinstance(value, TrackingEvent):  # a state message: its own fields
        value = (type(value), getattr(value, "state", None), getattr(value, "_xml", None))
    return message.message_type, value  # type: ignore[attr-defined]


@pytest.mark.parametrize("size", [10_000, 700, 37])
def test_fast_fragmenter_matches_pypsrps_across_receives(size):
    from pypsrp.powershell import Fragmenter

    event = (DATA / "receive_smtp.xml").read_text()
    service = (DATA / "transport_service.xml").read_text()
    state = '<Obj RefId="0"><MS><I32 N="PipelineState">4</I32></MS></Obj>'
    blobs = [psrp_message(event), psrp_message(service), psrp_message(event),
             psrp_message(state, 0x00041006)]
    # Objects 1 and 2 interleave, as two streams of one pipeline can.
    first, second = fragments(1, blobs[0], size), fragments(2, blobs[1], size)
    stream = [f for pair in itertools.zip_longest(first, second) for f in pair if f]
    stream += fragments(3, blobs[2], size) + fragments(4, blobs[3], size)
    wire = b"".join(stream)
    cut = len(wire) // 2  # two Receives; fragments do not span them, objects may
    while not any(wire[:cut] == b"".join(stream[:n]) for n in range(len(stream) + 1)):
        cut += 1
    fast = FastFragmenter(32_768, FastSerializer(origin="EX01"))
    slow = Fragmenter(32_768, FastSerializer(origin="EX01"))
    got = fast.defragment(wire[:cut]) + fast.defragment(wire[cut:])
    want = slow.defragment(wire[:cut]) + slow.defragment(wire[cut:])
    assert [comparable_message(m) for m in got] == [comparable_message(m) for m in want]
    values = [getattr(m.data, "data", None) for m in got]
    events = [v for v in values if isinstance(v, TrackingEvent)]
    assert len(got) == 4 and events == [offline_receive()] * 2
    assert sum(isinstance(v, GenericComplexObject) for v in values) == 1
    assert fast.incoming_buffer == {}


def test_fast_fragmenter_refuses_a_fragment_out_of_order():
    from pypsrp.exceptions import FragmentError

    parts = fragments(9, psrp_message((DATA / "receive_smtp.xml").read_text()), 500)
    fast = FastFragmenter(32_768, FastSerializer())
    with pytest.raises(FragmentError, match="Expected Fragment Id: 1"):
        fast.defragment(parts[0] + parts[2])


def test_fast_fragmenter_sends_a_broken_event_the_generic_way_once(caplog):
    fast = FastFragmenter(32_768, FastSerializer())
    text = doc("", stamp='<DT N="Timestamp">not a date</DT>')
    [message] = fast.defragment(b"".join(fragments(1, psrp_message(text), 1000)))
    assert isinstance(message.data.data, GenericComplexObject)
    assert fast.serializer.failures == 1
    assert caplog.text.count("not converted") == 1


def test_install_fast_serializer_swaps_both_references():
    wsman = WSMan("localhost", ssl=False, auth="basic", encryption="never",
                  username="u", password="p")
    pool = RunspacePool(wsman, configuration_name="Microsoft.Exchange")
    pool._serializer.cipher = cipher = object()
    fast = install_fast_serializer(pool, origin="EX01", culture="de-DE", tz="Europe/Berlin")
    assert pool._serializer is fast and pool._fragmenter.serializer is fast
    assert isinstance(pool._fragmenter, FastFragmenter)
    assert pool._fragmenter.max_size == wsman.max_payload_size - 21
    assert fast.cipher is cipher
    assert (fast.origin, fast.culture, fast.tz) == ("EX01", "de-DE", "Europe/Berlin")


def test_install_fast_serializer_refuses_other_pypsrp_shapes():
    class NotAPool:
        pass

    with pytest.raises(MsgtrackError, match="pypsrp==0.9.1") as err:
        install_fast_serializer(NotAPool())
    assert "pypsrp" in str(err.value)
    assert err.value.hint and "0.9.1" in err.value.hint


# --------------------------------------------------------------------------- files


def expected_file_events() -> list[TrackingEvent]:
    receive = dataclasses.replace(
        offline_receive(), timestamp=datetime(2026, 11, 27, 9, 15, 7, 123456, tzinfo=UTC),
        source_context="08DC1F3A2B4C5D6E;2026-11-27T09:15:06.998Z;0",
        message_id="<CAF1x@mail.fabrikam.com>", recipient_status=("To", "Cc"),
        message_subject="Q4 figures \u2013 R&D", message_info="08A: ",
        event_data={"FirstForestHop": "EX01.contoso.com", "MsgRecipCount": 2})
    deliver = dataclasses.replace(
        offline_deliver(), timestamp=datetime(2026, 11, 27, 9, 15, 9, 500000, tzinfo=UTC),
        source_context=offline_deliver().source_context.replace("14:15:08", "09:15:08"),
        recipients=("alice@contoso.com", "bob@contoso.com"), recipient_status=(),
        recipient_count=2, message_subject="Q4 figures \u2013 R&D",
        message_info="2026-11-27T09:15:06.000Z", event_data={})
    return [receive, deliver, receive]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16"])
def test_read_clixml_streams_an_export_file(tmp_path, encoding):
    path = tmp_path / f"export-{encoding}.clixml"
    path.write_bytes((DATA / "export_ps51.clixml").read_text().encode(encoding))
    if encoding == "utf-16":
        assert path.read_bytes()[:2] == b"\xff\xfe"  # what Windows PowerShell 5.1 writes
    report = RunReport()
    events = list(read_clixml(path, report))
    assert events == expected_file_events()
    lines = (DATA / "export_ps51.clixml").read_text().splitlines()

    def line_of(text: str) -> int:
        return next(n for n, line in enumerate(lines, 1) if text in line)

    first, second = line_of('<Obj RefId="0">'), line_of('<Obj RefId="6">')
    third = line_of('<Obj RefId="7">')
    assert [e.origin for e in events] == [f"{path}:{first}", f"{path}:{second}",
                                          f"{path}:{first}"]  # the <Ref> repeats event 1
    assert report.counts["events"] == 3
    assert [(p.kind, p.where) for p in report.problems] == [
        ("bad-line", f"{path}:{third}")]
    assert "not a MessageTrackingEvent (Deserialized.Microsoft.Exchange.Data.Directory." \
           "SystemConfiguration.TransportServer); skipped" in report.problems[0].message


@pytest.mark.parametrize("name", ["billion_laughs.clixml", "external_entity.clixml"])
def test_read_clixml_refuses_dtds_and_entities(name):
    report = RunReport()
    with pytest.raises(InputError, match=r"refused: the file declares a DTD/entities "
                                         r"\(possible entity-expansion attack\)") as err:
        list(read_clixml(DATA / name, report))
    assert err.value.path == str(DATA / name)
    assert "Export-Clixml never writes a DTD" in (err.value.hint or "")
    assert report.counts["events"] == 0


def test_read_clixml_a_truncated_file_keeps_the_earlier_events(tmp_path):
    text = (DATA / "export_ps51.clixml").read_text()
    cut = text.index("<Obj RefId=\"6\">") + 400
    path = tmp_path / "cut.clixml"
    path.write_text(text[:cut])
    report = RunReport()
    events = list(read_clixml(path, report))
    assert events == expected_file_events()[:1]
    assert not report.complete
    [problem] = report.problems
    assert problem.kind == "bad-file" and problem.where == str(path)
    line = text[:cut].count("\n") + 1
    assert problem.message.startswith(f"truncated XML at line {line}: ")
    assert "(after 1 objects)" in problem.message


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty file"),
    (b"<Events><Obj/></Events>", "not an Export-Clixml file (root element <Events>)"),
    (b"<Objs><Obj RefId='0'></Objs>", "malformed XML at line 1"),
])
def test_read_clixml_files_that_are_not_exports(tmp_path, content, message):
    path = tmp_path / "x.clixml"
    path.write_bytes(content)
    report = RunReport()
    assert list(read_clixml(path, report)) == []
    assert report.problems[0].kind == "bad-file"
    assert message in report.problems[0].message


def test_read_clixml_reports_bad_events_and_dangling_refs(tmp_path):
    path = tmp_path / "x.clixml"
    other_tn = TN.replace('RefId="0"', 'RefId="1"')
    path.write_text(f'<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/'
                    f'2004/04">\n{doc("", stamp="")}\n<Ref RefId="99" />\n<S>text</S>\n'
                    f'{doc("", tn=other_tn)}\n</Objs>')
    report = RunReport()
    events = list(read_clixml(path, report))
    assert [(e.timestamp, e.origin) for e in events] == [(STAMP_UTC, f"{path}:5")]
    assert [(p.where, p.message) for p in report.problems] == [
        (f"{path}:2", "MessageTrackingEvent not converted: MessageTrackingEvent without a "
                      "Timestamp; skipped"),
        (f"{path}:3", "reference to an earlier object that is not a recent "
                      "MessageTrackingEvent; skipped"),
        (f"{path}:4", "not a MessageTrackingEvent (<S>); skipped"),
    ]


def test_read_clixml_a_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        list(read_clixml(tmp_path / "nope.clixml", RunReport()))


def test_read_clixml_memory_stays_flat(tmp_path):
    path = tmp_path / "big.clixml"
    ns = 'xmlns="http://schemas.microsoft.com/powershell/2004/04"'
    body = (f'<Props>{STAMP}<S N="Sender">a@x</S><Obj N="Recipients" RefId="{{r}}">'
            '<TNRef RefId="1" /><LST><S>b@y</S></LST></Obj></Props></Obj>\n')
    with path.open("w") as out:
        out.write(f'<Objs Version="1.1.0.1" {ns}>\n<Obj RefId="0">{TN}<Props>{STAMP}'
                  f'<Obj N="Recipients" RefId="1">{STR_LIST}<LST><S>b@y</S></LST></Obj>'
                  "</Props></Obj>\n")
        for i in range(1, 50_000):
            out.write(f'<Obj RefId="{2 * i}"><TNRef RefId="0" />' + body.format(r=2 * i + 1))
        out.write("</Objs>\n")
    report = RunReport()
    gc.collect()
    tracemalloc.start()
    try:
        count = sum(1 for _ in read_clixml(path, report))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 50_000 and report.complete
    size = path.stat().st_size
    assert size > 10_000_000
    # ~3 MB measured: parser buffers plus the capped RefId table, whatever the file size.
    assert peak < 8_000_000, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.0f} MB file"


# --------------------------------------------------------------------------- properties

XML_CHARS = st.characters(blacklist_categories=("Cs",),
                          blacklist_characters="\x00\ufffe\uffff")


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",))))
def test_escapes_round_trip(text):
    encoded = encode_string(text)
    assert decode_string(encoded) == text
    assert all(" " <= ch < "\x7f" or "\xa0" <= ch < "\ud800" or "\ue000" <= ch < "\ufffe"
               for ch in encoded)


@given(st.text(alphabet=XML_CHARS.filter(lambda c: c >= " " or c in "\t\n")))
def test_random_text_in_s_never_crashes_the_converter(text):
    xml = doc(f'<S N="MessageSubject">{escape(text)}</S><S N="NewProp">{escape(text)}</S>')
    ev = convert_text(xml)
    assert ev is not None
    assert ev == walk(xml)
    assert ev.message_subject == decode_string(text)
    assert ev.extra == ({"NewProp": decode_string(text)})


def render(ev: TrackingEvent, offset: timedelta, *, kvp_objects: bool = True) -> str:
    """A test-side writer of PowerShell's wire form for one event."""
    def s(name: str, value: str) -> str:
        return f'<S N="{name}">{escape(encode_string(value))}</S>' if value else \
            f'<Nil N="{name}" />'

    def lst(name: str, values: tuple[str, ...], ref: int) -> str:
        if not values:
            return f'<Nil N="{name}" />'
        items = "".join(f"<S>{escape(encode_string(v))}</S>" for v in values)
        return f'<Obj N="{name}" RefId="{ref}">{STR_LIST.replace("1", str(ref))}<LST>{items}' \
               "</LST></Obj>"

    def value(v: object) -> str:
        if isinstance(v, int):
            return f'<I64 N="Value">{v}</I64>'
        if isinstance(v, float):
            return f'<Db N="Value">{v!r}</Db>'
        if isinstance(v, datetime):
            return f'<DT N="Value">{v.isoformat().replace("+00:00", "Z")}</DT>'
        return f'<S N="Value">{escape(encode_string(str(v)))}</S>'

    local = ev.timestamp.astimezone(timezone(offset))
    stamp = local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond:06d}0" + \
        local.strftime("%z")[:3] + ":" + local.strftime("%z")[3:]
    parts = [f'<DT N="Timestamp">{stamp}</DT>']
    for name, attr in (("ClientIp", "client_ip"), ("SourceContext", "source_context"),
                       ("EventId", "event_id"), ("MessageSubject", "message_subject"),
                       ("Sender", "sender"), ("MessageInfo", "message_info")):
        parts.append(s(name, getattr(ev, attr)))
    parts.append(lst("Recipients", ev.recipients, 1))
    parts.append(lst("RecipientStatus", ev.recipient_status, 2))
    for name, number in (("TotalBytes", ev.total_bytes), ("RecipientCount", ev.recipient_count)):
        parts.append(f'<Nil N="{name}" />' if number is None else f'<I32 N="{name}">{number}</I32>')
    if ev.event_data:
        items = []
        for n, (k, v) in enumerate(ev.event_data.items()):
            if kvp_objects:
                items.append(kvp(encode_string(k), value(v), 10 + n))
            else:
                items.append(f"<S>{escape(encode_string(f'[{k}, {v}]'))}</S>")
        parts.append(event_data(*items))
    else:
        parts.append('<Nil N="EventData" />')
    return doc("".join(parts), stamp="")


TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
EVENTS = st.builds(
    TrackingEvent,
    timestamp=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1),
                           timezones=st.just(UTC)),
    client_ip=TEXT, source_context=TEXT, message_subject=TEXT, sender=TEXT,
    event_id=st.sampled_from(["RECEIVE", "SEND", "DELIVER", "FAIL", "DSN"]),
    message_info=TEXT.filter(lambda t: not t[:1].isdigit()),
    recipients=st.lists(TEXT, max_size=3).map(tuple),
    recipient_status=st.lists(TEXT, max_size=3).map(tuple),
    total_bytes=st.none() | st.integers(-(2**31), 2**31 - 1),
    recipient_count=st.none() | st.integers(0, 1000),
    event_data=st.dictionaries(
        TEXT.filter(bool),
        TEXT | st.integers(-(2**63), 2**63 - 1)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.datetimes(min_value=datetime(2000, 1, 1), timezones=st.just(UTC)),
        max_size=4),
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(EVENTS, st.integers(-14 * 60, 14 * 60))
def test_random_events_round_trip_through_both_converters(ev, minutes):
    text = render(ev, timedelta(minutes=minutes))
    assert both(text) == ev


@settings(max_examples=50)
@given(st.dictionaries(st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,12}", fullmatch=True),
                       st.from_regex(r"[A-Za-z][A-Za-z ]{0,10}", fullmatch=True)
                       | st.integers(-(2**31), 2**31 - 1), max_size=4))
def test_event_data_as_strings_round_trips_for_plain_values(data):
    ev = TrackingEvent(timestamp=STAMP_UTC, event_data=data)
    assert both(render(ev, timedelta(hours=-5), kvp_objects=False)) == ev


_MUTATED = render(TrackingEvent(
    timestamp=STAMP_UTC, event_id="DELIVER", message_subject="R&D <x> _x",
    recipients=("a@x", "b@y"), total_bytes=5, message_info="04I: ",
    event_data={"A": 1, "B": "x y", "C": 0.5}), timedelta(hours=-5))


@settings(max_examples=400, deadline=None)
@given(st.integers(0, len(_MUTATED)), st.integers(0, 12), st.sampled_from([
    "", "<", ">", "/", '"', " ", "x", "_x0041_", "<S>", "</S>", "<Nil />", '<S N="Key">',
    "</Obj>", "<Obj>", "<LST>", "</LST>", 'N="', "\n", "\t", "'", "=", "Value", "<!--",
    "-->", "<?x?>", '<TNRef RefId="5" />', "<ToString>a</ToString>",
]))
def test_the_scanner_never_reads_broken_text_differently(at, cut, piece):
    """Whatever the scanner takes, the element walker takes too, and reads the same.
    (Where the scanner declines, the walker alone decides: nothing to compare.) Cuts also
    break the references in the subject. What the scanner does not check: references,
    "]]>" and control characters inside text it skips (type names, display strings,
    derived properties), which PowerShell never writes and no field reads."""
    text = _MUTATED[:at] + piece + _MUTATED[at + cut:]
    assume("]]>" not in text)  # a cut can make one out of a type name's "]]"
    fast = scan(text)
    if fast is not None:
        walked = walk(text)  # ParseError or ValueError here: the scanner took broken text
        assert walked == fast
        assert walked.origin == fast.origin


# --------------------------------------------------------------------------- psrpcore


class _NoCipher(psrpcore.types.PSCryptoProvider):
    def decrypt(self, value: bytes) -> bytes:
        raise NotImplementedError

    def encrypt(self, value: bytes) -> bytes:
        raise NotImplementedError


@psrpcore.types.PSType(
    type_names=[MTE, "System.Object"], rehydrate=False,
    adapted_properties=[psrpcore.types.PSNoteProperty(n) for n in (
        "Timestamp", "EventId", "InternalMessageId", "Recipients", "TotalBytes",
        "RelatedRecipientAddress", "MessageSubject", "MessageInfo", "EventData")])
class _PsrpcoreEvent(psrpcore.types.PSObject):
    pass


def test_psrpcore_serialized_events_convert():
    """psrpcore (the peer's reference serializer) writes <Obj RefId=… N=…>, ArrayLists,
    PSDateTime with 6 digits and typed EventData objects; the scanner takes that too."""
    pst = psrpcore.types
    local = timezone(timedelta(hours=1))
    obj = _PsrpcoreEvent(
        Timestamp=pst.PSDateTime(2026, 11, 27, 10, 15, 7, 123456, tzinfo=local),
        EventId="DELIVER", InternalMessageId=pst.PSInt64(25769803777),
        Recipients=pst.PSList(["a@x", "b_x@y"]), TotalBytes=pst.PSInt(48211),
        RelatedRecipientAddress=None, MessageSubject="caf\u00e9 \U0001F600\r\n",
        MessageInfo="27/11/2026 10:15:06", EventData=None)
    pst.add_note_property(obj, "PSComputerName", "ex01.contoso.com")
    text = ET.tostring(psrpcore.types.serialize(obj, _NoCipher()), encoding="unicode")
    assert '<Obj RefId="1" N="Recipients">' in text
    ev = both(text, culture="en-GB")
    assert ev == TrackingEvent(
        timestamp=datetime(2026, 11, 27, 9, 15, 7, 123456, tzinfo=UTC), event_id="DELIVER",
        internal_message_id="25769803777", recipients=("a@x", "b_x@y"), total_bytes=48211,
        message_subject="caf\u00e9 \U0001F600\r\n", message_info="2026-11-27T09:15:06.000Z")
    assert ev.origin == "ex01.contoso.com"


# --------------------------------------------------------------------------- the peer


@pytest.mark.parametrize("options", [
    pytest.param({"time_zone": "America/New_York", "culture": "en-US"}, id="en-US"),
    pytest.param({"time_zone": "Europe/Berlin", "culture": "de-DE",
                  "deserialized_type_names": True}, id="de-DE-deserialized"),
    pytest.param({"time_zone": "Europe/London", "culture": "en-GB"}, id="en-GB"),
])
def test_events_from_the_peer_equal_the_source_events(exchange_peer_factory, options):
    from tests.exchange_peer.fixtures import open_pool  # after pytest_plugins registered it

    zone, culture = options.pop("time_zone"), options.pop("culture")
    source = make_events(60, "EX01")
    peer = exchange_peer_factory(auth="basic", **options, servers=[
        ServerSpec("EX01", events=source, time_zone=zone, culture=culture)])
    with open_pool(peer) as pool:
        fast = install_fast_serializer(pool, culture=culture, tz=zone)
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-MessageTrackingLog").add_parameters(
            {"Server": "EX01", "ResultSize": "Unlimited"})
        out = ps.invoke()
        services = PowerShell(pool).add_cmdlet("Get-TransportService").invoke()
    assert fast.failures == 0
    assert all(isinstance(ev, TrackingEvent) for ev in out)
    # LogId is a file-only column: the cmdlet has no such property.
    assert out == [dataclasses.replace(ev, log_id="") for ev in source]
    assert {ev.origin for ev in out} == {"ex01.contoso.com"}
    assert [s.adapted_properties["Name"] for s in services] == ["EX01"]


@pytest.mark.parametrize("text", [
    "R&amp;D &lt;draft&gt;", "&amp;lt;", "&amp;amp;", "&#65;&amp;", "&quot;&apos;x",
    "&#x41;&lt;", "no entity", "&lt;&lt;&amp;&gt;", "&#x1F600;&#9;",
])
def test_scanner_unescape_matches_the_entity_regex(text):
    from msgtrack.sources import clixml

    assert clixml._unescape(text) == clixml._ENTITY.sub(clixml._entity, text)
    assert clixml._unescape(text) == ET.fromstring(f"<S>{text}</S>").text


@pytest.mark.parametrize("text", [
    "a&b", "&lt&gt;", "&amp", "&&amp;", "&foo;", "&#0;", "&#xD800;", "&#5_0;", "&#x;", "&#;",
])
def test_scanner_leaves_what_xml_rejects_to_the_walker(text):
    from msgtrack.sources import clixml

    with pytest.raises(clixml._Unsure):
        clixml._unescape(text)
    with pytest.raises(ET.ParseError):
        ET.fromstring(f"<S>{text}</S>")
    assert scan(doc(f'<S N="MessageSubject">{text}</S>')) is None


@pytest.mark.parametrize("xml", [
    '<Nil N="TotalBytes" />', '<S N="TotalBytes"></S>', '<I32 N="TotalBytes">&#49;2</I32>',
    '<I32 N="TotalBytes">12</I32>', '<Nil N="EventData" />', '<Nil N="Recipients" />',
])
def test_scanner_inline_fields_agree_with_the_walker(xml):
    both(doc(xml))
