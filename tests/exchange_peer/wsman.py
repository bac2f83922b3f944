"""The WS-Management (MS-WSMV shell) envelopes pypsrp sends and expects.

Only what pypsrp 0.9.1 uses: Create, Command, Send, Receive, Signal and Delete on
``http://schemas.microsoft.com/powershell/<configuration>``. Every response carries
``wsa:RelatesTo`` = the request's MessageID; pypsrp refuses a response without it.
"""

from __future__ import annotations

import base64
import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from xml.sax.saxutils import escape

from .faults import MESSAGES

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "p": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
    "ps": "http://schemas.microsoft.com/powershell",
}
SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/"
TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer/"
FAULT_ACTION = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
EXCHANGE_RESOURCE = "http://schemas.microsoft.com/powershell/Microsoft.Exchange"
STATE_DONE = SHELL + "CommandState/Done"
STATE_RUNNING = SHELL + "CommandState/Running"
SIGNAL_TERMINATE = SHELL + "signal/Terminate"
SIGNAL_CTRL_C = "powershell/signal/ctrl_c"

SHELL_RESOURCE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"

ACTIONS = {
    TRANSFER + "Create": "Create",
    TRANSFER + "Get": "Get",
    TRANSFER + "Delete": "Delete",
    SHELL + "Command": "Command",
    SHELL + "Send": "Send",
    SHELL + "Receive": "Receive",
    SHELL + "Signal": "Signal",
}
_RESPONSE_ACTION = {
    "Create": TRANSFER + "CreateResponse",
    "Get": TRANSFER + "GetResponse",
    "Delete": TRANSFER + "DeleteResponse",
    "Command": SHELL + "CommandResponse",
    "Send": SHELL + "SendResponse",
    "Receive": SHELL + "ReceiveResponse",
    "Signal": SHELL + "SignalResponse",
}
_DURATION = re.compile(r"PT(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?\Z")


class BadRequest(Exception):
    """A request the peer cannot parse (answered with HTTP 400)."""


@dataclass
class Request:
    action: str  #: short name: Create, Command, ... or the full URI if unknown
    message_id: str
    resource_uri: str
    shell_id: str | None
    operation_timeout: float
    max_envelope_size: int
    body: ET.Element

    def find(self, path: str) -> ET.Element | None:
        return self.body.find(path, NS)


def parse_request(data: bytes) -> Request:
    try:
        doc = ET.fromstring(data)
    except ET.ParseError as e:
        raise BadRequest(f"not XML: {e}") from None
    header = doc.find("s:Header", NS)
    body = doc.find("s:Body", NS)
    if header is None or body is None:
        raise BadRequest("not a SOAP envelope")

    def text(path: str) -> str | None:
        el = header.find(path, NS)
        return el.text if el is not None else None

    action = text("a:Action") or ""
    message_id = text("a:MessageID")
    if not message_id:
        raise BadRequest("no MessageID")
    timeout = 60.0
    m = _DURATION.match(text("w:OperationTimeout") or "")
    if m and (m.group(1) or m.group(2)):
        timeout = float(m.group(1) or 0) * 60 + float(m.group(2) or 0)
    shell = header.find("w:SelectorSet/w:Selector[@Name='ShellId']", NS)
    return Request(
        action=ACTIONS.get(action, action),
        message_id=message_id,
        resource_uri=text("w:ResourceURI") or "",
        shell_id=shell.text if shell is not None else None,
        operation_timeout=timeout,
        max_envelope_size=int(text("w:MaxEnvelopeSize") or 153600),
        body=body,
    )


def envelope(action: str, relates_to: str, body: str) -> bytes:
    return (
        f'<s:Envelope xml:lang="en-US" xmlns:s="{NS["s"]}" xmlns:a="{NS["a"]}" '
        f'xmlns:x="{NS["x"]}" xmlns:w="{NS["w"]}" xmlns:rsp="{NS["rsp"]}" xmlns:p="{NS["p"]}">'
        f"<s:Header><a:Action>{action}</a:Action>"
        f"<a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>"
        "<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>"
        f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo></s:Header>"
        f"<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def response(request: Request, body: str) -> bytes:
    return envelope(_RESPONSE_ACTION.get(request.action, request.action), request.message_id,
                    body)


def fault(relates_to: str, code: int, message: str | None = None, *,
          subcode: str = "InternalError", machine: str = "127.0.0.1") -> bytes:
    """A SOAP fault with a ``WSManFault`` detail, as WinRM/IIS send with HTTP 500."""
    text = escape(message or MESSAGES.get(code, f"WS-Management fault {code}."))
    body = (
        "<s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode>"
        f"<s:Value>w:{subcode}</s:Value></s:Subcode></s:Code>"
        f'<s:Reason><s:Text xml:lang="en-US">{text}</s:Text></s:Reason><s:Detail>'
        f'<f:WSManFault xmlns:f="{NS["f"]}" Code="{code}" Machine="{escape(machine)}">'
        f"<f:Message>{text}</f:Message></f:WSManFault></s:Detail></s:Fault>"
    )
    return envelope(FAULT_ACTION, relates_to, body)


def create_response(request: Request, shell_id: str, address: str) -> bytes:
    uri = escape(request.resource_uri)
    return response(request, (
        f"<x:ResourceCreated><a:Address>{escape(address)}</a:Address><a:ReferenceParameters>"
        f"<w:ResourceURI>{uri}</w:ResourceURI><w:SelectorSet>"
        f'<w:Selector Name="ShellId">{shell_id}</w:Selector></w:SelectorSet>'
        "</a:ReferenceParameters></x:ResourceCreated>"
        f"<rsp:Shell><rsp:ShellId>{shell_id}</rsp:ShellId><rsp:ResourceUri>{uri}</rsp:ResourceUri>"
        "<rsp:InputStreams>stdin pr</rsp:InputStreams><rsp:OutputStreams>stdout</rsp:OutputStreams>"
        "</rsp:Shell>"
    ))


def receive_response(request: Request, command_id: str | None, chunks: list[bytes],
                     done: bool) -> bytes:
    cattr = f' CommandId="{command_id}"' if command_id else ""
    streams = "".join(
        f'<rsp:Stream Name="stdout"{cattr}>{base64.b64encode(c).decode()}</rsp:Stream>'
        for c in chunks
    )
    state = ""
    if command_id:
        state = (f'<rsp:CommandState{cattr} State="{STATE_DONE if done else STATE_RUNNING}">'
                 f'{"<rsp:ExitCode>0</rsp:ExitCode>" if done else ""}</rsp:CommandState>')
    return response(request, f"<rsp:ReceiveResponse>{streams}{state}</rsp:ReceiveResponse>")
