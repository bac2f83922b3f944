"""EAS decoders: query forms, &Log= tokens and user agents (table-driven + hypothesis)."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from msgtrack.eas.query import (
    COMMAND_CODES,
    EasQuery,
    decode_base64_query,
    decode_log,
    decode_query,
    encode_base64_query,
    looks_base64,
)
from msgtrack.eas.useragent import (
    IOS_BUILDS,
    IOS_MAJOR_BY_BUILD_MAJOR,
    decode_apple_build,
    decode_user_agent,
    encode_apple_build,
)

# ----------------------------------------------------------------------------- query forms

PLAIN = [
    # (cs-uri-query, cmd, user, device id, device type, protocol version from Log)
    ("User=alice&DeviceId=ApplDNQGKRB3DTD7&DeviceType=iPhone&Cmd=SmartReply&Log=V141_S1",
     "SmartReply", "alice", "ApplDNQGKRB3DTD7", "iPhone", "14.1"),
    ("Cmd=Ping&User=cdrcb.com%5Cdengmu&DeviceId=androidc537050526&DeviceType=KSAndroid"
     "&Log=V141_LdapC1_RpcC28_RpcL31_Hb1680_S3_Error:PingCollisionDetected_Mbx:MAIL1.cdrcb.com",
     "Ping", "cdrcb.com\\dengmu", "androidc537050526", "KSAndroid", "14.1"),
    ("User=alice&DeviceId=ApplDNQGKRB3DTD7&DeviceType=iPhone&Cmd=SendMail&SaveInSent=T"
     "&Log=V121_S1", "SendMail", "alice", "ApplDNQGKRB3DTD7", "iPhone", "12.1"),
    ("User=ivan&DeviceId=ApplC8PKD0AFDTC0&DeviceType=iPhone&Cmd=Sync"
     "&CorrelationID=<empty>;&cafeReqId=3f2c0001-8e51-4a7b-9c0d-5e1f2a3b4c01;",
     "Sync", "ivan", "ApplC8PKD0AFDTC0", "iPhone", ""),
    ("user=bob&deviceid=X1&devicetype=SmartPhone&cmd=Sync", "Sync", "bob", "X1", "SmartPhone", ""),
    ("User=alice&DeviceId=ApplDNQGKRB3DTD7&DeviceType=iPhone", "", "alice", "ApplDNQGKRB3DTD7",
     "iPhone", ""),
    ("-", "", "", "", "", ""),
    ("", "", "", "", "", ""),
]


@pytest.mark.parametrize(("query", "cmd", "user", "device_id", "device_type", "version"), PLAIN)
def test_plain_query(query: str, cmd: str, user: str, device_id: str, device_type: str,
                     version: str) -> None:
    q = decode_query(query)
    assert (q.cmd, q.user, q.device_id, q.device_type) == (cmd, user, device_id, device_type)
    assert q.log.protocol_version == version
    assert q.form == ("none" if query in ("", "-") else "plain")


def test_plain_save_in_sent() -> None:
    assert decode_query("Cmd=SendMail&SaveInSent=T").save_in_sent is True
    assert decode_query("Cmd=SendMail&SaveInSent=F").save_in_sent is False
    assert decode_query("Cmd=SmartReply").save_in_sent is None
    # A plain key with an empty value is not a base64 blob.
    assert decode_query("SaveInSent=&Cmd=SendMail").cmd == "SendMail"


def test_base64_spec_example() -> None:
    # MS-ASHTTP's own example (eas-facts §1.3): 14.0, Sync, en-US, v140Device, SmartPhone.
    q = decode_query("jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l")
    assert q.form == "base64"
    assert (q.protocol_version, q.cmd, q.locale) == ("14.0", "Sync", 1033)
    assert (q.device_id, q.device_type, q.policy_key) == ("v140Device", "SmartPhone", None)


BASE64 = [
    # (command code, name): the three reply commands of issue #6 and a few others
    (0, "Sync"), (1, "SendMail"), (2, "SmartForward"), (3, "SmartReply"), (9, "FolderSync"),
    (18, "Ping"), (22, "ValidateCert"),
]


@pytest.mark.parametrize(("code", "name"), BASE64)
def test_base64_commands(code: int, name: str) -> None:
    assert COMMAND_CODES[code] == name
    blob = encode_base64_query(EasQuery("base64", name, "CONTOSO\\grace", "6F24CAD5", "WP8",
                                        {"User": "CONTOSO\\grace", "Options": "1"}, "14.1",
                                        1033, 3942120183))
    q = decode_query(blob.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
                     + "&Log=V141_S1")
    assert (q.cmd, q.user, q.device_id, q.device_type) == (name, "CONTOSO\\grace", "6F24CAD5", "WP8")
    assert (q.protocol_version, q.policy_key, q.save_in_sent) == ("14.1", 3942120183, True)
    assert q.log.get("S") == "1"


@pytest.mark.parametrize(("blob", "message"), [
    ("jAAJBAp2MTQwRGV2aW", "truncated in DeviceId"),
    ("AAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l", "unknown protocol version byte 0"),
    ("jAAJBAp2MTQwRGV2aWNlBQ", "policy key length 5"),
])
def test_base64_malformed(blob: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_query(blob)


def test_base64_with_padding_and_unknown_command() -> None:
    raw = encode_base64_query(EasQuery("base64", "Sync", "", "DD", "T", {}, "16.1", 0, None))
    assert raw.endswith("=")
    assert looks_base64(raw) and looks_base64(raw.replace("=", "%3D"))
    unknown = bytes([161, 99, 0, 0, 1, 68, 0, 1, 84])
    import base64

    assert decode_base64_query(base64.b64encode(unknown).decode()).cmd == "Unknown(99)"


params = st.dictionaries(
    st.sampled_from(["CollectionId", "ItemId", "LongId", "Occurrence", "User", "AttachmentName"]),
    st.text(string.ascii_letters + string.digits + "\\:@.-", max_size=40),
    max_size=4,
)


@given(
    cmd=st.sampled_from(sorted(COMMAND_CODES.values())),
    version=st.sampled_from(["12.1", "14.0", "14.1", "16.0", "16.1"]),
    device_id=st.text(string.ascii_letters + string.digits, max_size=32),
    device_type=st.text(string.ascii_letters + string.digits, max_size=20),
    locale=st.integers(0, 0xFFFF),
    policy_key=st.one_of(st.none(), st.integers(0, 2**32 - 1)),
    extra=params,
    options=st.one_of(st.none(), st.integers(0, 3)),
)
def test_base64_round_trip(cmd: str, version: str, device_id: str, device_type: str, locale: int,
                           policy_key: int | None, extra: dict[str, str],
                           options: int | None) -> None:
    if options is not None:
        extra = {**extra, "Options": str(options)}
    query = EasQuery("base64", cmd, extra.get("User", ""), device_id, device_type, extra, version,
                     locale, policy_key)
    assert decode_query(encode_base64_query(query)) == query


@given(st.text(max_size=200))
def test_any_query_decodes_or_raises_value_error(text: str) -> None:
    try:
        q = decode_query(text)
    except ValueError:
        return
    assert q.form in ("plain", "base64", "none")
    q.log.protocol_version  # noqa: B018  (must not raise either)
    q.log.errors  # noqa: B018


# ----------------------------------------------------------------------------- &Log= tokens

LOG_TOKENS = [
    # (token, name, value)
    ("V141", "V", "141"),
    ("Hb1680", "Hb", "1680"),
    ("S3", "S", "3"),
    ("Error:PingCollisionDetected", "Error", "PingCollisionDetected"),
    ("Mbx:MAIL1.cdrcb.com", "Mbx", "MAIL1.cdrcb.com"),
    ("SC1:2", "SC1", "2"),
    ("FldrC1:17", "FldrC1", "17"),
    ("As:AllowedG", "As", "AllowedG"),
    ("Budget:(D)Owner:S-1-5-21", "Budget", "(D)Owner:S-1-5-21"),
    ("Throttle0", "Throttle", "0"),
    ("Sst", "Sst", None),  # undocumented (eas-facts §2.2): kept verbatim
    ("Ssp12x", "Ssp12x", None),
    ("Cli:0a0c0d0f", "Cli", "0a0c0d0f"),
]


@pytest.mark.parametrize(("raw", "name", "value"), LOG_TOKENS)
def test_log_token(raw: str, name: str, value: str | None) -> None:
    (token,) = decode_log(raw).tokens
    assert (token.raw, token.name, token.value) == (raw, name, value)


@pytest.mark.parametrize(("log", "version"), [
    ("V25_S1", "2.5"), ("V121_S1", "12.1"), ("V140", "14.0"), ("V141_Hb900", "14.1"),
    ("V160_S1", "16.0"), ("V161", "16.1"), ("S1_Hb900", ""), ("", ""),
])
def test_log_protocol_version(log: str, version: str) -> None:
    assert decode_log(log).protocol_version == version


def test_log_unescapes_and_collects_errors() -> None:
    log = decode_log("V141_Error:OverBudget_SmtpAdrs:ivan%40contoso.com_Error:ServerError_Mbx:EX1")
    assert log.errors == ("OverBudget", "ServerError")
    assert log.get("SmtpAdrs") == "ivan@contoso.com"
    assert log.mailbox_server == "EX1"


@given(st.lists(st.text(string.ascii_letters + string.digits + ":().,-", min_size=1,
                        max_size=20), max_size=12))
def test_log_tokens_are_kept_verbatim(tokens: list[str]) -> None:
    assert [t.raw for t in decode_log("_".join(tokens)).tokens] == tokens


# ----------------------------------------------------------------------------- user agents

USER_AGENTS = [
    # (UA, family, device, build, iOS version)
    ("Apple-iPhone4C1/902.176", "iOS", "iPhone 4S", "9B176", "5.1"),
    ("Apple-iPhone4C1/901.334", "iOS", "iPhone 4S", "9A334", "5.0"),
    ("Apple-iPhone3C1/901.405", "iOS", "iPhone 4 GSM", "9A405", "5.0.1"),
    ("Apple-iPad2C1/901.406", "iOS", "iPad 2", "9A406", "5.0.1"),
    ("Apple-iPhone4C1/902.206", "iOS", "iPhone 4S", "9B206", "5.1.1"),
    ("Apple-iPhone4C1/902.999", "iOS", "iPhone 4S", "9B999", "5.x"),  # not in the table
    ("Apple-iPhone5C2/1001.403", "iOS", "iPhone 5 CDMA", "10A403", "6.0"),
    ("Apple-iPhone5C2/1002.350", "iOS", "iPhone 5 CDMA", "10B350", "6.1.4"),
    ("Apple-iPhone6C1/1101.47000001", "iOS", "iPhone 5s Americas", "11A470a", "7.0.1"),
    ("Apple-iPad3C3/1402.7200003", "iOS", "iPad 4", "14B72c", "10.1"),
    ("Apple-iPhone9C3/1501.372", "iOS", "iPhone 7", "15A372", ""),  # major 15: unknown
    ("Apple-iPhone99C9/901.334", "iOS", "iPhone99C9", "9A334", "5.0"),  # unknown model
    ("Apple-iPad2C1/999.1", "iOS", "iPad 2", "", ""),  # letter 99: not a build
    ("Android/4.0.4-EAS-1.3", "Android", "Android 4.0.4", "", ""),
    ("SAMSUNG-SM-G900F/101.50101", "Android", "SAMSUNG-SM-G900F", "", ""),
    ("Outlook-iOS-Android/1.0", "Outlook", "Outlook-iOS-Android", "", ""),
    ("MSFT-WP/8.0.10211", "Windows Phone", "MSFT-WP", "", ""),
    ("TouchDown(MSRPC)/7.1.0005", "TouchDown", "TouchDown(MSRPC)", "", ""),
    ("Mozilla/5.0+(Windows+NT+10.0)", "Other", "Mozilla", "", ""),
    ("", "Other", "", "", ""),
]


@pytest.mark.parametrize(("raw", "family", "device", "build", "version"), USER_AGENTS)
def test_user_agent(raw: str, family: str, device: str, build: str, version: str) -> None:
    ua = decode_user_agent(raw)
    assert (ua.family, ua.device, ua.build, ua.ios_version) == (family, device, build, version)
    assert ua.is_ios5 == version.startswith("5.")


def test_build_table_is_consistent_with_the_build_rule() -> None:
    # Every table entry decodes, re-encodes to itself, and its major agrees with the rule.
    for field, version in IOS_BUILDS.items():
        decoded = decode_apple_build(field)
        assert decoded is not None, field
        assert encode_apple_build(decoded[0]) == field
        assert IOS_MAJOR_BY_BUILD_MAJOR[decoded[1]] == int(version.split(".")[0]), field
    assert IOS_MAJOR_BY_BUILD_MAJOR[9] == 5 and 15 not in IOS_MAJOR_BY_BUILD_MAJOR


@given(major=st.integers(1, 30), letter=st.sampled_from(string.ascii_uppercase),
       number=st.integers(1, 9999), suffix=st.sampled_from(["", *string.ascii_lowercase]))
def test_apple_build_round_trip(major: int, letter: str, number: int, suffix: str) -> None:
    build = f"{major}{letter}{number}{suffix}"
    assert decode_apple_build(encode_apple_build(build)) == (build, major)


@given(st.text(max_size=80))
def test_any_user_agent_decodes(text: str) -> None:
    ua = decode_user_agent(text)
    assert ua.raw == text
    if ua.ios_version:
        assert ua.family == "iOS"
