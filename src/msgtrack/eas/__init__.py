"""ActiveSync (EAS) reply analysis: IIS W3C logs joined with message tracking.

The problem this package exists to catch (issue #6, eas-facts §1.5): an iOS 5 device on
Exchange 2010 replies to an S/MIME message with ``SmartReply`` instead of ``SendMail``,
and internal recipients may see a blank body. Nothing in the logs proves a body was
blank, so every finding is a *candidate*.

Modules, one per stage:

- :mod:`~msgtrack.eas.query`: plain and base64 ``cs-uri-query`` forms, ``&Log=`` tokens.
- :mod:`~msgtrack.eas.useragent`: user agent -> device, iOS build and version.
- :mod:`~msgtrack.eas.iis`: the streaming IIS W3C reader (:func:`read_iis`).
- :mod:`~msgtrack.eas.devices`: report A, reply/forward method per device.
- :mod:`~msgtrack.eas.replies`: report B, candidate blank encrypted replies.
- :mod:`~msgtrack.eas.report`: report rows -> the project's sinks.
"""

from msgtrack.eas.devices import DeviceSummary, device_rows, summarize_devices
from msgtrack.eas.iis import EasRequest, Side, read_iis
from msgtrack.eas.query import EasLog, EasQuery, LogToken, decode_log, decode_query
from msgtrack.eas.replies import (
    Candidate,
    MailboxMap,
    Verdict,
    Window,
    candidate_rows,
    find_blank_reply_candidates,
)
from msgtrack.eas.useragent import UserAgent, decode_user_agent

__all__ = [
    "Candidate",
    "DeviceSummary",
    "EasLog",
    "EasQuery",
    "EasRequest",
    "LogToken",
    "MailboxMap",
    "Side",
    "UserAgent",
    "Verdict",
    "Window",
    "candidate_rows",
    "decode_log",
    "decode_query",
    "decode_user_agent",
    "device_rows",
    "find_blank_reply_candidates",
    "read_iis",
    "summarize_devices",
]
