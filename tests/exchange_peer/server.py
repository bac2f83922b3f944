"""The peer: HTTP(S) on loopback, authentication, WS-Management actions, counters.

``ExchangePeer(config).start()`` serves ``/PowerShell`` on an ephemeral port until
``close()``, which ends every connection, pipeline and thread it started.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import socket
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import psrpcore
import psrpcore.types as pst
import spnego.exceptions

from . import wsman
from .auth import NTLM_USERS, ConnectionAuth, check_basic, encrypted_protocol
from .config import PeerConfig
from .exchange import Runspace, error_record
from .faults import (
    ACTION_NOT_SUPPORTED,
    MESSAGES,
    OPERATION_TIMED_OUT,
    QUOTA_MAX_OPERATIONS,
    QUOTA_MAX_SHELLS,
    RESOURCE_NOT_FOUND,
    SHELL_NOT_FOUND,
)
from .shell import Output, PipelineRun, Shell
from .stats import CommandCall, CommandRecord, PeerStats

log = logging.getLogger(__name__)

_DROP = object()  #: answer: close the connection without a response
_TEXT_500 = object()  #: answer: HTTP 500 with a non-XML body
#: HTTP.sys's page for a path nothing listens on (not well-formed XML, as on Windows).
_NOT_FOUND_PAGE = (
    b'<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN""http://www.w3.org/TR/html4/strict.dtd">'
    b'\r\n<HTML><HEAD><TITLE>Not Found</TITLE>\r\n<META HTTP-EQUIV="Content-Type" '
    b'Content="text/html; charset=us-ascii"></HEAD>\r\n<BODY><h2>Not Found</h2>\r\n<hr><p>'
    b"HTTP Error 404. The requested resource is not found.</p>\r\n</BODY></HTML>\r\n")


# --------------------------------------------------------------------------- HTTP


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: NTLM contexts live per connection
    disable_nagle_algorithm = True  # headers and body go out in two writes
    server: _HTTPServer

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(10)
            self.request.do_handshake()
            self.request.settimeout(None)
        super().setup()
        self.conn_auth: ConnectionAuth | None = None
        with self.server.peer._lock:
            self.server.peer.stats.connections += 1

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("%s " + format, self.address_string(), *args)

    def do_POST(self) -> None:  # noqa: N802
        self.server.peer._handle(self)

    def do_GET(self) -> None:  # noqa: N802
        self.reply(404 if self._path() != "/powershell" else 405, b"", "text/html")

    def _path(self) -> str:
        return urlsplit(self.path).path.rstrip("/").casefold()

    def reply(self, status: int, body: bytes = b"", content_type: str | None = None,
              headers: list[tuple[str, str]] | None = None) -> None:
        self.send_response(status)
        for k, v in headers or ():
            self.send_header(k, v)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins every connection thread

    def __init__(self, peer: ExchangePeer, address: tuple[str, int],
                 ssl_context: ssl.SSLContext | None) -> None:
        self.peer = peer
        self.ssl_context = ssl_context
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        if self.ssl_context is not None:
            # The handshake runs in the connection's thread (_Handler.setup).
            sock = self.ssl_context.wrap_socket(sock, server_side=True,
                                                do_handshake_on_connect=False)
        with self.sockets_lock:
            self.open_sockets.add(sock)
        return sock, addr

    def shutdown_request(self, request: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self.sockets_lock:
            socks = list(self.open_sockets)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        # TLS handshakes a client refuses and connections it drops are normal here.
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


# --------------------------------------------------------------------------- the peer


class ExchangePeer:
    def __init__(self, config: PeerConfig | None = None) -> None:
        self.config = config or PeerConfig()
        self.stats = PeerStats()
        self.shells: dict[str, Shell] = {}
        self._lock = threading.RLock()
        self._shutdown = threading.Event()
        self._workers: list[threading.Thread] = []
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._ntlm_keys: list[tuple] | None = None

    # -- lifecycle
    def start(self) -> ExchangePeer:
        cfg = self.config
        context = None
        if cfg.tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cfg.tls.cert_pem, cfg.tls.key_pem)
        if cfg.auth in ("ntlm", "negotiate"):
            self._ntlm_keys = NTLM_USERS.register(cfg.domain, cfg.username, cfg.password,
                                                  cfg.servers[0].domain)
        self._httpd = _HTTPServer(self, (cfg.host, cfg.port), context)
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        name=f"exchange-peer:{self.port}")
        self._thread.start()
        log.info("exchange peer listening on %s", self.url)
        return self

    def close(self) -> None:
        """Stop everything this peer started; returns when all its threads have ended."""
        if self._httpd is None:
            return
        self._shutdown.set()
        with self._lock:
            shells = list(self.shells.values())
        for shell in shells:
            shell.stop_all()
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        assert self._thread is not None
        self._thread.join()
        for worker in list(self._workers):
            worker.join(timeout=10)
        if self._ntlm_keys is not None:
            NTLM_USERS.unregister(self._ntlm_keys)
            self._ntlm_keys = None
        self._httpd = None

    def __enter__(self) -> ExchangePeer:
        return self.start() if self._httpd is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- how to reach it
    @property
    def host(self) -> str:
        return self.config.host

    @property
    def port(self) -> int:
        assert self._httpd is not None, "peer not started"
        return self._httpd.server_address[1]

    @property
    def scheme(self) -> str:
        return "https" if self.config.tls else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}/PowerShell"

    def wsman_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """Keyword arguments for ``pypsrp.wsman.WSMan`` that reach this peer."""
        cfg = self.config
        tls = cfg.tls is not None
        auth = "basic" if cfg.auth == "none" else cfg.auth
        kwargs: dict[str, Any] = {
            "server": self.host, "port": self.port, "path": "PowerShell", "ssl": tls,
            "auth": auth, "password": cfg.password,
            "username": (cfg.username if auth == "basic"
                         else f"{cfg.username}@{cfg.kerberos_realm}" if auth == "kerberos"
                         else f"{cfg.domain}\\{cfg.username}"),
            # Basic over plain HTTP cannot be message-encrypted (pypsrp refuses "auto").
            "encryption": "never" if auth == "basic" and not tls else "auto",
            "operation_timeout": 5, "read_timeout": 15, "connection_timeout": 5,
        }
        if auth == "kerberos":
            kwargs["negotiate_hostname_override"] = cfg.service_host
        if tls:
            kwargs["cert_validation"] = cfg.tls.ca_pem or True  # type: ignore[union-attr]
        kwargs.update(overrides)
        return kwargs

    # -- one HTTP request
    def _handle(self, h: _Handler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        if h._path() != "/powershell":
            h.reply(404, _NOT_FOUND_PAGE, "text/html; charset=us-ascii")
            return
        extra_headers = self._authenticate(h)
        if extra_headers is None:
            return
        if not body:  # pypsrp's first, empty POST only sets up the security context
            h.reply(200, b"", None, extra_headers)
            return
        protocol = encrypted_protocol(h.headers.get("Content-Type", ""))
        try:
            if protocol is not None:
                with self._lock:
                    self.stats.encrypted_requests += 1
                    self.stats.encryption_protocols[protocol] += 1
                if h.conn_auth is None or not h.conn_auth.complete:
                    raise ValueError("encrypted body without a security context")
                soap = h.conn_auth.unwrap(body)
            else:
                soap = body
            request = wsman.parse_request(soap)
        except (ValueError, wsman.BadRequest, spnego.exceptions.SpnegoError) as e:
            log.debug("bad request: %s", e)
            h.reply(400, b"Bad Request", "text/plain")
            return
        status, answer = self._dispatch(request)
        if answer is _DROP:
            h.drop()
            return
        if answer is _TEXT_500:
            h.reply(500, b"The page cannot be displayed because an internal server error has "
                    b"occurred.", "text/html", extra_headers)
            return
        assert isinstance(answer, bytes)
        with self._lock:
            self.stats.largest_response = max(self.stats.largest_response, len(answer))
        if protocol is not None:
            assert h.conn_auth is not None
            content_type, data = h.conn_auth.wrap(answer, protocol)
            h.reply(status, data, content_type, extra_headers)
        else:
            h.reply(status, answer, "application/soap+xml;charset=UTF-8", extra_headers)

    def _authenticate(self, h: _Handler) -> list[tuple[str, str]] | None:
        """Extra response headers when the request may proceed; None when answered (401)."""
        cfg = self.config
        header = h.headers.get("Authorization", "")
        if cfg.auth == "none":
            return []
        if cfg.auth == "basic":
            if check_basic(header, cfg.username, cfg.password, cfg.domain):
                return []
            if header:
                self._count_auth_failure()
            h.reply(401, b"", None, [("WWW-Authenticate", 'Basic realm="WSMAN"')])
            return None
        scheme = {"ntlm": "NTLM", "kerberos": "Kerberos"}.get(cfg.auth, "Negotiate")
        if header.split(" ", 1)[0].casefold() in ("negotiate", "ntlm", "kerberos") \
                and " " in header:
            if h.conn_auth is None:
                h.conn_auth = ConnectionAuth(cfg.auth)
            try:
                result = h.conn_auth.step(header)
            except (spnego.exceptions.SpnegoError, ValueError):
                self._count_auth_failure()
                h.reply(401, b"", None, [("WWW-Authenticate", scheme)])
                return None
            token = (f"{scheme} {base64.b64encode(result.token).decode()}"
                     if result.token else None)
            if not result.complete:
                h.reply(401, b"", None, [("WWW-Authenticate", token or scheme)])
                return None
            # SPNEGO ends with a mechListMIC the client must see, or it fails to unwrap.
            return [("WWW-Authenticate", token)] if token else []
        if h.conn_auth is not None and h.conn_auth.complete:
            return []
        h.reply(401, b"", None, [("WWW-Authenticate", scheme)])
        return None

    def _count_auth_failure(self) -> None:
        with self._lock:
            self.stats.auth_failures += 1

    # -- WS-Management
    def _dispatch(self, req: wsman.Request) -> tuple[int, object]:
        with self._lock:
            self.stats.requests[req.action] += 1
        # pool.is_alive() sends Get on the generic shell resource.
        resources = {wsman.EXCHANGE_RESOURCE.casefold()} | (
            {wsman.SHELL_RESOURCE.casefold()} if req.action == "Get" else set())
        if req.resource_uri.casefold() not in resources:
            return 500, self._fault(
                req, RESOURCE_NOT_FOUND,
                f"The WS-Management service cannot process the request. The resource URI "
                f"({req.resource_uri}) was not found in the WS-Management catalog. The catalog "
                "contains the metadata that describes resources, or logical endpoints.",
                subcode="DestinationUnreachable")
        fault = self.config.faults.for_request(req.action)
        if fault is not None:
            log.debug("injecting %s on %s", fault.kind, req.action)
            if fault.kind == "wsman-fault":
                message = fault.message or MESSAGES.get(fault.code, "").format(
                    limit=self.config.max_shells or 5, shell=req.shell_id or "")
                return 500, self._fault(req, fault.code, message or None)
            if fault.kind == "http-500-text":
                return 500, _TEXT_500
            if fault.kind == "drop-connection":
                return 0, _DROP
            if fault.kind == "shell-not-found":
                if req.shell_id:
                    self._remove_shell(req.shell_id)
                return 500, self._shell_not_found(req)
            if fault.kind == "delay":
                self._shutdown.wait(fault.delay)
        action = {
            "Create": self._create, "Command": self._command, "Send": self._send,
            "Receive": self._receive, "Signal": self._signal, "Delete": self._delete,
            "Get": self._get,
        }.get(req.action)
        if action is None:
            return 500, self._fault(req, ACTION_NOT_SUPPORTED,
                                    f"The action {req.action} is not supported.",
                                    subcode="ActionNotSupported")
        if req.action == "Create":
            return action(req, None)
        shell = self._shell(req.shell_id)
        if shell is None:
            return 500, self._shell_not_found(req)
        shell.touch()
        return action(req, shell)

    def _fault(self, req: wsman.Request, code: int, message: str | None = None, *,
               subcode: str = "InternalError") -> bytes:
        with self._lock:
            self.stats.faults[code] += 1
        return wsman.fault(req.message_id, code, message, subcode=subcode)

    def _shell_not_found(self, req: wsman.Request) -> bytes:
        return self._fault(req, SHELL_NOT_FOUND,
                           MESSAGES[SHELL_NOT_FOUND].format(shell=req.shell_id or ""),
                           subcode="InvalidSelectors")

    def _shell(self, shell_id: str | None) -> Shell | None:
        with self._lock:
            shell = self.shells.get(shell_id or "")
        idle = self.config.shell_idle_timeout
        if shell is not None and idle is not None and time.monotonic() - shell.last_used > idle:
            self._remove_shell(shell.id)
            return None
        return shell

    def _remove_shell(self, shell_id: str) -> None:
        with self._lock:
            shell = self.shells.pop(shell_id, None)
            self.stats.shells_open = len(self.shells)
        if shell is not None:
            shell.stop_all()

    def _create(self, req: wsman.Request, _: None) -> tuple[int, object]:
        cfg = self.config
        with self._lock:
            if cfg.max_shells is not None and len(self.shells) >= cfg.max_shells:
                return 500, self._fault(req, QUOTA_MAX_SHELLS,
                                        MESSAGES[QUOTA_MAX_SHELLS].format(limit=cfg.max_shells))
        el = req.find("rsp:Shell")
        creation = el.find("ps:creationXml", wsman.NS) if el is not None else None
        if el is None or creation is None or not creation.text:
            return 500, self._fault(req, 2150858882,
                                    "The creationXml of the shell is missing.",
                                    subcode="SchemaValidationError")
        shell_id = (el.get("ShellId") or str(uuid.uuid4())).upper()
        shell = Shell(shell_id, fragment_size=cfg.fragment_size, outbox_limit=cfg.outbox_limit,
                      shutdown=self._shutdown)
        shell.feed(base64.b64decode(creation.text))
        with self._lock:
            self.shells[shell_id] = shell
            self.stats.shells_created += 1
            self.stats.shells_open = len(self.shells)
            self.stats.max_shells_open = max(self.stats.max_shells_open, len(self.shells))
        return 200, wsman.create_response(req, shell_id, self.url)

    def _command(self, req: wsman.Request, shell: Shell) -> tuple[int, object]:
        limit = self.config.max_commands_per_shell
        if limit is not None and shell.commands_started >= limit:
            return 500, self._fault(req, QUOTA_MAX_OPERATIONS)
        line = req.find("rsp:CommandLine")
        args = line.find("rsp:Arguments", wsman.NS) if line is not None else None
        if line is None or args is None:
            return 500, self._fault(req, 2150858882, "The command is missing.",
                                    subcode="SchemaValidationError")
        command_id = (line.get("CommandId") or str(uuid.uuid4())).upper()
        pid = uuid.UUID(command_id)
        with shell.cond:
            # psrpcore needs the pipeline before its CreatePipeline message arrives.
            run = PipelineRun(pid, psrpcore.ServerPipeline(shell.pool, pid))
            shell.runs[pid] = run
            shell.commands_started += 1
        self._start_ready(shell, shell.feed(base64.b64decode(args.text or ""), pid))
        return 200, wsman.response(
            req, f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId>"
            "</rsp:CommandResponse>")

    def _start_ready(self, shell: Shell, events: list) -> None:
        for ev in events:
            if isinstance(ev, psrpcore.CreatePipelineEvent):
                run = shell.runs[ev.pipeline_id]
                self._start_worker(shell, run, ev.pipeline.commands)

    def _start_worker(self, shell: Shell, run: PipelineRun, commands: list) -> None:
        calls = tuple(CommandCall(c.command_text, c.is_script, tuple(c.parameters))
                      for c in commands)
        record = CommandRecord(shell.id, str(run.id).upper(), calls)
        with self._lock:
            self.stats.commands.append(record)

        def work() -> None:
            try:
                shell.run(run.pipe.start)
                record.state = Runspace(self.config, Output(shell, run)).run(commands)
            except Exception as e:  # a bug in the peer: fail the pipeline rather than hang
                log.exception("pipeline %s crashed", run.id)
                record.state = "Crashed"
                with contextlib.suppress(Exception):
                    Output(shell, run).fail(error_record(
                        f"exchange peer bug: {e!r}", "PeerCrashed",
                        pst.ErrorCategory.NotSpecified, "System.InvalidOperationException"))
            finally:
                with shell.cond:
                    run.finished = True
                    shell.cond.notify_all()

        run.worker = threading.Thread(target=work, name=f"exchange-peer-pipeline:{run.id}")
        with self._lock:
            self._workers = [w for w in self._workers if w.is_alive()]
            self._workers.append(run.worker)
        run.worker.start()

    def _send(self, req: wsman.Request, shell: Shell) -> tuple[int, object]:
        for stream in req.body.findall("rsp:Send/rsp:Stream", wsman.NS):
            cid = stream.get("CommandId")
            events = shell.feed(base64.b64decode(stream.text or ""),
                                uuid.UUID(cid) if cid else None, stream.get("Name") or "stdin")
            self._start_ready(shell, events)
        return 200, wsman.response(req, "<rsp:SendResponse/>")

    def _receive(self, req: wsman.Request, shell: Shell) -> tuple[int, object]:
        desired = req.find("rsp:Receive/rsp:DesiredStream")
        cid = desired.get("CommandId") if desired is not None else None
        target = uuid.UUID(cid) if cid else None
        run = shell.runs.get(target) if target else None
        wait = req.operation_timeout
        if self.config.max_long_poll is not None:
            wait = min(wait, self.config.max_long_poll)
        # The response must fit the client's MaxEnvelopeSize once base64-encoded.
        max_bytes = max(4096, (req.max_envelope_size - 4096) * 3 // 4)
        chunks, done = shell.take(target, wait, max_bytes)
        if not chunks and run is not None and run.drop_pending:
            with shell.cond:
                run.drop_pending = False
                shell.cond.notify_all()
            return 0, _DROP
        if not chunks and not done:
            return 500, self._fault(req, OPERATION_TIMED_OUT, subcode="TimedOut")
        return 200, wsman.receive_response(req, cid.upper() if cid else None, chunks, done)

    def _signal(self, req: wsman.Request, shell: Shell) -> tuple[int, object]:
        signal = req.find("rsp:Signal")
        code_el = signal.find("rsp:Code", wsman.NS) if signal is not None else None
        cid = signal.get("CommandId") if signal is not None else None
        code = (code_el.text or "") if code_el is not None else ""
        run = shell.runs.get(uuid.UUID(cid)) if cid else None
        if run is not None:
            run.stop.set()
            with shell.cond:
                shell.cond.notify_all()
            if code.endswith("/Terminate"):
                self._forget_pipeline(shell, run)
        return 200, wsman.response(req, "<rsp:SignalResponse/>")

    def _forget_pipeline(self, shell: Shell, run: PipelineRun) -> None:
        """Terminate: drop the pipeline once its worker has ended."""

        def forget() -> None:
            if run.worker is not None:
                run.worker.join()
            with shell.cond:
                shell.runs.pop(run.id, None)
                shell.outbox.pop(run.id, None)
                shell.outbox_bytes.pop(run.id, None)
                if run.id in shell.pool.pipeline_table:
                    run.pipe.close()

        if run.worker is None or not run.worker.is_alive():
            forget()
            return
        t = threading.Thread(target=forget, name=f"exchange-peer-terminate:{run.id}")
        with self._lock:
            self._workers.append(t)
        t.start()

    def _get(self, req: wsman.Request, shell: Shell) -> tuple[int, object]:
        idle = time.monotonic() - shell.last_used
        return 200, wsman.response(req, (
            f"<rsp:Shell><rsp:ShellId>{shell.id}</rsp:ShellId>"
            f"<rsp:ResourceUri>{wsman.EXCHANGE_RESOURCE}</rsp:ResourceUri>"
            f"<rsp:Owner>{self.config.domain}\\{self.config.username}</rsp:Owner>"
            "<rsp:ClientIP>127.0.0.1</rsp:ClientIP><rsp:IdleTimeOut>PT900.000S</rsp:IdleTimeOut>"
            "<rsp:InputStreams>stdin pr</rsp:InputStreams>"
            "<rsp:OutputStreams>stdout</rsp:OutputStreams>"
            f"<rsp:ShellInactivity>PT{idle:.3f}S</rsp:ShellInactivity>"
            "<rsp:State>Connected</rsp:State></rsp:Shell>"))

    def _delete(self, req: wsman.Request, shell: Shell) -> tuple[int, object]:
        self._remove_shell(shell.id)
        return 200, wsman.response(req, "")
