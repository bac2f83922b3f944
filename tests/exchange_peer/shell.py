"""One WinRM shell = one psrpcore server runspace pool, plus its running pipelines.

psrpcore is not thread-safe, so every touch of the pool happens under the shell's
condition lock. Cmdlets run in a worker thread per pipeline and write through
:class:`Output`; HTTP threads answering Receive take the queued fragments per target
(the pool itself, or one pipeline), waiting up to the long-poll time.
"""

from __future__ import annotations

import collections
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import psrpcore
import psrpcore.types as pst
from psrpcore._payload import PSRPMessage, create_message

Target = uuid.UUID | None


class _Pool(psrpcore.ServerRunspacePool):
    def write_raw_output(self, pipeline_id: uuid.UUID, clixml: bytes) -> None:
        """Queue a pre-serialized PipelineOutput object.

        Mirrors ``RunspacePool.prepare_message`` (psrpcore 0.3.1, pinned) minus the
        serializer, which is far too slow for streaming tests (see objects.py).
        """
        msg_type = pst.PSRPMessageType.PipelineOutput
        data = create_message(False, msg_type, clixml, self.runspace_pool_id, pipeline_id)
        self._send_buffer.append(PSRPMessage(msg_type, bytearray(data), self.runspace_pool_id,
                                             pipeline_id, self._fragment_counter))


class Stopped(Exception):
    """The pipeline was stopped (ctrl_c, Terminate, shutdown) while the cmdlet ran."""


@dataclass
class PipelineRun:
    id: uuid.UUID
    pipe: psrpcore.ServerPipeline
    stop: threading.Event = field(default_factory=threading.Event)
    worker: threading.Thread | None = None
    finished: bool = False  #: the final PipelineState is queued
    objects: int = 0  #: objects written so far
    drop_pending: bool = False  #: drop the connection of the next Receive that drains it


class Shell:
    def __init__(self, shell_id: str, *, fragment_size: int, outbox_limit: int,
                 shutdown: threading.Event) -> None:
        self.id = shell_id
        self.pool = _Pool()
        self.cond = threading.Condition()
        self.outbox: dict[Target, collections.deque[bytes]] = collections.defaultdict(
            collections.deque)
        self.outbox_bytes: dict[Target, int] = collections.defaultdict(int)
        self.runs: dict[uuid.UUID, PipelineRun] = {}
        self.fragment_size = fragment_size
        self.outbox_limit = outbox_limit
        self.shutdown = shutdown
        self.commands_started = 0
        self.last_used = time.monotonic()

    # -- PSRP in and out (all under the lock)
    def feed(self, data: bytes, pipeline_id: Target = None, stream: str = "stdin") -> list:
        kind = psrpcore.StreamType.prompt_response if stream == "pr" else \
            psrpcore.StreamType.default
        events = []
        with self.cond:
            self.pool.receive_data(psrpcore.PSRPPayload(data, kind, pipeline_id))
            while (ev := self.pool.next_event()) is not None:
                events.append(ev)
            self._pump()
        return events

    def run(self, fn: Callable[[], object]) -> None:
        with self.cond:
            fn()
            self._pump()

    def _pump(self) -> None:
        while (payload := self.pool.data_to_send(self.fragment_size)) is not None:
            self.outbox[payload.pipeline_id].append(bytes(payload.data))
            self.outbox_bytes[payload.pipeline_id] += len(payload.data)
        self.cond.notify_all()

    def take(self, target: Target, timeout: float, max_bytes: int) -> tuple[list[bytes], bool]:
        """Wait for output of ``target``: (fragments, done). Done = final state delivered."""
        run = self.runs.get(target) if target else None
        with self.cond:
            self.cond.wait_for(
                lambda: self.outbox.get(target) or self.shutdown.is_set()
                or (run is not None and (run.finished or run.drop_pending)), timeout=timeout)
            chunks: list[bytes] = []
            size = 0
            box = self.outbox.get(target)
            while box and (not chunks or size + len(box[0]) <= max_bytes):
                chunk = box.popleft()
                chunks.append(chunk)
                size += len(chunk)
            self.outbox_bytes[target] -= size
            done = run is not None and run.finished and not box
            self.cond.notify_all()  # room for a waiting cmdlet
            return chunks, done

    def drained(self, target: Target) -> bool:
        with self.cond:
            return not self.outbox.get(target)

    def discard(self, target: Target) -> None:
        with self.cond:
            self.outbox.pop(target, None)
            self.outbox_bytes.pop(target, None)
            self.cond.notify_all()

    def touch(self) -> None:
        self.last_used = time.monotonic()

    # -- pipelines
    def stop_all(self) -> list[threading.Thread]:
        workers = []
        with self.cond:
            for run in self.runs.values():
                run.stop.set()
                if run.worker is not None:
                    workers.append(run.worker)
            self.cond.notify_all()
        return workers


class Output:
    """What a cmdlet worker uses to write to its pipeline's streams."""

    def __init__(self, shell: Shell, run: PipelineRun) -> None:
        self.shell = shell
        self.run = run
        self.delay = 0.0  #: per-object delay (slow-server fault)
        self.drop_after: int | None = None  #: drop-after fault

    @property
    def runspace_id(self) -> uuid.UUID:
        return self.shell.pool.runspace_pool_id

    @property
    def stopping(self) -> bool:
        return self.run.stop.is_set() or self.shell.shutdown.is_set()

    def check(self) -> None:
        if self.stopping:
            raise Stopped

    def sleep(self, seconds: float) -> None:
        if seconds > 0 and self.run.stop.wait(seconds):
            raise Stopped
        self.check()

    def raw_object(self, clixml: bytes) -> None:
        """Write one object, waiting while the client is behind (bounded memory)."""
        if self.delay:
            self.sleep(self.delay)
        shell, run = self.shell, self.run
        with shell.cond:
            shell.cond.wait_for(
                lambda: shell.outbox_bytes[run.id] < shell.outbox_limit or self.stopping)
            self.check()
            shell.pool.write_raw_output(run.id, clixml)
            shell._pump()
        run.objects += 1
        if self.drop_after is not None and run.objects == self.drop_after:
            self._wait_for_drop()

    def _wait_for_drop(self) -> None:
        shell, run = self.shell, self.run
        with shell.cond:
            run.drop_pending = True
            shell.cond.notify_all()
            shell.cond.wait_for(lambda: not run.drop_pending or self.stopping)
        self.check()

    def warning(self, message: str) -> None:
        self.check()
        self.shell.run(lambda: self.run.pipe.write_warning(message))

    def error(self, record: pst.ErrorRecord) -> None:
        self.check()
        self.shell.run(lambda: self.run.pipe.prepare_message(
            record, message_type=pst.PSRPMessageType.ErrorRecord))

    def fail(self, record: pst.ErrorRecord) -> None:
        # psrpcore has no public "fail"; the private state change sends PipelineState
        # Failed with the error record, as PowerShell does for a terminating error.
        self.shell.run(lambda: self.run.pipe._change_state(pst.PSInvocationState.Failed,
                                                           record))

    def complete(self) -> None:
        self.shell.run(self.run.pipe.complete)

    def stopped(self) -> None:
        self.shell.run(self.run.pipe.stop)
