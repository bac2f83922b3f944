"""ActiveSync user agents -> device, iOS build and iOS version (eas-facts §2.4).

iOS devices send ``Apple-<model>C<n>/<build>``, e.g. ``Apple-iPhone4C1/902.176``. The
build field encodes Apple's build string: major number, the letter's position in the
alphabet as two digits, a dot, the build number, and a trailing lowercase letter as a
5-digit number (``9B176`` -> ``902.176``, ``11A470a`` -> ``1101.47000001``).

Versions come from the build table carried below (iOS 2.2.1 to 10.2.1, eas-facts S16).
A build that is not in the table is decoded (``9B999``) and reported as ``5.x`` when its
major number is one the table itself ties to an iOS major; anything else stays unknown
(``""``), never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

#: Apple UA build field -> iOS version (eas-facts S16, the EAS Inspector for Fiddler table).
IOS_BUILDS: dict[str, str] = {
    "508.11": "2.2.1",
    "701.341": "3.0", "701.400": "3.0.1",
    "702.367": "3.2", "702.405": "3.2.1", "702.500": "3.2.2",
    "703.144": "3.1", "703.146": "3.1", "704.11": "3.1.2", "705.18": "3.1.3",
    "801.293": "4.0", "801.306": "4.0.1", "801.400": "4.0.2",
    "802.117": "4.1", "802.118": "4.1",
    "803.148": "4.2.1", "803.14800001": "4.2.1",
    "805.128": "4.2.5", "805.200": "4.2.6", "805.303": "4.2.7", "805.401": "4.2.8",
    "805.501": "4.2.9", "805.600": "4.2.10",
    "806.190": "4.3", "806.191": "4.3", "807.4": "4.3.1", "808.7": "4.3.2", "808.8": "4.3.2",
    "810.2": "4.3.3", "810.3": "4.3.3", "811.2": "4.3.4", "812.1": "4.3.5",
    "901.334": "5.0", "901.405": "5.0.1", "901.406": "5.0.1",
    "902.176": "5.1", "902.179": "5.1", "902.206": "5.1.1", "902.208": "5.1.1",
    "1001.403": "6.0", "1001.405": "6.0", "1001.406": "6.0", "1001.407": "6.0",
    "1001.523": "6.0", "1001.525": "6.0", "1001.550": "6.0", "1001.551": "6.0",
    "1001.8426": "6.0", "1001.8500": "6.0",
    "1002.141": "6.1", "1002.142": "6.1", "1002.143": "6.1", "1002.144": "6.1",
    "1002.145": "6.1.1", "1002.146": "6.1.2", "1002.329": "6.1.3", "1002.350": "6.1.4",
    "1101.465": "7.0", "1101.470": "7.0.1", "1101.47000001": "7.0.1", "1101.501": "7.0.2",
    "1102.511": "7.0.3", "1102.55400001": "7.0.4", "1102.601": "7.0.5", "1102.651": "7.0.6",
    "1104.167": "7.1", "1104.169": "7.1", "1104.201": "7.1.1", "1104.257": "7.1.2",
    "1201.365": "8.0", "1201.366": "8.0.1", "1201.405": "8.0.2",
    "1202.410": "8.1", "1202.411": "8.1", "1202.435": "8.1.1", "1202.440": "8.1.2",
    "1202.466": "8.1.3", "1204.508": "8.2", "1205.69": "8.3", "1205.70": "8.3",
    "1208.143": "8.4", "1208.321": "8.4.1",
    "1301.340": "9.0", "1301.342": "9.0", "1301.343": "9.0", "1301.344": "9.0",
    "1301.404": "9.0.1", "1301.452": "9.0.2", "1302.143": "9.1", "1303.75": "9.2",
    "1304.15": "9.2.1", "1304.20": "9.2.1",
    "1305.233": "9.3", "1305.234": "9.3", "1305.236": "9.3", "1305.237": "9.3",
    "1305.238": "9.3.1", "1306.69": "9.3.2", "1306.72": "9.3.2",
    "1307.34": "9.3.3", "1307.35": "9.3.4", "1307.36": "9.3.5",
    "1401.346": "10.0", "1401.403": "10.0.1", "1401.456": "10.0.2", "1401.551": "10.0.3",
    "1402.72": "10.1", "1402.7200003": "10.1", "1402.100": "10.1.1",
    "1403.92": "10.2", "1404.27": "10.2.1",
}

#: Apple model code -> marketing name (same source).
APPLE_MODELS: dict[str, str] = {
    "iPod2C1": "iPod touch 2", "iPod3C1": "iPod touch 3", "iPod4C1": "iPod touch 4",
    "iPod5C1": "iPod touch 5",
    "iPad1C1": "iPad", "iPad2C1": "iPad 2", "iPad2C2": "iPad 2 3G", "iPad2C3": "iPad 2 3G CDMA",
    "iPad2C4": "iPad mini", "iPad2C5": "iPad mini LTE",
    "iPad3C1": "iPad 3", "iPad3C2": "iPad 3 LTE", "iPad3C3": "iPad 4", "iPad3C4": "iPad 4 LTE",
    "iPad4C1": "iPad Air", "iPad4C2": "iPad Air LTE",
    "iPad4C4": "iPad mini Retina", "iPad4C5": "iPad mini Retina LTE",
    "iPad5C1": "iPad mini 4", "iPad5C2": "iPad mini 4 LTE",
    "iPad5C3": "iPad Air 2", "iPad5C4": "iPad Air 2 LTE",
    "iPhone1C2": "iPhone 3G", "iPhone2C1": "iPhone 3GS",
    "iPhone3C1": "iPhone 4 GSM", "iPhone3C2": "iPhone 4 GSM", "iPhone3C3": "iPhone 4 CDMA",
    "iPhone4C1": "iPhone 4S",
    "iPhone5C1": "iPhone 5 GSM/LTE", "iPhone5C2": "iPhone 5 CDMA",
    "iPhone5C3": "iPhone 5c Americas", "iPhone5C4": "iPhone 5c Europe/Asia",
    "iPhone6C1": "iPhone 5s Americas", "iPhone6C2": "iPhone 5s Europe/Asia",
    "iPhone7C1": "iPhone 6 Plus", "iPhone7C2": "iPhone 6",
    "iPhone8C1": "iPhone 6s", "iPhone8C2": "iPhone 6s Plus", "iPhone8C4": "iPhone SE",
    "iPhone9C3": "iPhone 7", "iPhone9C4": "iPhone 7 Plus",
}


def _majors_from_table() -> dict[int, int]:
    """Build major number -> iOS major, as the table itself shows (8 -> 4, 9 -> 5, ...)."""
    majors: dict[int, int] = {}
    for field, version in IOS_BUILDS.items():
        majors[int(field.split(".")[0][:-2])] = int(version.split(".")[0])
    return majors


#: Only majors the table vouches for; 15 (iOS 11) is not in it, so it stays unknown.
IOS_MAJOR_BY_BUILD_MAJOR: dict[int, int] = _majors_from_table()

_APPLE_RE = re.compile(r"Apple-(iPhone|iPad|iPod)(\d+)C(\d+)/(\d+)\.(\d+)\Z")
_ANDROID_RE = re.compile(r"Android[/ -]?(\d+(?:\.\d+)*)", re.IGNORECASE)


@dataclass(frozen=True)
class UserAgent:
    raw: str  #: as logged (IIS writes spaces as ``+``)
    family: str  #: iOS, Android, Outlook, Windows Phone, Windows Mail, TouchDown, Other
    model: str = ""  #: Apple model code, e.g. ``iPhone4C1``
    device: str = ""  #: friendly name, e.g. ``iPhone 4S``; the model code when unknown
    build: str = ""  #: Apple build string, e.g. ``9B176``
    ios_version: str = ""  #: ``5.1`` (table), ``5.x`` (major only) or ``""`` (unknown)

    @property
    def ios_major(self) -> int | None:
        if not self.ios_version:
            return None
        return int(self.ios_version.split(".")[0])

    @property
    def is_ios5(self) -> bool:
        return self.ios_major == 5


def decode_apple_build(field: str) -> tuple[str, int] | None:
    """``902.176`` -> (``9B176``, 9); ``1101.47000001`` -> (``11A470a``, 11); None if invalid."""
    left, dot, right = field.partition(".")
    if not dot or len(left) < 3 or not left.isdigit() or not right.isdigit():
        return None
    major, letter = int(left[:-2]), int(left[-2:])
    if major == 0 or not 1 <= letter <= 26:
        return None
    suffix = ""
    if len(right) > 5 and 1 <= int(right[-5:]) <= 26:
        suffix = chr(ord("a") + int(right[-5:]) - 1)
        right = right[:-5]
    return f"{major}{chr(ord('A') + letter - 1)}{int(right)}{suffix}", major


def encode_apple_build(build: str) -> str:
    """Inverse of :func:`decode_apple_build`: ``9B176`` -> ``902.176``."""
    m = re.fullmatch(r"(\d+)([A-Z])(\d+)([a-z]?)", build)
    if m is None:
        raise ValueError(f"not an Apple build string: {build!r}")
    major, letter, number, suffix = m.groups()
    tail = f"{ord(suffix) - ord('a') + 1:05d}" if suffix else ""
    return f"{int(major)}{ord(letter) - ord('A') + 1:02d}.{int(number)}{tail}"


@lru_cache(maxsize=4096)
def decode_user_agent(raw: str) -> UserAgent:
    """Classify one ``cs(User-Agent)`` value. Never raises."""
    text = raw.replace("+", " ").strip()
    m = _APPLE_RE.match(text)
    if m is not None:
        kind, hw, variant, left, right = m.groups()
        model = f"{kind}{hw}C{variant}"
        field = f"{left}.{right}"
        decoded = decode_apple_build(field)
        version = IOS_BUILDS.get(field, "")
        if not version and decoded is not None and decoded[1] in IOS_MAJOR_BY_BUILD_MAJOR:
            version = f"{IOS_MAJOR_BY_BUILD_MAJOR[decoded[1]]}.x"
        return UserAgent(raw, "iOS", model, APPLE_MODELS.get(model, model),
                         decoded[0] if decoded else "", version)
    lowered = text.lower()
    # Outlook for iOS and Android first: its UA contains "Android" too.
    if lowered.startswith("outlook-"):
        return UserAgent(raw, "Outlook", device=text.split("/")[0])
    if lowered.startswith(("msft-wp", "microsoft-wp", "msft-ppc")):
        return UserAgent(raw, "Windows Phone", device=text.split("/")[0])
    if lowered.startswith(("msft-win", "windows-mail")):
        return UserAgent(raw, "Windows Mail", device=text.split("/")[0])
    if lowered.startswith("touchdown"):
        return UserAgent(raw, "TouchDown", device=text.split("/")[0])
    am = _ANDROID_RE.search(text)
    if "android" in lowered or lowered.startswith("samsung-"):
        device = f"Android {am.group(1)}" if am else text.split("/")[0]
        return UserAgent(raw, "Android", device=device)
    return UserAgent(raw, "Other", device=text.split("/")[0] if text else "")
