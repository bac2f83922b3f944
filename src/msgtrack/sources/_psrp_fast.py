"""The receive side of pypsrp 0.9.1 for tracking output: events straight off the wire.

Separate from :mod:`msgtrack.sources.clixml` because it needs pypsrp's PowerShell client
(and with it requests), which reading an Export-Clixml file never does.
"""

from __future__ import annotations

import struct
from datetime import tzinfo
from typing import Any

from pypsrp.exceptions import FragmentError
from pypsrp.messages import Message, MessageType, PipelineOutput
from pypsrp.powershell import Fragmenter
from pypsrp.serializer import Serializer

from msgtrack.errors import MsgtrackError
from msgtrack.sources.clixml import FastSerializer, is_event_text

_FRAGMENT = struct.Struct(">QQBI")  # object id, fragment id, start/end flags, length
_PIPELINE_OUTPUT = struct.pack("<I", MessageType.PIPELINE_OUTPUT)
_BOM = b"\xef\xbb\xbf"


class _OutputMessage:
    """What ``PowerShell.poll_invoke`` reads of a PIPELINE_OUTPUT message
    (``message_type`` and ``message.data.data``), without pypsrp's Message around it."""

    __slots__ = ("data",)
    message_type = MessageType.PIPELINE_OUTPUT

    def __init__(self, value: Any) -> None:
        self.data = PipelineOutput(value)


class FastFragmenter(Fragmenter):  # type: ignore[misc]  # pypsrp is untyped here
    """pypsrp 0.9.1's Fragmenter, reassembling a Receive's fragments in one pass.

    pypsrp re-slices the rest of the buffer after every fragment (quadratic in the
    answer's size) and builds a full Message per object: a 31-entry dispatch dict, four
    UUID parses and a debug string of the whole object, even with logging off. Tracking
    events, almost every message here, go straight to the converter; every other message
    is handed to pypsrp's ``Message.unpack`` unchanged.
    """

    serializer: FastSerializer

    def defragment(self, data: bytes) -> list[Any]:
        messages = []
        buffers = self.incoming_buffer
        pos, size = 0, len(data)
        while pos < size:
            object_id, fragment_id, flags, length = _FRAGMENT.unpack_from(data, pos)
            pos += _FRAGMENT.size
            chunk = data[pos:pos + length]
            pos += length
            buffer = buffers.get(object_id)
            expected = 0 if buffer is None else buffer["id"]
            if fragment_id != expected:
                raise FragmentError(
                    f"Fragment Fragment Id: {fragment_id} != Expected Fragment Id: {expected}")
            start, end = flags & 1, flags & 2
            if start and end:
                messages.append(self._message(chunk))
            elif start:
                buffers[object_id] = {"data": [chunk], "id": 1}
            else:
                assert buffer is not None  # a middle or end fragment has a start before it
                buffer["data"].append(chunk)
                buffer["id"] += 1
                if end:
                    del buffers[object_id]
                    messages.append(self._message(b"".join(buffer["data"])))
        return messages

    def _message(self, blob: bytes) -> Any:
        if blob[4:8] == _PIPELINE_OUTPUT:
            text = blob[43 if blob[40:43] == _BOM else 40:].decode("utf-8")
            if is_event_text(text):
                event = self.serializer.event_or_none(text)
                # A failed conversion (already counted) goes pypsrp's generic way, once.
                return _OutputMessage(event if event is not None
                                      else Serializer.deserialize(self.serializer, text))
        return Message.unpack(blob, self.serializer)


def install_fast_serializer(pool: Any, *, origin: str = "", culture: str = "en-US",
                            tz: str | tzinfo | None = None) -> FastSerializer:
    """Swap a :class:`FastSerializer` and a :class:`FastFragmenter` into a pypsrp 0.9.1
    ``RunspacePool`` (before or after ``open()``); its pipelines' ``ps.output`` then holds
    TrackingEvents for tracking events. Uses the private ``pool._serializer`` and
    ``pool._fragmenter``, hence the pin on pypsrp==0.9.1; raises MsgtrackError if they
    are not there."""
    old = getattr(pool, "_serializer", None)
    fragmenter = getattr(pool, "_fragmenter", None)
    if not isinstance(old, Serializer) or not isinstance(fragmenter, Fragmenter) \
            or fragmenter.serializer is not old:
        from importlib.metadata import version

        raise MsgtrackError(
            f"cannot install the fast CLIXML converter: pypsrp {version('pypsrp')} has no "
            "RunspacePool._serializer shared with _fragmenter.serializer (msgtrack needs "
            "pypsrp==0.9.1)",
            hint="install the pinned version: pip install pypsrp==0.9.1",
        )
    fast = FastSerializer(origin=origin, culture=culture, tz=tz)
    fast.cipher = getattr(old, "cipher", None)  # the session key, if already exchanged
    pool._serializer = fast
    faster = FastFragmenter(1, fast)
    faster.max_size = fragmenter.max_size
    faster.outgoing_counter = fragmenter.outgoing_counter
    # Partial objects of a Receive in progress are kept in FastFragmenter's own shape.
    faster.incoming_buffer = {k: {"data": [v["data"]], "id": v["id"]}
                              for k, v in fragmenter.incoming_buffer.items()}
    pool._fragmenter = faster
    return fast
