"""Tests for msgtrack.decode: every MessageInfo form, lists, custom-data, source-context.

Grammar: shared/research/tracking-facts.md §1, §2, §3.4, §3.5, §6. Value tables live in
tests/data/decode/*.jsonl (one case per line) and run through ``parametrize``.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msgtrack import decode
from msgtrack.decode import (
    ANNOTATION_COLUMNS,
    AUTH_CATEGORIES,
    AUTH_METHODS,
    InfoKind,
    LatencyBlock,
    annotation_columns,
    decode_custom_data,
    decode_message_info,
    decode_smtp_context,
    decode_source_context,
    encode_custom_data,
    format_log_timestamp,
    join_list,
    parse_log_timestamp,
    split_list,
)

UTC = timezone.utc
DATA = Path(__file__).parent / "data" / "decode"


def _table(name: str) -> list:
    rows = [json.loads(line) for line in (DATA / name).read_text("utf-8").splitlines() if line]
    return [pytest.param(row, id=row["id"]) for row in rows]


def _info(value: str) -> decode.MessageInfo:
    return decode_message_info(value)


# --------------------------------------------------------------------------- auth codes

#: tracking-facts §2, written out here (not derived from AUTH_METHODS) so a typo there fails.
AUTH_TABLE = [
    ("00", 0, "None"),
    ("01", 1, "SenderId"),
    ("02", 2, "MutualTLS"),
    ("03", 3, "MapiSubmit"),
    ("04", 4, "SecureMapiSubmit"),
    ("05", 5, "SecureInternalSubmit"),
    ("06", 6, "TLSAuthLogin"),
    ("07", 7, "Login"),
    ("08", 8, "Pickup"),
    ("0a", 10, "NTLM"),
    ("0b", 11, "GSSAPI"),
    ("0c", 12, "MUTUALGSSAPI"),
    ("0d", 13, "Custom"),
    ("10", 16, "SecureExternalSubmit"),
    ("11", 17, "DirectTrustTLS"),
    ("12", 18, "Replay"),
]


def test_auth_methods_table_is_exactly_the_enum():
    assert AUTH_METHODS == {value: name for _, value, name in AUTH_TABLE}


@pytest.mark.parametrize("hex_lower, value, method", AUTH_TABLE, ids=[r[0] for r in AUTH_TABLE])
@pytest.mark.parametrize("case", ["lower", "upper"])
def test_every_auth_code(hex_lower, value, method, case):
    hex_text = hex_lower if case == "lower" else hex_lower.upper()
    info = _info(f"{hex_text}I: ")
    assert info.kind is InfoKind.AUTH
    assert info.auth.code == hex_lower.upper()
    assert info.auth.value == value
    assert info.auth.method == method
    assert info.auth.category == "Internal"
    assert info.auth.domain == ""
    assert info.auth.trailing == ()


@pytest.mark.parametrize("hex_text", ["09", "0e", "0E", "0f", "13", "14", "7f", "ff", "FF"])
def test_unknown_auth_code_is_named_not_raised(hex_text):
    info = _info(f"{hex_text}A: ")
    assert info.kind is InfoKind.AUTH
    assert info.auth.value == int(hex_text, 16)
    assert info.auth.code == hex_text.upper()
    assert info.auth.method == f"Unknown(0x{hex_text.upper()})"
    assert info.auth.category == "Anonymous"


def test_auth_categories_table():
    assert AUTH_CATEGORIES == {
        "A": "Anonymous",
        "I": "Internal",
        "E": "External",
        "P": "Partner",
        "O": "Other",
    }


@pytest.mark.parametrize(
    "letter, category",
    [
        ("A", "Anonymous"),
        ("I", "Internal"),
        ("E", "External"),
        ("P", "Partner"),
        ("O", "Other"),
        # The existing-AuthAs rule copies the first character verbatim (§2): a lower-case
        # letter names the same category, and the letter itself is kept as written.
        ("a", "Anonymous"),
        ("i", "Internal"),
        ("e", "External"),
        ("p", "Partner"),
        ("o", "Other"),
        ("X", "Unknown(X)"),
        ("z", "Unknown(z)"),
    ],
)
def test_every_category_letter(letter, category):
    info = _info(f"0c{letter}: ")
    assert info.kind is InfoKind.AUTH
    assert info.auth.letter == letter
    assert info.auth.category == category
    assert info.auth.method == "MUTUALGSSAPI"


def test_cli_requirement_partner_domain():
    """`msgtrack decode '02P:fabrikam.com: '` names MutualTLS, Partner and fabrikam.com."""
    info = _info("02P:fabrikam.com: ")
    assert (info.auth.method, info.auth.category, info.auth.domain) == (
        "MutualTLS",
        "Partner",
        "fabrikam.com",
    )
    cols = annotation_columns(info, {})
    assert cols["AuthMethod"] == "MutualTLS"
    assert cols["AuthCategory"] == "Partner"
    assert cols["AuthDomain"] == "fabrikam.com"


@pytest.mark.parametrize(
    "value, domain, trailing",
    [
        ("02P:fabrikam.com: ", "fabrikam.com", ()),
        ("02P:fabrikam.com:", "fabrikam.com", ()),  # CSV tools strip the trailing space
        ("02P:fabrikam.com", "fabrikam.com", ()),
        ("02p:FABRIKAM.COM: ", "FABRIKAM.COM", ()),
        ("02P:fabrikam.com: NTS: ", "fabrikam.com", ("NTS",)),
        ("02A: ", "", ()),  # anonymous hop: no domain
        ("02P: NTS:", "", ("NTS",)),
        # Only MutualTLS fills the domain; anything else after the colon is a trailing part.
        ("04I:contoso.com: ", "", ("contoso.com",)),
        ("0cP:fabrikam.com: ", "", ("fabrikam.com",)),
    ],
)
def test_domain_only_for_mutual_tls(value, domain, trailing):
    auth = _info(value).auth
    assert auth.domain == domain
    assert auth.trailing == trailing


@pytest.mark.parametrize(
    "value, trailing",
    [
        ("00A: NTS:", ("NTS",)),
        ("00A: NTS: ", ("NTS",)),
        ("00A: NTS", ("NTS",)),
        ("00A: NTS: more:", ("NTS", "more")),
        ("00A:", ()),
        ("00A: ", ()),
        ("00A", ()),  # "11a"-style form from the 2016/2019 docs (§2)
    ],
)
def test_trailing_parts_kept(value, trailing):
    info = _info(value)
    assert info.kind is InfoKind.AUTH
    assert info.auth.method == "None"
    assert info.auth.category == "Anonymous"
    assert info.auth.trailing == trailing
    assert info.raw == value


@pytest.mark.parametrize("value", ["04I: ", "04I:", " 04I: ", "04I:\t", "04I"])
def test_missing_or_extra_whitespace(value):
    auth = _info(value).auth
    assert (auth.code, auth.method, auth.category) == ("04", "SecureMapiSubmit", "Internal")


@pytest.mark.parametrize(
    "value",
    ["0", "04", "4I:", "g4I:", "04-:", "04I-", "004I:", "0x4I:", "04 I:"],
)
def test_near_misses_are_not_auth(value):
    assert _info(value).kind is InfoKind.OTHER


# --------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2024-03-05T10:11:12.345Z", datetime(2024, 3, 5, 10, 11, 12, 345000, tzinfo=UTC)),
        ("2024-03-05T10:11:12.000Z", datetime(2024, 3, 5, 10, 11, 12, tzinfo=UTC)),
        ("2024-03-05T10:11:12Z", datetime(2024, 3, 5, 10, 11, 12, tzinfo=UTC)),
        ("2024-03-05T10:11:12.345z", datetime(2024, 3, 5, 10, 11, 12, 345000, tzinfo=UTC)),
        ("2024-03-05T11:11:12.345+01:00", datetime(2024, 3, 5, 10, 11, 12, 345000, tzinfo=UTC)),
    ],
)
def test_parse_log_timestamp(text, expected):
    value = parse_log_timestamp(text)
    assert value == expected
    assert value.tzinfo == UTC


@pytest.mark.parametrize(
    "text",
    ["", "2024-03-05T10:11:12.345", "2024-13-05T10:11:12.345Z", "yesterday", "2024-03-05T10:11:12+01:00Z"],
)
def test_parse_log_timestamp_rejects(text):
    with pytest.raises(ValueError):
        parse_log_timestamp(text)


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59.999-01:00"])
def test_out_of_range_offset_is_value_error_and_custom_data_keeps_text(text):
    # Regression: astimezone(UTC) raised OverflowError, which escaped decode_custom_data.
    with pytest.raises(ValueError):
        parse_log_timestamp(text)
    assert decode_custom_data(f"Dt:When={text}") == {"When": text}


def _outcome(parse, text):
    try:
        value = parse(text)
    except ValueError:
        return "ValueError"
    return value, value.utcoffset()


@settings(max_examples=500)
@given(st.lists(st.tuples(st.integers(0, 22), st.sampled_from("0123456789-:T.,+Z Wz")), max_size=4))
def test_fast_timestamp_path_agrees_with_the_general_one(edits):
    # parse_log_timestamp reads 24-character "...Z" texts with one fromisoformat call;
    # whatever such a text is, the result (or the ValueError) is the general path's.
    chars = list("2024-03-05T10:11:12.345")
    for i, char in edits:
        chars[i] = char
    text = "".join(chars) + "Z"
    assert _outcome(parse_log_timestamp, text) == _outcome(decode._parse_timestamp, text)


@settings(max_examples=1000)
@given(st.lists(st.tuples(st.integers(0, 23), st.sampled_from("0123456789-:T.,+Z Wz\u0663"
                                                               "\uff11")), max_size=4))
def test_the_log_form_check_is_the_regex_and_the_parser(edits):
    # _log_form_time checks separators and leaves the digits to the parser; it must
    # still answer what the regex and the parser answer together. And a text it reads
    # is the text format_log_timestamp writes, which lets the CSV sink copy it.
    chars = list("2024-03-05T10:11:12.345Z")
    for i, char in edits:
        chars[i] = char
    text = "".join(chars)
    if decode._LOG_TIMESTAMP_RE.match(text) is None:
        expected = False
    else:
        try:
            expected = parse_log_timestamp(text)
        except ValueError:
            expected = None
    assert decode._log_form_time(text) == expected
    if expected:
        assert format_log_timestamp(expected) == text


def test_format_log_timestamp():
    assert format_log_timestamp(datetime(2024, 3, 5, 10, 11, 12, 345678, tzinfo=UTC)) == (
        "2024-03-05T10:11:12.345Z"
    )
    offset = timezone(timedelta(hours=-5))
    assert format_log_timestamp(datetime(2024, 3, 5, 5, 11, 12, tzinfo=offset)) == (
        "2024-03-05T10:11:12.000Z"
    )


def test_format_log_timestamp_pads_small_years():
    # Regression: strftime("%Y") wrote "999-01-01…", which parse_log_timestamp rejects.
    value = datetime(999, 1, 1, tzinfo=UTC)
    assert format_log_timestamp(value) == "0999-01-01T00:00:00.000Z"
    assert parse_log_timestamp(format_log_timestamp(value)) == value


@pytest.mark.parametrize("event_id", ["DELIVER", "DUPLICATEDELIVER", "SEND", ""])
def test_timestamp_only_is_original_arrival(event_id):
    info = _info("2024-03-05T10:11:12.345Z")
    assert info.kind is InfoKind.TIMESTAMP
    assert info.timestamp == datetime(2024, 3, 5, 10, 11, 12, 345000, tzinfo=UTC)
    assert info.auth is None and info.latency is None
    cols = annotation_columns(info, {}, event_id=event_id)
    assert cols["OriginalArrivalTime"] == "2024-03-05T10:11:12.345Z"


def test_defer_retry_time_is_not_an_arrival_time():
    info = _info("2024-03-05T11:00:00.000Z")
    assert info.kind is InfoKind.TIMESTAMP
    assert info.timestamp == datetime(2024, 3, 5, 11, tzinfo=UTC)  # still readable
    cols = annotation_columns(info, {}, event_id="DEFER")
    assert cols["OriginalArrivalTime"] == ""
    assert cols["MessageInfoKind"] == "Timestamp"


def test_timestamp_with_seven_fraction_digits():
    info = _info("2024-03-05T10:11:12.3456789Z")
    assert info.kind is InfoKind.TIMESTAMP
    assert info.timestamp == datetime(2024, 3, 5, 10, 11, 12, 345678, tzinfo=UTC)


@pytest.mark.parametrize("value", ["2024-02-30T10:11:12.345Z", "2024-03-05T25:11:12.345Z"])
def test_impossible_timestamp_is_other(value):
    assert _info(value).kind is InfoKind.OTHER


# --------------------------------------------------------------------------- latency

NOTIFYMAPI_2016 = "2022-09-19T15:02:29.211Z;LSRV=XXX-MAIL.DOMAIN.TEST:TOTAL-SUB=0.128|SA=0.128|MTSS-PEN=0.000"
FAIL_2019 = (
    "2020-12-22T02:28:06.079Z;LSRV=server.mylab.test:TOTAL-HUB=0.369|SMR=0.113(SMRDI=0.009|"
    "SMRC=0.103(SMRCL=0.103))|CAT=0.146(…)|UNK=0.001|QDM=0.070|SMSC=0.031(X-SMSDR=0.069)|SMS=0.001"
)


def _codes(components) -> list[str]:
    return [c.code for c in components]


def test_real_notifymapi_2016():
    info = _info(NOTIFYMAPI_2016)
    assert info.kind is InfoKind.LATENCY
    assert info.timestamp == datetime(2022, 9, 19, 15, 2, 29, 211000, tzinfo=UTC)
    lat = info.latency
    assert lat.arrival == info.timestamp
    assert lat.previous_hops == ()
    block = lat.this_server
    assert block.server == "XXX-MAIL.DOMAIN.TEST"
    assert block.local is True
    assert block.total == 0.128
    assert block.process == "SUB"
    assert _codes(block.components) == ["TOTAL", "SA", "MTSS"]
    mtss = block.components[2]
    assert mtss.pending is True and mtss.seconds == 0.0 and not mtss.incomplete


def test_real_fail_2019_tree():
    lat = _info(FAIL_2019).latency
    block = lat.this_server
    assert (block.server, block.local, block.total, block.process) == (
        "server.mylab.test",
        True,
        0.369,
        "HUB",
    )
    assert _codes(block.components) == ["TOTAL", "SMR", "CAT", "UNK", "QDM", "SMSC", "SMS"]
    smr = block.components[1]
    assert smr.seconds == 0.113
    assert _codes(smr.children) == ["SMRDI", "SMRC"]
    assert smr.children[1].children[0].code == "SMRCL"
    assert smr.children[1].children[0].seconds == 0.103
    cat = block.components[2]
    assert cat.seconds == 0.146
    assert _codes(cat.children) == ["…"]  # the research elided this subtree; kept as a code
    smsc = block.components[5]
    assert smsc.children[0].code == "X-SMSDR"
    assert smsc.children[0].seconds == 0.069


def test_srv_is_end_to_end_lsrv_is_local():
    assert _info("SRV=a.contoso.com:TOTAL-HUB=1.000").latency.this_server.local is False
    assert _info("LSRV=a.contoso.com:TOTAL-HUB=1.000").latency.this_server.local is True


def test_previous_hop_blocks():
    value = (
        "2024-03-05T10:11:12.345Z;SRV=EX01.contoso.com:TOTAL-FE=0.013|SMR=0.013"
        "(SMRPI-FrontendProxyAgent=0.009);SRV=EX02.contoso.com:TOTAL-HUB=0.262|SMR=0.180;"
        "SRV=EX03.contoso.com:TOTAL-DEL=0.095|SDD=0.090"
    )
    lat = _info(value).latency
    assert [h.server for h in lat.previous_hops] == ["EX01.contoso.com", "EX02.contoso.com"]
    assert [h.process for h in lat.previous_hops] == ["FE", "HUB"]
    assert [h.total for h in lat.previous_hops] == [0.013, 0.262]
    agent = lat.previous_hops[0].components[1].children[0]
    assert (agent.code, agent.agent, agent.seconds) == ("SMRPI", "FrontendProxyAgent", 0.009)
    assert lat.this_server.server == "EX03.contoso.com"
    assert lat.this_server.total == 0.095
    cols = annotation_columns(_info(value), {}, "DELIVER")
    assert (cols["LatencySeconds"], cols["LatencyServer"]) == ("0.095", "EX03.contoso.com")


def test_unparseable_hop_is_kept_as_text():
    lat = _info("2024-03-05T10:11:12.345Z;FOO=bar=baz;SRV=EX03:TOTAL-DEL=0.095").latency
    assert lat.previous_hops == ("FOO=bar=baz",)
    assert lat.this_server.server == "EX03"


def test_nesting_agents_with_spaces_and_new_codes():
    value = (
        "LSRV=EX02.contoso.com:TOTAL-HUB=0.386|SMR=0.319(SMRDE=0.003|SMRC=0.315(SMRCL=0.102|"
        "X-SMRCR=0.314))|CAT=0.066(CATOS=0.011(CATSM=0.011(CATSM-Malware Agent=0.010))|"
        "CATRESL=0.022(CATRESLP2R=0.009)|CATORES=0.030(CATRS=0.030(CATRS-Index Routing Agent=0.028)))"
    )
    block = _info(value).latency.this_server
    assert block.total == 0.386
    assert _codes(block.components) == ["TOTAL", "SMR", "CAT"]
    smrc = block.components[1].children[1]
    assert _codes(smrc.children) == ["SMRCL", "X-SMRCR"]
    cat = block.components[2]
    assert _codes(cat.children) == ["CATOS", "CATRESL", "CATORES"]
    malware = cat.children[0].children[0].children[0]
    assert (malware.code, malware.agent, malware.seconds) == ("CATSM", "Malware Agent", 0.010)
    routing = cat.children[2].children[0].children[0]
    assert (routing.code, routing.agent) == ("CATRS", "Index Routing Agent")


def test_flat_pending_tail_belongs_to_its_block():
    # Exchange 2013's flat LatencyTracker writes pending components after ';' as bare names
    # (LatencyTracker.AppendLatencyString; LatencyParser state PendingComponentOrServer).
    value = "2024-03-05T10:11:12.345Z;LSRV=EX02.contoso.com:TOTAL-HUB=1.000|SMR=0.500;QDE|SMSC"
    info = _info(value)
    assert info.kind is InfoKind.LATENCY
    lat = info.latency
    assert lat.previous_hops == ()
    block = lat.this_server
    assert (block.server, block.total, block.process) == ("EX02.contoso.com", 1.0, "HUB")
    assert _codes(block.components) == ["TOTAL", "SMR", "QDE", "SMSC"]
    assert [c.pending for c in block.components] == [False, False, True, True]
    assert block.components[2].seconds is None
    cols = annotation_columns(info, {}, "SEND")
    assert (cols["LatencySeconds"], cols["LatencyServer"]) == ("1.000", "EX02.contoso.com")


def test_flat_pending_only_and_in_previous_hops():
    only = _info("LSRV=EX02:QDE|CATSM-Malware Agent").latency.this_server
    assert [(c.code, c.agent, c.pending) for c in only.components] == [
        ("QDE", "", True),
        ("CATSM", "Malware Agent", True),
    ]
    lat = _info("SRV=EX01:TOTAL-FE=0.100;SMRPI;SRV=EX02:TOTAL-HUB=0.200").latency
    assert [h.server for h in lat.previous_hops] == ["EX01"]
    assert _codes(lat.previous_hops[0].components) == ["TOTAL", "SMRPI"]
    assert lat.previous_hops[0].components[1].pending is True
    assert lat.this_server.server == "EX02"


@pytest.mark.parametrize(
    "record, code, agent, process, pending, incomplete, seconds",
    [
        ("TOTAL-HUB=1.250", "TOTAL", "", "HUB", False, False, 1.25),
        ("TOTAL=1.250", "TOTAL", "", "", False, False, 1.25),
        ("MTSS-PEN=0.000", "MTSS", "", "", True, False, 0.0),
        ("QDM-INC=2.500", "QDM", "", "", False, True, 2.5),
        ("CATSM-Malware Agent=0.010", "CATSM", "Malware Agent", "", False, False, 0.01),
        ("CATSM-Malware Agent-INC=0.010", "CATSM", "Malware Agent", "", False, True, 0.01),
        ("CATRT-Transport Rule Agent-PEN=3.000", "CATRT", "Transport Rule Agent", "", True, False, 3.0),
        ("CATSM-UnknownAgent3-7=0.020", "CATSM", "UnknownAgent3-7", "", False, False, 0.02),
        ("X-SMSDR=0.069", "X-SMSDR", "", "", False, False, 0.069),
        ("X-SMSDR-PEN=0.069", "X-SMSDR", "", "", True, False, 0.069),
        ("ZZNEW=4.000", "ZZNEW", "", "", False, False, 4.0),  # unknown code kept
        ("CATRESLP2R=0.009", "CATRESLP2R", "", "", False, False, 0.009),
        ("SMR=12", "SMR", "", "", False, False, 12.0),
        ("SMR=", "SMR", "", "", False, False, None),  # missing number
    ],
)
def test_component_records(record, code, agent, process, pending, incomplete, seconds):
    block = _info(f"LSRV=h:TOTAL-HUB=9.000|{record}").latency.this_server
    assert block.total == 9.0
    comp = block.components[1]
    assert (comp.code, comp.agent, comp.process) == (code, agent, process)
    assert (comp.pending, comp.incomplete, comp.seconds) == (pending, incomplete, seconds)


@pytest.mark.parametrize(
    "value, codes",
    [
        # header folding inserts spaces after records (LatencyFormatter.AddFolding)
        ("LSRV=h:TOTAL-HUB=1.000| SMR=0.319 (SMRDE=0.003| SMRC=0.315) |CAT=0.1", ["TOTAL", "SMR", "CAT"]),
        ("LSRV=h:TOTAL-HUB= 1.000|SMR=0.5", ["TOTAL", "SMR"]),
        # one bad record does not cost the others
        ("LSRV=h:TOTAL-HUB=1.000|SMR=abc|CAT=0.500", ["TOTAL", "SMR", "CAT"]),
        ("LSRV=h:TOTAL-HUB=1.000|SMR=0.5)|CAT=1", ["TOTAL", "SMR", "CAT"]),
        ("LSRV=h:TOTAL-HUB=1.000|SMR=0.5(SMRC=0.1", ["TOTAL", "SMR"]),
        ("LSRV=h:TOTAL-HUB=1.000||SMR=0.5|", ["TOTAL", "SMR"]),
        ("LSRV=h:TOTAL-HUB=1.000;|QDE", ["TOTAL", "QDE"]),
    ],
)
def test_lenient_components_keep_what_parses(value, codes):
    info = _info(value)
    assert info.kind is InfoKind.LATENCY
    block = info.latency.this_server
    assert block.total == 1.0
    assert _codes(block.components) == codes


def test_unbalanced_parenthesis_keeps_children():
    smr = _info("LSRV=h:TOTAL-HUB=1.000|SMR=0.5(SMRC=0.1").latency.this_server.components[1]
    assert (smr.seconds, _codes(smr.children)) == (0.5, ["SMRC"])


@pytest.mark.parametrize(
    "value",
    [
        "LSRV=h:TOTAL-HUB=1.000|SMR=0.5(SMRC=0.1",
        "LSRV=h:TOTAL-HUB=1.000|SMR=0.5)|CAT=1",
        "LSRV=h:TOTAL-HUB=1.000|SMR=0.5((((",
        "LSRV=h:TOTAL-HUB=1.000|SMR=0.5))))",
        "LSRV=h:TOTAL-HUB=1.000|(|)|",
        "LSRV=h:TOTAL-HUB=1.000|=|==|",
        "LSRV=h:" + "A(" * 5000,
        "LSRV=h:" + "A=1(" * 2000 + ")" * 2000,
        "SRV=:",
        "SRV=h:",
        "LSRV=h:TOTAL-HUB=abc",
        "2024-03-05T10:11:12.345Z;;;SRV=h:TOTAL=1;;",
    ],
)
def test_malformed_latency_never_raises(value):
    info = _info(value)
    assert info.kind in (InfoKind.LATENCY, InfoKind.OTHER)
    annotation_columns(info, {}, "DELIVER")


@pytest.mark.parametrize(
    "value", ["hello SRV= world", "SRV=truncated", "see LSRV=notes;x", "2024-03-05T10:11:12.345Z;SRV=x"]
)
def test_text_mentioning_srv_without_a_block_is_other(value):
    # Regression: any "SRV=" made the kind Latency, even with no server block in it.
    info = _info(value)
    assert info.kind is InfoKind.OTHER
    assert info.latency is None and info.timestamp is None
    assert annotation_columns(info, {})["MessageInfoKind"] == "Other"


def test_latency_server_block_is_annotated():
    cols = annotation_columns(_info(NOTIFYMAPI_2016), {}, "NOTIFYMAPI")
    assert cols["MessageInfoKind"] == "Latency"
    assert cols["OriginalArrivalTime"] == "2022-09-19T15:02:29.211Z"
    assert cols["LatencySeconds"] == "0.128"
    assert cols["LatencyServer"] == "XXX-MAIL.DOMAIN.TEST"


# --------------------------------------------------------------------------- other / empty


@pytest.mark.parametrize("value", ["", " ", "\t", "\r\n"])
def test_empty(value):
    info = _info(value)
    assert info.kind is InfoKind.EMPTY
    assert info.raw == value
    assert annotation_columns(info, {})["MessageInfoKind"] == "Empty"


@pytest.mark.parametrize(
    "value",
    ["Throttled", "3/5/2024 10:11:12 AM", "[{LED=451 4.4.0 DNS query failed}]", "0", "Z"],
)
def test_other_text_kept(value):
    info = _info(value)
    assert info.kind is InfoKind.OTHER
    assert info.raw == value
    assert info.auth is None and info.timestamp is None and info.latency is None


def test_decode_is_cached_and_frozen():
    a = decode_message_info("04I: ")
    assert decode_message_info("04I: ") is a
    with pytest.raises(AttributeError):
        a.kind = InfoKind.OTHER  # type: ignore[misc]


# --------------------------------------------------------------------------- annotation table


@pytest.mark.parametrize("case", _table("message_info.jsonl"))
def test_annotation_columns_table(case):
    info = decode_message_info(case["value"])
    cols = annotation_columns(info, {}, event_id=case.get("event_id", ""))
    assert tuple(cols) == ANNOTATION_COLUMNS
    expected = {name: "" for name in ANNOTATION_COLUMNS} | case["columns"]
    assert cols == expected


def test_annotation_columns_order_and_submission():
    submission = decode_source_context(
        "MDB:1, Mailbox:2, Event:3, MessageClass:IPM.Note.SMIME, CreationTime:2026-04-07T03:00:15.485Z, "
        "ClientType:AirSync, SubmissionAssistant:MailboxTransportSubmissionEmailAssistant"
    )
    cols = annotation_columns(_info("04I: "), submission, "RECEIVE")
    assert (
        tuple(cols)
        == ANNOTATION_COLUMNS
        == (
            "MessageInfoKind",
            "AuthCode",
            "AuthMethod",
            "AuthCategory",
            "AuthDomain",
            "OriginalArrivalTime",
            "LatencySeconds",
            "LatencyServer",
            "MessageClass",
            "ClientType",
        )
    )
    assert (cols["MessageClass"], cols["ClientType"]) == ("IPM.Note.SMIME", "AirSync")
    assert all(isinstance(v, str) for v in cols.values())


# --------------------------------------------------------------------------- lists


@pytest.mark.parametrize(
    "value, items",
    [
        ("", ()),
        ("a@contoso.com", ("a@contoso.com",)),
        ("a@contoso.com;b@contoso.com", ("a@contoso.com", "b@contoso.com")),
        ("a;'b;c';'it''s'", ("a", "b;c", "it's")),
        ("'it''s'", ("it's",)),
        ("''''", ("'",)),
        ("''", ("",)),
        ("'';''", ("", "")),
        (";", ("", "")),
        ("a;;b", ("a", "", "b")),
        ("a;", ("a", "")),
        (";a", ("", "a")),
        ("'a;b'", ("a;b",)),
        ("'250 2.1.5 Recipient OK; queued'", ("250 2.1.5 Recipient OK; queued",)),
        ("To;Cc;Bcc", ("To", "Cc", "Bcc")),
        # Not written by Exchange, but read without loss or error:
        ("'unterminated;x", ("unterminated;x",)),
        ("'ab'cd;e", ("abcd", "e")),
        ("it's;x", ("it's", "x")),
    ],
)
def test_split_list(value, items):
    assert split_list(value) == items


@pytest.mark.parametrize(
    "items, value",
    [
        ([], ""),
        (["a"], "a"),
        (["a", "b"], "a;b"),
        (["a", "b;c", "it's"], "a;'b;c';'it''s'"),
        (["", ""], ";"),
        (["a", ""], "a;"),
        (("x" for x in range(2)), "x;x"),
    ],
)
def test_join_list(items, value):
    assert join_list(items) == value


def test_single_empty_item_is_no_items():
    # Documented choice: a list of one empty item is written as an empty field, which reads
    # back as no items (the cmdlet, too, treats a Reference whose only element is empty as null).
    assert join_list([""]) == ""
    assert split_list(join_list([""])) == ()


# --------------------------------------------------------------------------- custom-data


def test_custom_data_real_2016():
    value = (
        "S:MailboxDatabaseGuid=12345678-3232-2323-1111-12345679987;S:ItemEntryId=00-00-XXX-00;"
        "S:DeliveryPriority=Normal;S:AccountForest=DOMAIN.TEST"
    )
    assert decode_custom_data(value) == {
        "MailboxDatabaseGuid": "12345678-3232-2323-1111-12345679987",
        "ItemEntryId": "00-00-XXX-00",
        "DeliveryPriority": "Normal",
        "AccountForest": "DOMAIN.TEST",
    }


@pytest.mark.parametrize(
    "item, key, value",
    [
        ("S:DeliveryPriority=Normal", "DeliveryPriority", "Normal"),
        ("S:Empty=", "Empty", ""),
        ("S:Formula=a=b", "Formula", "a=b"),
        ("I32:MsgRecipCount=3", "MsgRecipCount", 3),
        ("I32:Neg=-2147483648", "Neg", -2147483648),
        ("Dt:When=2024-03-05T10:11:12.345Z", "When", datetime(2024, 3, 5, 10, 11, 12, 345000, tzinfo=UTC)),
        ("F:E2ELatency=0.701", "E2ELatency", 0.701),
        ("Dbl:ExternalSendLatency=1.5", "ExternalSendLatency", 1.5),
        ("Dbl:Big=1E+20", "Big", 1e20),
        (
            "S:Microsoft.Exchange.Transport.MailRecipient.RequiredTlsAuthLevel=EncryptionOnly",
            "Microsoft.Exchange.Transport.MailRecipient.RequiredTlsAuthLevel",
            "EncryptionOnly",
        ),
        # bad values keep their text
        ("I32:Count=many", "Count", "many"),
        ("I32:Count=1.5", "Count", "1.5"),
        ("Dt:When=yesterday", "When", "yesterday"),
        ("Dt:When=2024-03-05T10:11:12", "When", "2024-03-05T10:11:12"),
        ("F:Ratio=fast", "Ratio", "fast"),
        ("Dbl:Ratio=", "Ratio", ""),
        # unknown type tags keep their text
        ("B:Flag=true", "Flag", "true"),
        ("Guid:Id=0000", "Id", "0000"),
    ],
)
def test_custom_data_items(item, key, value):
    decoded = decode_custom_data(item)
    assert decoded == {key: value}
    assert type(decoded[key]) is type(value)


@pytest.mark.parametrize(
    "item",
    [
        "I32:N=1_000",  # Python-only syntax, not a .NET Int32
        "I32:N=\u0663",  # ARABIC-INDIC DIGIT THREE
        "I32:N=2147483648",  # beyond 32 bits
        "I32:N=-2147483649",
        "F:N=1_0.5",
        "Dbl:N=\u0661.5",
    ],
)
def test_custom_data_number_syntax_is_strict(item):
    # Regression: int()/float() accepted these, turning bad text into numbers.
    text = item.split("=", 1)[1]
    assert decode_custom_data(item) == {"N": text}


@pytest.mark.parametrize(
    "item, value",
    [("I32:N= 7 ", 7), ("I32:N=+7", 7), ("Dbl:N=NaN", None), ("Dbl:N=-Infinity", -math.inf)],
)
def test_custom_data_number_forms_dotnet_writes(item, value):
    got = decode_custom_data(item)["N"]
    if value is None:
        assert isinstance(got, float) and math.isnan(got)
    else:
        assert got == value and type(got) is type(value)


def test_custom_data_quoted_items_and_shapeless_items():
    # The writer quotes the whole "T:K=V" item when it holds ';' or "'" (§3.4).
    value = "'S:DiagnosticInfo=a;b';'S:Quote=it''s';;justtext;S:Last=1"
    assert decode_custom_data(value) == {
        "DiagnosticInfo": "a;b",
        "Quote": "it's",
        "justtext": "",
        "Last": "1",
    }
    assert decode_custom_data("") == {}


def test_encode_custom_data():
    data = {
        "S": "x;y",
        "N": 3,
        "F": 0.5,
        "When": datetime(2024, 3, 5, 10, 11, 12, 345000, tzinfo=UTC),
        "Flag": True,
    }
    text = encode_custom_data(data)
    assert text == "'S:S=x;y';I32:N=3;Dbl:F=0.5;Dt:When=2024-03-05T10:11:12.345Z;S:Flag=True"
    assert decode_custom_data(text) == data | {"Flag": "True"}


# --------------------------------------------------------------------------- source-context


@pytest.mark.parametrize("case", _table("source_context.jsonl"))
def test_source_context_table(case):
    assert decode_source_context(case["value"]) == case["expect"]


@pytest.mark.parametrize(
    "value, session, start, number",
    [
        (
            "08D8A5FE51D0C2F2;2020-12-22T02:28:05.848Z;0",
            "08D8A5FE51D0C2F2",
            datetime(2020, 12, 22, 2, 28, 5, 848000, tzinfo=UTC),
            0,
        ),
        (
            "08cd2db1fc2b3e45;2010-06-01T08:00:00.000Z;12",
            "08CD2DB1FC2B3E45",
            datetime(2010, 6, 1, 8, tzinfo=UTC),
            12,
        ),
        (
            " 08D8A5FE51D0C2F2;2020-12-22T02:28:05.848Z;3 ",
            "08D8A5FE51D0C2F2",
            datetime(2020, 12, 22, 2, 28, 5, 848000, tzinfo=UTC),
            3,
        ),
    ],
)
def test_smtp_context(value, session, start, number):
    ctx = decode_smtp_context(value)
    assert (ctx.session_id, ctx.session_start, ctx.message_number) == (session, start, number)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "08D8A5FE51D0C2F2",
        "08D8A5FE51D0C2F2;250 2.0.0 OK;ClientSubmitTime:",
        "08D8A5FE51D0C2F2;2020-12-22T02:28:05.848Z;x",
        "08D8A5FE51D0C2F;2020-12-22T02:28:05.848Z;0",
        "08D8A5FE51D0C2F2;2020-13-22T02:28:05.848Z;0",
        "MDB:1, Mailbox:2",
    ],
)
def test_smtp_context_non_matching(value):
    assert decode_smtp_context(value) is None


# --------------------------------------------------------------------------- hypothesis

FAST = settings(max_examples=150, deadline=None)

#: Text biased towards the grammar's own characters, so the parsers' branches are exercised.
grammar_text = st.text(
    alphabet=st.sampled_from(list("0123456789abcdefAIEPOZ:;=|()-. 'SRVLTOTALPENINCXZ\t,")),
    max_size=80,
)
any_text = st.one_of(st.text(max_size=120), grammar_text)


@FAST
@given(any_text, st.sampled_from(["", "DEFER", "DELIVER"]))
def test_arbitrary_text_never_raises(text, event_id):
    info = decode.decode_message_info.__wrapped__(text)  # bypass the cache: every input parsed
    assert info.raw == text
    cols = annotation_columns(info, decode_source_context(text), event_id)
    assert tuple(cols) == ANNOTATION_COLUMNS
    split_list(text)
    decode_custom_data(text)
    decode_smtp_context(text)


@FAST
@given(st.sampled_from(["S", "I32", "Dt", "F", "Dbl", "X"]), any_text)
def test_arbitrary_typed_values_never_raise(tag, text):
    decode_custom_data(f"{tag}:Key={text}")


@FAST
@given(st.lists(st.text(max_size=12), max_size=6).filter(lambda items: items != [""]))
def test_list_round_trip(items):
    assert split_list(join_list(items)) == tuple(items)


custom_keys = st.text(max_size=20).filter(lambda k: "=" not in k)
custom_values = st.one_of(
    st.text(max_size=30),
    st.integers(min_value=-(2**31), max_value=2**31 - 1),
    st.floats(allow_nan=False),
    st.datetimes(
        min_value=datetime(1, 1, 1),
        max_value=datetime(9999, 12, 31, 23, 59, 59, 999000),
        timezones=st.just(UTC),
    ).map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000)),
)


@FAST
@given(st.dictionaries(custom_keys, custom_values, max_size=6))
def test_custom_data_round_trip(data):
    decoded = decode_custom_data(encode_custom_data(data))
    assert decoded == data
    assert {k: type(v) for k, v in decoded.items()} == {k: type(v) for k, v in data.items()}


ms_datetimes = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30, 23, 59, 59, 999000),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]),
).map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000))


@FAST
@given(ms_datetimes)
def test_timestamp_round_trip(value):
    text = format_log_timestamp(value)
    assert len(text) == 24 and text.endswith("Z")
    parsed = parse_log_timestamp(text)
    assert parsed == value
    assert parsed.tzinfo == UTC
    assert decode_message_info(text).timestamp == value


@FAST
@given(
    st.integers(min_value=0, max_value=255),
    st.sampled_from(sorted(AUTH_CATEGORIES) + [c.lower() for c in AUTH_CATEGORIES]),
    st.booleans(),
    st.sampled_from(["", " ", ": ", ":", " NTS:"]),
)
def test_generated_auth_codes(n, letter, upper_hex, tail):
    hex_text = f"{n:02X}" if upper_hex else f"{n:02x}"
    auth = decode_message_info(f"{hex_text}{letter}:{tail}").auth
    assert auth is not None
    assert auth.value == n
    assert auth.code == f"{n:02X}"
    assert auth.method == AUTH_METHODS.get(n, f"Unknown(0x{n:02X})")
    assert auth.letter == letter
    assert auth.category == AUTH_CATEGORIES[letter.upper()]


def test_latency_total_formats_three_decimals():
    block = _info("LSRV=h:TOTAL-HUB=12").latency.this_server
    assert isinstance(block, LatencyBlock)
    assert annotation_columns(_info("LSRV=h:TOTAL-HUB=12"), {})["LatencySeconds"] == "12.000"
    assert not math.isnan(block.total)


# --------------------------------------------------------------------------- fast paths
# summarize_message_info / submission_values / annotation_values stand in for the full
# decoders on the CSV path; they must agree with them on everything.


def _slow_annotations(value: str, context: str, event_id: str) -> tuple[str, ...]:
    return tuple(annotation_columns(decode_message_info(value), decode_source_context(context),
                                    event_id).values())


def _check_fast_paths(value: str, context: str = "", event_id: str = "") -> None:
    assert decode.annotation_values(value, context, event_id) == _slow_annotations(value, context, event_id)
    info = decode_message_info(value)
    block = info.latency.this_server if info.latency else None
    summary = decode.summarize_message_info(value)
    assert summary.arrival == info.timestamp
    assert summary.local == (block.local if block else None)


@pytest.mark.parametrize("case", _table("message_info.jsonl"))
def test_fast_annotations_table(case):
    _check_fast_paths(case["value"], "", case.get("event_id", ""))
    _check_fast_paths(case["value"], "", "DEFER")


@pytest.mark.parametrize("case", _table("source_context.jsonl"))
def test_fast_submission_table(case):
    expect = case["expect"]
    assert decode.submission_values(case["value"]) == (
        expect.get("MessageClass", ""), expect.get("ClientType", ""))


def _mostly(common: list[str], rare: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(common), st.sampled_from(common), st.sampled_from(rare))


# Latency strings near the form the fast path takes: half of them take it.
_LATENCY_BLOCK = st.builds(
    "{}={}:{}={}{}".format,
    _mostly(["SRV", "LSRV"], ["XSRV", "lsrv", " LSRV"]),
    _mostly(["EX01.contoso.com", " EX 02 "], ["", "a,b", 'q"s']),
    _mostly(["TOTAL", "TOTAL-HUB", "TOTAL-PEN"], ["TOTAL-", "TOTALX", " TOTAL", "SMR", "TOTAL-A B"]),
    _mostly(["0.5", "-1.25", "12", "0.1234"], ["1.2.3", " 1", "", "x"]),
    _mostly(["", "|SMR=0.1", "(A=1|B=2)|C=3"], [")", "(", " ", "|QDE", "(A=1", "x|A=1"]),
)
_LATENCY_VALUE = st.builds(
    lambda stamp, hops, block, tail: stamp + "".join(h + ";" for h in hops) + block + tail,
    _mostly(["", "2026-11-27T08:00:00.123Z;"], ["2026-13-27T08:00:00.123Z;",
            "2026-11-27T08:00:00.1234567Z;", " 2026-11-27T08:00:00.123Z;", "x;"]),
    st.lists(st.one_of(_LATENCY_BLOCK, st.sampled_from(["", " ", "junk", "QDE|SMSC"])), max_size=2),
    _LATENCY_BLOCK,
    _mostly([""], [";", ";QDE|SMSC", " ", ";;", ";junk"]),
)


@settings(max_examples=3000)
@given(_LATENCY_VALUE, st.integers(0, 80), st.sampled_from(["", ";", "(", ")", "|", "=", ":", " "]))
def test_fast_message_info_agrees_with_the_full_decoder(value, at, char):
    _check_fast_paths(value, "", "SEND")
    _check_fast_paths(value[:at] + char + value[at:], "", "defer")


@given(st.text(max_size=40))
def test_fast_message_info_agrees_on_any_text(value):
    _check_fast_paths(value)


def test_fast_message_info_deep_nesting_goes_the_full_way():
    value = "LSRV=EX01:TOTAL=1(" + "A=1(" * 70 + ")" * 71
    _check_fast_paths(value, "", "DELIVER")


_CONTEXT_BITS = st.sampled_from([
    "MDB:1", "Mailbox:2", "MessageClass:IPM.Note", "MessageClass:", "ClientType:OWA",
    "ClientType:Air,Sync", ", ", ",", " ", ":", ";", "Event:3", "x", "9Key:v", "MessageClass",
    "ClientType", "\n",
])


@settings(max_examples=2000)
@given(st.lists(_CONTEXT_BITS, max_size=10).map("".join))
def test_fast_submission_agrees_with_decode_source_context(context):
    decoded = decode_source_context(context)
    assert decode.submission_values(context) == (
        decoded.get("MessageClass", ""), decoded.get("ClientType", ""))
    assert decode.annotation_values("", context) == _slow_annotations("", context, "")
