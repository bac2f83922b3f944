"""Get-MessageTrackingLog over WinRM with pypsrp: every server in parallel, in time slices,
nothing silently truncated.

How it stays honest:

* Each server's window is searched in consecutive slices, the first one hour wide. A
  slice is queried with ``-ResultSize <cap>``; if the answer hits the cap or the cmdlet
  warns that more results exist, it is queried again a quarter as wide. A quiet slice doubles
  the next one's width (up to a day), so a sparse 30-day window costs a few dozen
  commands rather than 720, and a busy one stays well under the cap.
* A slice's rows are emitted only once the slice has completed, so a retry after a
  dropped connection can never emit a row twice or lose one.
* Transient faults (shell quota, "shell not found", HTTP 500, dropped connections,
  timeouts) are retried with backoff on a fresh runspace pool. What still fails is
  reported per server and slice; the other servers still finish.

Exchange's endpoint is in no-language mode, so only ``add_cmdlet``/``add_parameter``
are used, never script text. pypsrp is not thread-safe: every worker thread owns its
own WSMan connection and RunspacePool.
"""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing
import os
import pickle
import queue
import re
import signal
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from msgtrack.errors import (
    AuthenticationFailed,
    CertificateUntrusted,
    EndpointNotFound,
    KerberosUnavailable,
    MsgtrackError,
    RemoteError,
    UsageError,
)
from msgtrack.events import TrackingEvent
from msgtrack.filters import Query
from msgtrack.report import RunReport

log = logging.getLogger(__name__)

# WS-Management fault codes Exchange/WinRM use (remoting-facts §6.2, §5).
FAULT_OPERATION_TIMEOUT = 2150858793
FAULT_SHELL_NOT_FOUND = 2150858843
FAULT_RESOURCE_URI = 2150858811
FAULT_SHELL_QUOTA = 2150859173
_TRANSIENT_FAULTS = {FAULT_SHELL_NOT_FOUND, FAULT_SHELL_QUOTA, FAULT_OPERATION_TIMEOUT}

#: How Exchange's cmdlet ends an answer it truncated (matched loosely: it may be localised).
_MORE_RESULTS_RE = re.compile(r"ResultSize", re.I)
_MISSING_PARAMETER_RE = re.compile(r"parameter cannot be found that matches parameter name '(\w+)'",
                                   re.I)
_INVALID_VALUE_RE = re.compile(r"is not a valid event ID|Cannot bind parameter|Cannot convert value",
                               re.I)

WORKER_KINDS = ("auto", "thread", "process")
#: "auto" runs worker processes from this many servers searched at once: one process's
#: GIL keeps up with two Exchange servers, not with more (exps/bench_remote.py).
AUTO_PROCESSES_FROM = 3

#: Exchange's default MessageTrackingLogMaxAge: what "no --start" means remotely.
DEFAULT_LOOKBACK = timedelta(days=30)


@dataclass(frozen=True)
class Connection:
    """How to reach Exchange's remote PowerShell endpoint (defaults are Exchange's own)."""

    auth: str = "kerberos"
    port: int | None = None  #: None: 80, or 443 with ssl
    ssl: bool = False
    ca_bundle: str | None = None
    insecure: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in repr, logs or reports
    connection_timeout: int = 30
    operation_timeout: int = 20
    read_timeout: int | None = None  #: None: operation_timeout + 10 (must exceed it)
    path: str = "PowerShell"
    configuration: str = "Microsoft.Exchange"
    certificate_pem: str | None = None
    certificate_key_pem: str | None = None
    culture: str = "en-US"
    #: Kerberos: the host name for the SPN (HTTP/<host>) when connecting by IP or alias.
    spn_host: str | None = None

    def wsman_kwargs(self, host: str) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "server": host,
            "port": self.port or (443 if self.ssl else 80),
            "ssl": self.ssl,
            "path": self.path,
            "auth": self.auth,
            "username": self.username,
            "password": self.password,
            "connection_timeout": self.connection_timeout,
            "operation_timeout": self.operation_timeout,
            "read_timeout": self.read_timeout or self.operation_timeout + 10,
            # Over HTTP, "auto" means WinRM message encryption: required for Kerberos,
            # NTLM and Negotiate, exactly as Exchange does it.
            "encryption": "auto",
            "no_proxy": False,
        }
        if self.spn_host:
            kwargs["negotiate_hostname_override"] = self.spn_host
        if self.ssl:
            kwargs["cert_validation"] = False if self.insecure else (self.ca_bundle or True)
        if self.auth == "basic" and not self.ssl:
            raise UsageError("--auth basic sends the password in clear text; it needs --ssl")
        if self.auth == "certificate":
            if not (self.ssl and self.certificate_pem and self.certificate_key_pem):
                raise UsageError("--auth certificate needs --ssl and a certificate and key")
            kwargs["certificate_pem"] = self.certificate_pem
            kwargs["certificate_key_pem"] = self.certificate_key_pem
        return kwargs


@dataclass(frozen=True)
class Plan:
    """Which servers, and how to cut the work."""

    servers: tuple[str, ...] = ()
    all_servers: bool = False
    #: The endpoint host to connect to; None means each server's own endpoint.
    connect: str | None = None
    #: Width of the first slice; later ones adapt between min_slice and max_slice.
    slice: timedelta = timedelta(hours=1)
    min_slice: timedelta = timedelta(seconds=1)
    max_slice: timedelta = timedelta(days=1)
    cap: int = 5000
    parallel: int = 4
    retries: int = 3
    backoff: float = 1.0
    #: Recycle a runspace pool after this many commands (Exchange's per-shell limit is ~1000).
    recycle_after: int = 400
    #: Give up on one slice (stop the pipeline) after this many seconds; None: no limit.
    slice_timeout: float | None = None
    #: After a Receive that brought fewer than ``poll_batch`` objects, wait this long before
    #: the next one (0: never wait).
    poll_pace: float = 0.05
    poll_batch: int = 64
    #: Where servers are searched: "thread" (one process), "process" (one worker process
    #: each, up to ``parallel``: decoding is CPU-bound, and a process escapes the GIL), or
    #: "auto": processes when AUTO_PROCESSES_FROM or more servers run at once.
    workers: str = "auto"

    def __post_init__(self) -> None:
        if self.workers not in WORKER_KINDS:
            raise UsageError(f"workers must be one of {', '.join(WORKER_KINDS)}")


@dataclass
class SliceAnswer:
    events: list[TrackingEvent]
    capped: bool
    warnings: list[str]


class Transient(Exception):
    """A failure worth retrying on a fresh pool."""


class FilterUnsupported(RemoteError):
    """The server can neither filter on this nor return the property to filter on."""


#: Parameters whose property an older server does not return either: no client fallback.
_NO_PROPERTY_WITHOUT_PARAMETER = {
    "NetworkMessageId": "Exchange 2013 and older neither filter on nor return NetworkMessageId; "
                        "search with --message-id instead",
}


class _ParameterUnsupported(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


# --------------------------------------------------------------------------- errors


def classify(exc: BaseException, host: str) -> BaseException:
    """Turn a pypsrp/requests/spnego exception into Transient or a MsgtrackError."""
    from pypsrp.exceptions import AuthenticationError, WinRMTransportError, WSManFaultError
    from requests import exceptions as rq

    if isinstance(exc, (MsgtrackError, Transient)):
        return exc
    if isinstance(exc, AuthenticationError):
        return AuthenticationFailed(f"authentication failed ({_short(exc)})", server=host)
    if isinstance(exc, rq.SSLError):
        return CertificateUntrusted(f"TLS certificate not trusted ({_short(exc)})", server=host)
    if isinstance(exc, WSManFaultError):
        if exc.code == FAULT_RESOURCE_URI:
            return EndpointNotFound("the Microsoft.Exchange configuration is not at this "
                                    "endpoint (WSMan fault 2150858811)", server=host)
        if exc.code in _TRANSIENT_FAULTS or exc.code is None:
            return Transient(f"WSMan fault {exc.code}: {_short(exc.reason or exc)}")
        return Transient(f"WSMan fault {exc.code}: {_short(exc.reason or exc)}")
    if isinstance(exc, WinRMTransportError):
        if exc.code == 404:
            return EndpointNotFound("HTTP 404: no /PowerShell endpoint here", server=host)
        if exc.code == 401:
            return AuthenticationFailed("HTTP 401 unauthorized", server=host)
        return Transient(f"HTTP {exc.code} from the server")
    if isinstance(exc, (rq.ConnectionError, rq.Timeout, rq.ChunkedEncodingError)):
        return Transient(f"connection failed: {type(exc).__name__}")
    name = type(exc).__name__
    module = type(exc).__module__
    if module.startswith(("spnego", "gssapi", "krb5")) or (
            isinstance(exc, ImportError) and "gssapi" in str(exc)):
        return KerberosUnavailable(f"Kerberos/SPNEGO failed ({name}: {_short(exc)})", server=host)
    if isinstance(exc, ValueError) and "encryption" in str(exc):
        return UsageError(str(exc))
    return RemoteError(f"{name}: {_short(exc)}", server=host)


def _short(exc: object) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


# --------------------------------------------------------------------------- session


def dt_element(value: datetime) -> ET.Element:
    """A ``<DT>`` value in UTC: never a culture-dependent string (remoting-facts §2.3)."""
    element = ET.Element("DT")
    element.text = value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"
    return element


class Session:
    """One WSMan connection + RunspacePool, owned by one thread; recycled on demand."""

    def __init__(self, host: str, conn: Connection, recycle_after: int, origin: str = "",
                 pace: float = 0.0, batch: int = 0) -> None:
        self.host = host
        #: Stamped on every event as its origin: the server queried with -Server.
        self.origin = origin
        self.conn = conn
        self.recycle_after = recycle_after
        self.pace = pace
        self.batch = batch
        self._pool: Any = None
        self._commands = 0

    def _open(self) -> Any:
        from pypsrp.powershell import RunspacePool
        from pypsrp.wsman import WSMan

        from msgtrack.sources._psrp_fast import install_fast_serializer

        try:
            wsman = WSMan(**self.conn.wsman_kwargs(self.host))
            pool = RunspacePool(wsman, configuration_name=self.conn.configuration)
            install_fast_serializer(pool, origin=self.origin, culture=self.conn.culture)
            pool.open()
        except Exception as exc:
            raise classify(exc, self.host) from None
        self._commands = 0
        return pool

    def pool(self) -> Any:
        if self._pool is not None and self._commands >= self.recycle_after:
            log.debug("%s: recycling the runspace pool after %d commands", self.host,
                      self._commands)
            self.close()
        if self._pool is None:
            self._pool = self._open()
        self._commands += 1
        return self._pool

    def discard(self) -> None:
        """Drop a pool that may be broken, without trusting it to close cleanly."""
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                pool.close()
            except Exception as exc:  # it is already broken; closing is best effort
                log.debug("%s: closing a broken pool failed: %s", self.host, type(exc).__name__)

    close = discard

    def run(self, commands: list[tuple[str, dict[str, Any]]], *,
            timeout: float | None = None, stop: threading.Event | None = None) -> SliceAnswer:
        """Run one cmdlet pipeline; stream output off pypsrp's buffer as it arrives."""
        from pypsrp.complex_objects import PSInvocationState
        from pypsrp.powershell import PowerShell

        ps = PowerShell(self.pool())
        for name, params in commands:
            ps.add_cmdlet(name)
            for key, value in params.items():
                ps.add_parameter(key, value)
        deadline = None if timeout is None else time.monotonic() + timeout
        events: list[Any] = []
        try:
            ps.begin_invoke()
            while ps.state == PSInvocationState.RUNNING:
                ps.poll_invoke()
                got = len(ps.output)
                if got:
                    # Take the rows out of pypsrp's list so memory stays flat.
                    batch, ps.output = ps.output, []
                    events.extend(batch)
                if (deadline is not None and time.monotonic() > deadline) or (
                        stop is not None and stop.is_set()):
                    ps.stop()
                    raise Transient(f"slice timed out after {timeout:g} s"
                                    if not (stop and stop.is_set()) else "stopped")
                if 0 < got < self.batch and ps.state == PSInvocationState.RUNNING:
                    # A server still searching answers each Receive with the few objects it
                    # has; every round trip costs encryption, XML and HTTP on both ends, so
                    # give it a moment to fill a bigger answer.
                    if stop is not None:
                        stop.wait(self.pace)
                    else:
                        time.sleep(self.pace)
            events.extend(ps.output)
            ps.output = []
        except (Transient, MsgtrackError):
            raise
        except Exception as exc:
            raise classify(exc, self.host) from None
        warnings = [str(getattr(w, "message", w)) for w in ps.streams.warning]
        errors = [_error_text(e) for e in ps.streams.error]
        try:
            ps.close()
        except Exception as exc:  # the answer is complete; a failed Terminate is not data loss
            log.debug("%s: closing the pipeline failed: %s", self.host, type(exc).__name__)
        if ps.state == PSInvocationState.FAILED or errors:
            _raise_pipeline_error(errors or ["the pipeline failed"])
        capped = any(_MORE_RESULTS_RE.search(w) for w in warnings)
        return SliceAnswer(events, capped, [w for w in warnings if not _MORE_RESULTS_RE.search(w)])


def _error_text(record: Any) -> str:
    # An ErrorRecord's str() is its ToString: the exception message ("A parameter cannot be
    # found…"); .message is only the category line ("InvalidArgument (…) [], …").
    text = str(record).strip()
    return text or str(getattr(record, "message", "") or getattr(record, "fq_error", ""))


def _raise_pipeline_error(errors: list[str]) -> None:
    text = "; ".join(errors)
    missing = _MISSING_PARAMETER_RE.search(text)
    if missing:
        raise _ParameterUnsupported(missing.group(1))
    if _INVALID_VALUE_RE.search(text):
        raise UsageError(f"the server refused the query: {_short(text)}")
    # A non-terminating error mid-stream (e.g. the log search service hiccuped) means the
    # answer may be partial: retry the slice rather than emit it.
    raise Transient(f"the cmdlet reported errors: {_short(text)}")


# --------------------------------------------------------------------------- search


@dataclass(frozen=True)
class _Msg:
    kind: str  # "events" | "problem" | "warn" | "retry" | "split" | "skipped" | "fatal" | "done"
    server: str
    payload: Any = None


class _ServerWorker:
    """Searches one server's window slice by slice and reports through ``inbox``.

    Holds only what pickles (no report, no callbacks), so it runs in a thread or, for
    ``workers="process"``, in a child process that talks to the parent through a
    multiprocessing queue."""

    def __init__(self, conn: Connection, plan: Plan, query: Query, stop: Any) -> None:
        self.conn = conn
        self.plan = plan
        self.query = query
        self.stop = stop

    def __getstate__(self) -> dict[str, Any]:
        # To a worker process without the stop event: it arrives by the initializer.
        return {**self.__dict__, "stop": None}

    def next_width(self, width: timedelta, found: int) -> timedelta:
        """The next slice's width after a complete one of ``width`` that held ``found``.

        Steer towards a quarter of the cap per answer: wide enough that quiet hours cost
        few commands (each one is a round trip and a log-file scan on the server), narrow
        enough that an uneven hour rarely hits the cap (which costs one query)."""
        plan = self.plan
        factor = min(2.0, max(0.5, max(plan.cap // 4, 1) / max(found, 1)))
        return self._clamp_width(width * factor)

    def _clamp_width(self, width: timedelta) -> timedelta:
        plan = self.plan
        whole = timedelta(seconds=int(width.total_seconds()))  # Start/End in whole seconds
        return min(max(whole, plan.min_slice), max(plan.max_slice, plan.slice))

    def run(self, server: str, start: datetime, end: datetime, inbox: Any) -> None:
        host = self.plan.connect or server
        session = Session(host, self.conn, self.plan.recycle_after, origin=server,
                          pace=self.plan.poll_pace, batch=self.plan.poll_batch)
        outcome: BaseException | None = None
        try:
            unsupported: set[str] = set()
            cursor, width = start, self.plan.slice
            while cursor < end and not self.stop.is_set():
                upto = min(cursor + width, end)
                try:
                    answer = self._slice_with_retries(session, server, cursor, upto, unsupported,
                                                      inbox)
                except (AuthenticationFailed, CertificateUntrusted, EndpointNotFound,
                        KerberosUnavailable, FilterUnsupported) as exc:
                    # No slice of this server can work: report it once, with what was left.
                    inbox.put(_Msg("problem", server, (
                        "server", server,
                        f"{exc} ([{_iso(cursor)}, {_iso(end)}) not searched)")))
                    inbox.put(_Msg("skipped", server, (end - cursor).total_seconds()))
                    outcome = exc
                    return
                except UsageError as exc:
                    inbox.put(_Msg("fatal", server, exc))
                    outcome = exc
                    return
                except (Transient, RemoteError) as exc:
                    inbox.put(_Msg("problem", server, (
                        "slice", f"{server} [{_iso(cursor)}, {_iso(upto)})",
                        f"failed after {self.plan.retries} retries: {exc}")))
                    outcome = outcome or exc
                    inbox.put(_Msg("skipped", server, (upto - cursor).total_seconds()))
                    cursor = upto
                    continue
                if answer is None:
                    # Capped: at least `cap` rows in this width, so a quarter of it should
                    # hold about a quarter cap. Query again from the same start.
                    width = self._clamp_width((upto - cursor) / 4)
                    inbox.put(_Msg("split", server))
                    continue
                inbox.put(_Msg("events", server, (answer.events,
                                                  (upto - cursor).total_seconds())))
                for warning in answer.warnings:
                    inbox.put(_Msg("warn", server, warning))
                cursor, width = upto, self.next_width(upto - cursor, len(answer.events))
        except BaseException as exc:  # a bug must not hang the consumer
            inbox.put(_Msg("problem", server, ("server", server, f"internal error: {exc!r}")))
            outcome = exc
        finally:
            session.close()
            inbox.put(_Msg("done", server, outcome))

    def _slice_with_retries(self, session: Session, server: str, start: datetime,
                            end: datetime, unsupported: set[str],
                            inbox: queue.Queue[_Msg]) -> SliceAnswer | None:
        """The slice's complete answer, or None if it hit the cap and must be split."""
        narrow_enough = end - start <= self.plan.min_slice
        cap: int | str = "Unlimited" if narrow_enough else self.plan.cap
        attempt = 0
        while True:
            params = self._parameters(server, start, end, cap, unsupported)
            try:
                answer = session.run([("Get-MessageTrackingLog", params)],
                                     timeout=self.plan.slice_timeout, stop=self.stop)
            except _ParameterUnsupported as exc:
                if exc.name in _NO_PROPERTY_WITHOUT_PARAMETER:
                    raise FilterUnsupported(f"no -{exc.name} parameter: "
                                            f"{_NO_PROPERTY_WITHOUT_PARAMETER[exc.name]}",
                                            server=server) from None
                if exc.name in unsupported:
                    raise RemoteError(f"parameter {exc.name} refused twice") from None
                unsupported.add(exc.name)
                inbox.put(_Msg("warn", server, f"the server has no -{exc.name} parameter "
                                               "(older Exchange); filtering on the client"))
                continue
            except Transient as exc:
                session.discard()
                attempt += 1
                if attempt > self.plan.retries or self.stop.is_set():
                    raise
                inbox.put(_Msg("retry", server))
                log.info("%s: retry %d of slice %s: %s", server, attempt, _iso(start), exc)
                time.sleep(self.plan.backoff * (2 ** (attempt - 1)))
                continue
            if not narrow_enough and (answer.capped or len(answer.events) >= self.plan.cap):
                return None
            events = [ev for ev in answer.events if isinstance(ev, TrackingEvent)]
            if len(events) != len(answer.events):
                inbox.put(_Msg("warn", server, f"{len(answer.events) - len(events)} objects "
                                               "were not MessageTrackingEvents and were skipped"))
            # Filters the server could not apply (several EventIds, decoded auth fields,
            # parameters this Exchange version lacks) are checked here.
            matches = self.query.client_side(params).matches
            answer.events = [ev for ev in events if matches(ev)]
            return answer

    def _parameters(self, server: str, start: datetime, end: datetime, cap: int | str,
                    unsupported: set[str]) -> dict[str, Any]:
        params: dict[str, Any] = {"Server": server, "Start": dt_element(start),
                                  "End": dt_element(end), "ResultSize": cap}
        for name, value in self.query.cmdlet_parameters().items():
            if name not in unsupported:
                params[name] = value
        return params


class _Workers:
    """Runs :class:`_ServerWorker` s in threads or in worker processes; one inbox either way."""

    def __init__(self, plan: Plan, servers: int) -> None:
        size = max(4, plan.parallel * 2)  # a few slices in flight: memory stays bounded
        count = max(1, min(plan.parallel, servers))
        self.processes = plan.workers == "process" or (
            plan.workers == "auto" and count >= AUTO_PROCESSES_FROM)
        self._futures: list[tuple[str, Future[None]]] = []
        self._said_done: set[str] = set()
        self._pending: list[_Msg] = []
        self.pool: ThreadPoolExecutor | ProcessPoolExecutor
        if self.processes:
            ctx = _process_context()
            self.inbox: Any = ctx.Queue(maxsize=size)
            self.stop: Any = ctx.Event()
            self.pool = ProcessPoolExecutor(
                max_workers=count, mp_context=ctx, initializer=_init_process,
                initargs=(self.inbox, self.stop, logging.getLogger().getEffectiveLevel(),
                          dict(os.environ)))
        else:
            self.inbox = queue.Queue(maxsize=size)
            self.stop = threading.Event()
            self.pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix="msgtrack-remote")

    def __enter__(self) -> _Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.pool.shutdown(wait=True, cancel_futures=True)
        if self.processes:
            self.inbox.close()
            self.inbox.join_thread()

    def submit(self, worker: _ServerWorker, server: str, start: datetime, end: datetime) -> None:
        if self.processes:
            fut = self.pool.submit(_run_in_process, worker, server, start, end)
        else:
            fut = self.pool.submit(worker.run, server, start, end, self.inbox)
        self._futures.append((server, fut))

    def get(self) -> _Msg:
        """The next message, however long it takes."""
        msg = self.poll(None)  # without a timeout, poll never gives up
        assert msg is not None
        return msg

    def poll(self, timeout: float | None) -> _Msg | None:
        """The next message; None after ``timeout`` seconds without one."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._pending:
                return self._pending.pop(0)
            try:
                msg: _Msg = self.inbox.get(timeout=0.25 if deadline is None else
                                           max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self._notice_dead_workers()
                if deadline is not None and time.monotonic() >= deadline and not self._pending:
                    return None
                continue
            if msg.kind == "done":
                self._said_done.add(msg.server)
            return msg

    def _notice_dead_workers(self) -> None:
        # A worker reports every failure itself; a future that raised means its process
        # died (killed, out of memory) before it could say "done".
        for server, fut in self._futures:
            if server in self._said_done or not fut.done() or fut.cancelled():
                continue
            exc = fut.exception()
            if exc is None:
                continue
            self._said_done.add(server)
            self._pending += [
                _Msg("problem", server, ("server", server, f"worker process failed: {exc!r}")),
                _Msg("done", server, exc)]


def _process_context() -> Any:
    # forkserver: workers fork from a clean process that has the WinRM client imported
    # once (never from this one, which may hold threads); spawn where there is no fork.
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["msgtrack.sources.remote", "msgtrack.sources._psrp_fast",
                                    "pypsrp.wsman"])
        return ctx
    return multiprocessing.get_context("spawn")


_process_inbox: Any = None
_process_stop: Any = None


class _InboxLogHandler(logging.handlers.QueueHandler):
    """Sends a worker process's log records to the parent, whose handlers (and password
    redaction) print them."""

    def enqueue(self, record: logging.LogRecord) -> None:
        inbox: Any = self.queue  # a multiprocessing queue: put() waits while it is full
        inbox.put(_Msg("log", "", record))


def _init_process(inbox: Any, stop: Any, level: int, environ: dict[str, str]) -> None:
    global _process_inbox, _process_stop
    _process_inbox, _process_stop = inbox, stop
    # The forkserver kept the environment of its own start; Kerberos (KRB5CCNAME,
    # KRB5_CLIENT_KTNAME) and proxies must be what the caller has now.
    os.environ.clear()
    os.environ.update(environ)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us through `stop`
    root = logging.getLogger()
    root.handlers[:] = [_InboxLogHandler(inbox)]
    root.setLevel(level)


class _PicklingInbox:
    """The inbox as a worker process puts to it: an exception that does not pickle (a
    library's odd constructor) would be dropped by the queue's feeder thread, and the
    parent would wait for its "done" forever, so it travels as its text instead."""

    def __init__(self, inbox: Any) -> None:
        self.inbox = inbox

    def put(self, msg: _Msg) -> None:
        if isinstance(msg.payload, BaseException):
            try:
                pickle.dumps(msg.payload)
            except Exception:
                msg = _Msg(msg.kind, msg.server, RemoteError(
                    f"{type(msg.payload).__name__}: {msg.payload}", server=msg.server))
        self.inbox.put(msg)


def _run_in_process(worker: _ServerWorker, server: str, start: datetime, end: datetime) -> None:
    worker.stop = _process_stop
    worker.run(server, start, end, _PicklingInbox(_process_inbox))


class RemoteSearch:
    """Run one Query against many servers; iterate :meth:`events` to stream results."""

    def __init__(self, conn: Connection, plan: Plan, query: Query, report: RunReport, *,
                 progress: Callable[[str, dict[str, int]], None] | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.conn = conn
        self.plan = plan
        self.query = query
        self.report = report
        self.progress = progress
        self._now = clock or (lambda: datetime.now(timezone.utc))

    # -- discovery -----------------------------------------------------------------

    def discover(self) -> list[str]:
        """Transport servers from Get-TransportService, through the --connect endpoint."""
        if not self.plan.connect:
            raise UsageError("--all-servers needs --connect HOST (an Exchange server's endpoint)")
        session = Session(self.plan.connect, self.conn, self.plan.recycle_after)
        try:
            answer = session.run([("Get-TransportService", {})])
        except Transient as exc:
            raise RemoteError(f"server discovery failed: {exc}", server=self.plan.connect) from None
        finally:
            session.close()
        names = sorted({_object_name(obj) for obj in answer.events} - {""})
        if not names:
            raise RemoteError("Get-TransportService returned no servers", server=self.plan.connect)
        return names

    # -- windows -------------------------------------------------------------------

    def window(self) -> tuple[datetime, datetime]:
        end = self.query.end or self._now()
        start = self.query.start or end - DEFAULT_LOOKBACK
        return start, end

    # -- running -------------------------------------------------------------------

    def events(self) -> Iterator[TrackingEvent]:
        servers = list(self.plan.servers)
        if self.plan.all_servers:
            servers = sorted(set(servers) | set(self.discover()))
            self.report.count("servers-discovered", len(servers))
        if not servers:
            raise UsageError("name a server: --server NAME (repeatable) or --all-servers")
        start, end = self.window()
        self._emit_progress("plan", {"servers": len(servers),
                                     "seconds": int((end - start).total_seconds()) * len(servers)})
        fatal: list[BaseException] = []
        failed_servers: dict[str, BaseException] = {}
        with _Workers(self.plan, len(servers)) as workers:
            worker = _ServerWorker(self.conn, self.plan, self.query, workers.stop)
            for server in servers:
                workers.submit(worker, server, start, end)
            remaining = len(servers)
            try:
                while remaining:
                    msg = workers.get()
                    if msg.kind == "done":
                        remaining -= 1
                        self.report.count("servers-tried")
                        if msg.payload is None:
                            self.report.count("servers-succeeded")
                        else:
                            failed_servers[msg.server] = msg.payload
                        self._emit_progress("server-done", {})
                    elif msg.kind == "events":
                        events, seconds = msg.payload
                        self.report.count("slices")
                        self.report.count("events", len(events))
                        self._emit_progress("slice", {"events": len(events), "seconds": seconds})
                        yield from events
                    elif msg.kind == "problem":
                        kind, where, text = msg.payload
                        self.report.problem(kind, where, text)
                        self._emit_progress("error", {})
                    elif msg.kind == "warn":
                        self.report.warn(f"{msg.server}: {msg.payload}")
                    elif msg.kind == "retry":
                        self.report.count("retries")
                    elif msg.kind == "split":
                        self.report.count("slices-split")
                    elif msg.kind == "skipped":  # time given up on: still progress
                        self._emit_progress("skipped", {"seconds": msg.payload})
                    elif msg.kind == "log":  # from a worker process
                        logging.getLogger(msg.payload.name).handle(msg.payload)
                    elif msg.kind == "fatal":
                        fatal.append(msg.payload)
                        workers.stop.set()
            finally:
                # The consumer stopped early or we failed: tell workers, then drain so
                # none blocks forever on a full queue.
                workers.stop.set()
                while remaining:
                    late = workers.poll(0.1)
                    if late is not None and late.kind == "done":
                        remaining -= 1
        if fatal:
            raise fatal[0]
        if failed_servers and len(failed_servers) == len(servers):
            first = next(iter(failed_servers.values()))
            if isinstance(first, MsgtrackError) and all(
                    type(e) is type(first) for e in failed_servers.values()):
                # Every server failed the same way (bad password, untrusted CA, wrong
                # endpoint): that is one error with one hint, not N partial results.
                raise first

    def _emit_progress(self, what: str, data: dict[str, int]) -> None:
        if self.progress is not None:
            self.progress(what, data)


def _object_name(obj: Any) -> str:
    for attr in ("adapted_properties", "extended_properties"):
        props = getattr(obj, attr, None) or {}
        for key in ("Name", "Identity"):
            if props.get(key):
                return str(props[key])
    return str(getattr(obj, "to_string", "") or "")


def _iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
