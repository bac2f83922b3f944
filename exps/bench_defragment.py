"""Fragments -> events: pypsrp 0.9.1's Fragmenter vs msgtrack's FastFragmenter.

    python exps/bench_defragment.py [--events N] [--rounds R]

Both sides use msgtrack's FastSerializer, so the difference is the reassembly and the
Message wrapping alone. N peer-rendered events are cut into 32 KiB PSRP fragments and
grouped into Receives of about 380 KB (what the peer sends for a 512,000-byte envelope);
each round measures both on the same Receives, in CPU time per event.
"""

from __future__ import annotations

import argparse
import struct
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pypsrp.powershell import Fragmenter  # noqa: E402

from msgtrack.sources._psrp_fast import FastFragmenter  # noqa: E402
from msgtrack.sources.clixml import FastSerializer  # noqa: E402
from tests.exchange_peer.objects import ObjectShape, render_tracking_event  # noqa: E402
from tests.exchange_peer.synthetic import make_events  # noqa: E402

PIPELINE_OUTPUT = 0x00041004
FRAGMENT_SIZE = 32_768
RECEIVE_SIZE = 380_000


def fragments(object_id: int, blob: bytes) -> bytes:
    parts = [blob[i:i + FRAGMENT_SIZE] for i in range(0, len(blob), FRAGMENT_SIZE)]
    return b"".join(struct.pack(">QQBI", object_id, n, (n == 0) | (n == len(parts) - 1) << 1,
                                len(part)) + part for n, part in enumerate(parts))


def receives(n: int) -> list[bytes]:
    start = datetime(2026, 11, 27, tzinfo=timezone.utc)
    shape = ObjectShape(computer_name="ex01.contoso.com")
    ids = uuid.UUID(int=1).bytes_le + uuid.UUID(int=2).bytes_le
    out, current = [], b""
    for i, ev in enumerate(make_events(n, "EX01", start=start, step=timedelta(seconds=10))):
        blob = (struct.pack("<II", 1, PIPELINE_OUTPUT) + ids + b"\xef\xbb\xbf"
                + render_tracking_event(ev, shape, uuid.UUID(int=3)))
        wire = fragments(i + 1, blob)
        if current and len(current) + len(wire) > RECEIVE_SIZE:
            out.append(current)
            current = b""
        current += wire
    return [*out, current]


def per_event_us(cls: type, data: list[bytes]) -> float:
    fragmenter = cls(FRAGMENT_SIZE, FastSerializer(origin="EX01"))
    began = time.process_time()
    count = sum(len(fragmenter.defragment(r)) for r in data)
    return (time.process_time() - began) / count * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    data = receives(args.events)
    ratios = []
    for _ in range(args.rounds):
        theirs, ours = per_event_us(Fragmenter, data), per_event_us(FastFragmenter, data)
        ratios.append(theirs / ours)
        print(f"pypsrp Fragmenter {theirs:.1f} us/event, FastFragmenter {ours:.1f} us/event "
              f"({theirs - ours:.1f} us saved, {theirs / ours:.2f}x)")
    print(f"median {sorted(ratios)[len(ratios) // 2]:.2f}x over {len(data)} Receives")
    return 0


if __name__ == "__main__":
    sys.exit(main())
