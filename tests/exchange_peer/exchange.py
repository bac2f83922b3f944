"""The Exchange side: a no-language runspace with Get-TransportService and
Get-MessageTrackingLog, following tracking-facts §5 and §7.

Each server acts as if the client had connected to it: its version decides the parameter
set and properties, its time zone reads naive Start/End and localises Timestamp and
MessageInfo, and its culture formats text. Without -Server (and without pipeline input)
the first configured server is searched, as the cmdlet searches the local server.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import psrpcore.types as pst

from msgtrack.errors import UsageError
from msgtrack.filters import Query
from msgtrack.report import RunReport

from .config import PeerConfig, ServerSpec
from .faults import Fault
from .objects import ObjectShape, render_tracking_event, render_transport_service
from .shell import Output, Stopped

_PLACEHOLDER_RUNSPACE = uuid.UUID("5e1f0000-c0de-4a11-8000-00000000cafe")
_PLACEHOLDER_BYTES = str(_PLACEHOLDER_RUNSPACE).encode()

GMTL = "Get-MessageTrackingLog"
GTS = "Get-TransportService"
_GMTL_TASK = "Microsoft.Exchange.Management.TransportLogSearchTasks.GetMessageTrackingLog"

NO_LANGUAGE = ("The syntax is not supported by this runspace. This can occur if the runspace "
               "is in no-language mode.")
MORE_RESULTS = ("There are more results available than are currently displayed. To view them, "
                "increase the value of the ResultSize parameter.")

#: Microsoft.Exchange.Diagnostics.MessageTrackingEvent in 2013 CU23 (tracking-facts §5).
EVENT_IDS_2013 = frozenset("""
    RECEIVE SEND FAIL DSN DELIVER BADMAIL RESOLVE EXPAND REDIRECT TRANSFER SUBMIT POISONMESSAGE
    DEFER DUPLICATEDELIVER RESUBMIT RESUBMITDEFER RESUBMITFAIL INITMESSAGECREATED
    MODERATORREJECT MODERATORAPPROVE MODERATORSALLNDR MODERATIONEXPIRE THROTTLE NOTIFYMAPI
    NOTIFYSHADOW PROCESS DUPLICATEEXPAND DUPLICATEREDIRECT SUBMITFAIL SUBMITDEFER HAREDIRECT
    HARECEIVE HAREDIRECTFAIL HADISCARD AGENTINFO SYSPROBEINFO SIGNATUREUPDATEINFO SUPPRESSED
    LOAD PROCESSMEETINGMESSAGE DROP""".split())
#: Documented for 2016/2019 only.
EVENT_IDS_2016 = EVENT_IDS_2013 | {"CLIENTSUBMISSION", "DELIVERFAIL"}

_COMMON = ("Verbose", "Debug", "ErrorAction", "WarningAction", "InformationAction",
           "ErrorVariable", "WarningVariable", "InformationVariable", "OutVariable", "OutBuffer",
           "PipelineVariable")
GMTL_PARAMS_2013 = ("DomainController", "End", "EventId", "InternalMessageId", "MessageId",
                    "MessageSubject", "Recipients", "Reference", "ResultSize", "Sender",
                    "Server", "Start")
GMTL_PARAMS_2016_ONLY = ("NetworkMessageId", "Source", "TransportTrafficType")
GTS_PARAMS = ("Identity", "DomainController")


# --------------------------------------------------------------------------- errors


def error_record(message: str, fqid: str, category: pst.ErrorCategory, exception_type: str,
                 *, target: Any = None, activity: str | None = None,
                 reason: str | None = None) -> pst.ErrorRecord:
    exc = pst.NETException(Message=message)
    exc.PSObject.type_names = [exception_type, "System.Exception", "System.Object"]
    return pst.ErrorRecord(
        Exception=exc,
        CategoryInfo=pst.ErrorCategoryInfo(
            Category=category, Activity=activity, Reason=reason or exception_type.rsplit(".")[-1],
            TargetName=None if target is None else str(target)),
        TargetObject=target,
        FullyQualifiedErrorId=fqid,
    )


class CmdletError(Exception):
    """A terminating error: the pipeline ends Failed with this record."""

    def __init__(self, record: pst.ErrorRecord) -> None:
        super().__init__(str(record))
        self.record = record


def _not_supported_syntax() -> CmdletError:
    return CmdletError(error_record(
        NO_LANGUAGE, "ScriptsNotAllowed", pst.ErrorCategory.ParserError,
        "System.Management.Automation.PSParseException", reason="ParseException"))


def _command_not_found(name: str) -> CmdletError:
    return CmdletError(error_record(
        f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, "
        "or operable program. Check the spelling of the name, or if a path was included, "
        "verify that the path is correct and try again.",
        "CommandNotFoundException", pst.ErrorCategory.ObjectNotFound,
        "System.Management.Automation.CommandNotFoundException", target=name))


def _binding_error(cmdlet: str, message: str, fqid: str, target: Any = None) -> CmdletError:
    return CmdletError(error_record(
        message, f"{fqid},{_task(cmdlet)}", pst.ErrorCategory.InvalidArgument,
        "System.Management.Automation.ParameterBindingException", target=target,
        reason="ParameterBindingException"))


def _task(cmdlet: str) -> str:
    return _GMTL_TASK if cmdlet == GMTL else \
        "Microsoft.Exchange.Management.SystemConfigurationTasks.GetTransportService"


def _not_found(cmdlet: str, identity: str) -> CmdletError:
    return CmdletError(error_record(
        f"The operation couldn't be performed because object '{identity}' couldn't be found "
        "on 'dc01.contoso.com'.",
        f"[Server=EX01] 2E3A1B7,{_task(cmdlet)}", pst.ErrorCategory.NotSpecified,
        "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException",
        target=identity))


# --------------------------------------------------------------------------- binding


def bind(cmdlet: str, params: Iterable[tuple[str | None, Any]], names: Iterable[str]
         ) -> dict[str, Any]:
    """PowerShell's parameter binding by name: case-insensitive, unique prefixes allowed."""
    known = tuple(names) + _COMMON
    bound: dict[str, Any] = {}
    for name, value in params:
        if name is None:
            if cmdlet == GTS and "Identity" not in bound:
                bound["Identity"] = value
                continue
            raise _binding_error(
                cmdlet, f"A positional parameter cannot be found that accepts argument "
                f"'{value}'.", "PositionalParameterNotFound", value)
        key = name.lstrip("-").casefold()
        exact = [k for k in known if k.casefold() == key]
        matches = exact or [k for k in known if k.casefold().startswith(key)]
        if not matches:
            raise _binding_error(
                cmdlet, f"A parameter cannot be found that matches parameter name '{name}'.",
                "NamedParameterNotFound", name)
        if len(matches) > 1:
            raise _binding_error(
                cmdlet, f"Parameter cannot be processed because the parameter name '{name}' is "
                f"ambiguous. Possible matches include: -{' -'.join(matches)}.",
                "AmbiguousParameter", name)
        if matches[0] in bound:
            raise _binding_error(
                cmdlet, f"Cannot bind parameter because parameter '{matches[0]}' is specified "
                "more than once.", "ParameterAlreadyBound", name)
        bound[matches[0]] = value
    return {k: v for k, v in bound.items() if k not in _COMMON}


def _text(value: Any) -> str:
    name = getattr(value, "Name", None)
    return str(name) if name is not None and not isinstance(value, str) else str(value)


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    return (str(value),)


def _result_size(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return int(value)
    text = str(value).strip()
    if text.casefold() == "unlimited":
        return None
    if text.isdigit():
        return int(text)
    raise _binding_error(
        GMTL, f"Cannot bind parameter 'ResultSize'. Cannot convert value \"{value}\" to type "
        "\"Microsoft.Exchange.Data.Unlimited`1[System.UInt32]\". Error: \"Input string was not "
        "in a correct format.\"", "CannotConvertArgumentNoMessage", value)


def _when(value: Any, name: str, server: ServerSpec) -> datetime:
    """A Start/End value as aware UTC; naive values are the server's local time."""
    when: datetime | None = None
    if isinstance(value, datetime):
        when = value
    else:
        text = str(value).strip()
        try:
            when = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "Zz" and text
                                          else text)
        except ValueError:
            when = server.culture_info.parse_datetime(text)
    if when is None:
        raise _binding_error(
            GMTL, f"Cannot bind parameter '{name}'. Cannot convert value \"{value}\" to type "
            "\"System.DateTime\". Error: \"String was not recognized as a valid DateTime.\"",
            "CannotConvertArgumentNoMessage", value)
    if when.tzinfo is None:
        when = when.replace(tzinfo=server.tz)
    return when.astimezone(timezone.utc).replace(tzinfo=timezone.utc)


# --------------------------------------------------------------------------- the runspace


@dataclass
class _Server:
    spec: ServerSpec


@dataclass
class _Search:
    server: ServerSpec
    query: Query
    limit: int | None
    traffic: str | None


def object_shape(config: PeerConfig, server: ServerSpec) -> ObjectShape:
    return ObjectShape(version=server.version, tz=server.tz, culture=server.culture_info,
                       computer_name=config.computer_name or config.servers[0].fqdn,
                       deserialized=config.deserialized_type_names,
                       event_data=config.event_data_shape)


def renderer(server: ServerSpec, shape: ObjectShape, runspace: uuid.UUID
             ) -> Callable[[int, Any], bytes]:
    """Render event number n of ``server``; from its cache when it keeps one."""
    if not (server.cache_objects and server.events is not None):
        return lambda n, ev: render_tracking_event(ev, shape, runspace)
    # Cached with a placeholder RunspaceId: the one thing that differs between pools.
    cache = server.rendered.setdefault(shape, {})
    actual = str(runspace).encode()

    def render(n: int, ev: Any) -> bytes:
        body = cache.get(n)
        if body is None:
            body = cache[n] = render_tracking_event(ev, shape, _PLACEHOLDER_RUNSPACE)
        return body.replace(_PLACEHOLDER_BYTES, actual)
    return render


def prerender(config: PeerConfig) -> int:
    """Fill the render cache of every caching server (before a benchmark starts)."""
    count = 0
    for server in config.servers:
        if server.cache_objects and server.events is not None:
            render = renderer(server, object_shape(config, server), _PLACEHOLDER_RUNSPACE)
            for n, ev in enumerate(server.events):
                render(n, ev)
                count += 1
    return count


class Runspace:
    """Runs one pipeline's commands for one shell; the worker thread's entry point."""

    def __init__(self, config: PeerConfig, out: Output) -> None:
        self.config = config
        self.out = out
        self.endpoint = config.servers[0]
        self.computer_name = config.computer_name or self.endpoint.fqdn

    def shape(self, server: ServerSpec) -> ObjectShape:
        return object_shape(self.config, server)

    def run(self, commands: list) -> str:
        """Run and end the pipeline; returns the final state's name."""
        out = self.out
        try:
            if self.config.no_language and any(c.is_script for c in commands):
                raise _not_supported_syntax()
            for c in commands:
                if c.command_text.casefold() not in (GMTL.casefold(), GTS.casefold()):
                    raise _command_not_found(c.command_text)
            statement: list = []
            for c in commands:
                statement.append(c)
                if c.end_of_statement:
                    self._run_statement(statement)
                    statement = []
            if statement:
                self._run_statement(statement)
        except Stopped:
            out.stopped()
            return "Stopped"
        except CmdletError as e:
            out.fail(e.record)
            return "Failed"
        out.complete()
        return "Completed"

    def _run_statement(self, statement: list) -> None:
        items: Iterator[Any] | None = None
        for c in statement:
            name = c.command_text.casefold()
            if name == GTS.casefold():
                if items is not None:
                    raise CmdletError(error_record(
                        "The input object cannot be bound to any parameters for the command "
                        "either because the command does not take pipeline input or the input "
                        "and its properties do not match any of the parameters that take "
                        "pipeline input.", f"InputObjectNotBound,{_task(GTS)}",
                        pst.ErrorCategory.InvalidArgument,
                        "System.Management.Automation.ParameterBindingException"))
                items = self._get_transport_service(c.parameters)
            else:
                items = self._get_message_tracking_log(c.parameters, items)
        for item in items or ():
            self.out.check()
            if isinstance(item, _Server):
                spec = item.spec
                self.out.raw_object(render_transport_service(
                    spec.name, spec.fqdn, spec.version, spec.log_path, self.shape(spec),
                    self.out.runspace_id))
            else:
                self.out.raw_object(item)

    # -- Get-TransportService
    def _get_transport_service(self, params: list) -> Iterator[_Server]:
        bound = bind(GTS, params, GTS_PARAMS)
        if "Identity" in bound:
            spec = self.config.server(_text(bound["Identity"]))
            if spec is None:
                raise _not_found(GTS, _text(bound["Identity"]))
            return iter([_Server(spec)])
        return iter([_Server(s) for s in self.config.servers])

    # -- Get-MessageTrackingLog
    def _get_message_tracking_log(self, params: list, items: Iterator[Any] | None
                                  ) -> Iterator[bytes]:
        bound = bind(GMTL, params, GMTL_PARAMS_2013 + GMTL_PARAMS_2016_ONLY)
        if items is not None:
            servers = [i.spec for i in items if isinstance(i, _Server)]
        elif "Server" in bound:
            spec = self.config.server(_text(bound["Server"]))
            if spec is None:
                raise _not_found(GMTL, _text(bound["Server"]))
            servers = [spec]
        else:
            servers = [self.endpoint]
        # Validate everything before the first object, as binding does.
        searches = [self._plan(bound, s) for s in servers]
        return itertools.chain.from_iterable(self._search(p) for p in searches)

    def _plan(self, bound: dict[str, Any], server: ServerSpec) -> _Search:
        if server.version < 2016:
            for name in bound:
                if name in GMTL_PARAMS_2016_ONLY:
                    raise _binding_error(
                        GMTL, f"A parameter cannot be found that matches parameter name "
                        f"'{name}'.", "NamedParameterNotFound", name)
        valid = EVENT_IDS_2016 if server.version >= 2016 else EVENT_IDS_2013
        event_ids: tuple[str, ...] = ()
        if "EventId" in bound:
            event_id = _text(bound["EventId"])
            if event_id.upper() not in valid:
                raise CmdletError(error_record(
                    f'Event ID "{event_id}" is not a valid event ID.',
                    f"[Server={server.name}] 5F0B4C21,{_GMTL_TASK}",
                    pst.ErrorCategory.InvalidArgument,
                    "Microsoft.Exchange.Configuration.Tasks.TaskArgumentException",
                    target=event_id))
            event_ids = (event_id,)
        start = _when(bound["Start"], "Start", server) if "Start" in bound else None
        end = (_when(bound["End"], "End", server) if "End" in bound
               else self.config.clock() + timedelta(days=1))
        limit = (_result_size(bound["ResultSize"]) if "ResultSize" in bound
                 else self.config.default_result_size)

        def opt(name: str) -> str | None:
            return _text(bound[name]) if name in bound and bound[name] is not None else None

        try:
            query = Query(
                start=start, end=end, sender=opt("Sender"),
                recipients=_strings(bound["Recipients"]) if bound.get("Recipients") else (),
                event_ids=event_ids,
                sources=(opt("Source"),) if opt("Source") else (),
                subject=opt("MessageSubject"), message_id=opt("MessageId"),
                internal_message_id=opt("InternalMessageId"),
                network_message_id=opt("NetworkMessageId"), reference=opt("Reference"),
            )
        except UsageError:
            # Wording not verified against a server.
            raise CmdletError(error_record(
                "The end date must be later than the start date.",
                f"[Server={server.name}] 3C1D9A02,{_GMTL_TASK}",
                pst.ErrorCategory.InvalidArgument,
                "Microsoft.Exchange.Configuration.Tasks.TaskArgumentException")) from None
        traffic = opt("TransportTrafficType")
        return _Search(server, query, limit, traffic.casefold() if traffic else None)

    def _search(self, search: _Search) -> Iterator[bytes]:
        out, server, query, limit = self.out, search.server, search.query, search.limit
        pending = self._apply_faults(self.config.faults.for_pipeline(GMTL, server.name))
        shape = self.shape(server)
        render = renderer(server, shape, out.runspace_id)
        written = 0
        for n, ev in enumerate(server.iter_events(RunReport())):
            if n % 256 == 0:
                out.check()
            if not query.matches(ev):
                continue
            if search.traffic is not None and \
                    ev.transport_traffic_type.casefold() != search.traffic:
                continue
            if limit is not None and written >= limit:
                out.warning(MORE_RESULTS)
                return
            for f in [f for f in pending if f.after <= written]:
                pending.remove(f)
                self._fire(f, server)
            yield render(n, ev)
            written += 1
        # A stream shorter than the fault's count still ends Failed.
        for f in pending:
            if f.kind == "fail-after":
                self._fire(f, server)

    def _apply_faults(self, faults: list[Fault]) -> list[Fault]:
        triggers = []
        for f in faults:
            if f.kind == "slow":
                self.out.delay = f.delay
            elif f.kind == "drop-after":
                self.out.drop_after = self.out.run.objects + f.after
            else:
                triggers.append(f)
        return triggers

    def _fire(self, fault: Fault, server: ServerSpec) -> None:
        if fault.kind == "error-records":
            for _ in range(fault.count):
                self.out.error(error_record(
                    fault.message or f"Failed to read a message tracking log file on "
                    f"{server.name}. The process cannot access the file because it is being "
                    "used by another process.",
                    f"[Server={server.name}] 7A2E11F0,{_GMTL_TASK}",
                    pst.ErrorCategory.ReadError, "System.IO.IOException", target=server.name))
        elif fault.kind == "fail-after":
            raise CmdletError(error_record(
                fault.message or "The Microsoft Exchange Transport Log Search service on "
                f"{server.fqdn} couldn't be contacted.",
                f"[Server={server.name}] 1B7C0D3E,{_GMTL_TASK}",
                pst.ErrorCategory.NotSpecified,
                "Microsoft.Exchange.Management.TransportLogSearchTasks.LogSearchException",
                target=server.name))
