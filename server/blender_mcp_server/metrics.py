"""GET /metrics: this replica's numbers in Prometheus' text format, for a studio's monitoring to scrape.

Two kinds of numbers. Counters and the dispatch histogram move on the data path, through hooks of one
or two lines in `Bus.deliver`, `Bus.send`, `Bus.job_update` and `tools.dispatch.dispatch` (each a
`bus.metrics is not None` test when metrics are off). Gauges (clients, outboxes, streams, waiting calls)
are read from the Registry when Prometheus scrapes, so the hot path keeps no bookkeeping for them.

The per-record and per-message counters are plain ints, turned into counter families at scrape time: a
prometheus_client Counter takes a lock per `inc` (timed in-process: Counters made `Bus.send` ~7% slower,
plain ints by no more than the noise, ~1%), and every hook and the /metrics route run on the server's one
event loop thread, so nothing else can be writing while a scrape reads. Style A calls (a millisecond or more each) use the
library's Counter and Histogram as they are.

Every number is an aggregate over all users: no label carries a user name, a client uuid or a job id,
and label values are bounded (delivery states, the catalog's commands, dispatch statuses), so neither
what /metrics shows nor how many series it holds depends on what callers choose to name things.
"""

from __future__ import annotations

import hmac
from collections import Counter as Tally
from collections.abc import Iterable, Iterator
from typing import Any, get_args

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from blender_mcp_addon.protocol.answers import DeliveryState, DispatchStatus
from blender_mcp_addon.protocol.catalog import CATALOG

from . import __version__
from .bus.directory import Registry
from .bus.jobs import Jobs
from .config import Settings

OTHER = "other"  # the label value for a command or status outside the known sets
# Style A calls run from a millisecond (an answer from a warm Blender on loopback) to a minute (the
# catalog's longest default timeout is 180 s, but past 60 s the exact figure no longer matters).
DISPATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def access_refusal(settings: Settings, authorization: str | None) -> tuple[int, str] | None:
    """Why this request may not read /metrics, as (HTTP status, message); None when it may.

    With `metrics_token` set, only `Authorization: Bearer <token>` may. Without one, anyone who can reach
    a loopback bind may (the same machine's Prometheus or node agent), and on any other bind only when
    `metrics_public` says so: the numbers are aggregates, but how busy a studio's server is should be
    shown to the whole network only on purpose."""
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else ""
    if token:
        scheme, _, given = (authorization or "").partition(" ")
        # compare_digest: the time taken does not tell how much of a guessed token was right
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return None
        return 401, "/metrics needs Authorization: Bearer <BLENDER_MCP_METRICS_TOKEN>"
    if settings.metrics_public or settings.is_loopback_bind():
        return None
    return 403, ("/metrics is off on a non-loopback bind without a token: set BLENDER_MCP_METRICS_TOKEN "
                 "(or BLENDER_MCP_METRICS_PUBLIC=true to serve it to anyone who reaches this port)")


class _Gauges(Collector):
    """The gauges, computed from the Registry at each scrape: nothing to keep in step on the hot path."""

    def __init__(self, registry: Registry, jobs: Jobs):
        self.registry = registry
        self.jobs = jobs

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        entries = self.registry.all_entries()
        online = sum(e.online for e in entries)
        return self._families(
            clients=((("online",), online), (("offline",), len(entries) - online)),
            users=len({e.user_id for e in entries}),
            records=sum(len(e.outbox) for e in entries),
            outbox_bytes=sum(e.outbox.bytes for e in entries),
            # running totals kept by the Registry (StreamWatch pairs every close with its open)
            streams=self.registry.streams_opened - self.registry.streams_closed,
            waiting=len(self.jobs.waiting()))

    @staticmethod
    def _families(clients: Iterable[tuple[tuple[str], float]] = (), **values: float) -> Iterator[Metric]:
        family = GaugeMetricFamily("bmcp_clients", "registered clients on this replica, by state", labels=["state"])
        for labels, value in clients:
            family.add_metric(list(labels), value)
        yield family
        for key, name, doc in (
                ("users", "bmcp_users_with_clients", "users with at least one registered client on this replica"),
                ("records", "bmcp_outbox_records", "records queued in all outboxes (online and offline clients)"),
                ("outbox_bytes", "bmcp_outbox_bytes", "JSON bytes of the records queued in all outboxes"),
                ("streams", "bmcp_open_streams", "open standing GET streams (the sessions that can receive)"),
                ("waiting", "bmcp_jobs_waiting", "Style A calls waiting for their job's answer now")):
            yield GaugeMetricFamily(name, doc, value=values[key]) if key in values else GaugeMetricFamily(name, doc)


class _HotCounters(Collector):
    """The counters the data path bumps as plain ints (see the module's docstring), as counter families."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def describe(self) -> Iterable[Metric]:
        return self._families({}, 0, 0, {})

    def collect(self) -> Iterable[Metric]:
        m = self.metrics
        return self._families(m.records, m.messages, m.job_updates, m.fast_tool_calls)

    @staticmethod
    def _families(records: dict[str, int], messages: int, job_updates: int, fast: dict[str, int]) -> Iterator[Metric]:
        family = CounterMetricFamily("bmcp_records", "records delivered, one per recipient, by that recipient's "
                                     "state", labels=["status"])
        for state, count in records.items():
            family.add_metric([state], count)
        yield family
        yield CounterMetricFamily("bmcp_messages", "blender_send_message calls accepted (validated and routed)",
                                  value=messages)
        yield CounterMetricFamily("bmcp_job_updates", "job updates accepted (blender_job_update, and each of a "
                                  "blender_job_updates call)", value=job_updates)
        family = CounterMetricFamily("bmcp_fast_tool_calls", "tool calls answered beside the MCP SDK "
                                     "(tools/fast_calls.py), by kind: job_updates, dispatch", labels=["kind"])
        for kind, count in fast.items():
            family.add_metric([kind], count)
        yield family


class Metrics:
    """One replica's metrics, on a CollectorRegistry of its own: not the library's global default, so
    two servers built in one process (tests) do not clash, and nothing else registered there leaks out."""

    def __init__(self, settings: Settings, registry: Registry, jobs: Jobs):
        self.settings = settings
        # No `<name>_created` twin per counter and histogram series: it doubles the series a scrape carries,
        # and Prometheus reads nothing from it in the text format. (A switch of the library, process-wide.)
        disable_created_metrics()
        self.registry = CollectorRegistry()
        # Bumped by the hooks; every delivery state listed from the start, so a rate() sees its first one.
        self.records: dict[str, int] = dict.fromkeys(get_args(DeliveryState), 0)
        self.messages = 0
        self.job_updates = 0
        self.fast_tool_calls: dict[str, int] = {"job_updates": 0, "dispatch": 0}
        self.registry.register(_HotCounters(self))
        self.dispatches = Counter("bmcp_jobs", "Style A calls answered, by command and the answer's status "
                                  "(no_client, ambiguous_target, rate_limited ... are refusals: no job was sent)",
                                  ["command", "status"], registry=self.registry)
        self.dispatch_seconds = Histogram("bmcp_dispatch_seconds", "Style A calls that sent a job: seconds from "
                                          "the call to its answer", ["command"], buckets=DISPATCH_BUCKETS,
                                          registry=self.registry)
        Info("bmcp", "this replica", registry=self.registry).info({"version": __version__,
                                                                     "replica": settings.replica_name})
        ProcessCollector(registry=self.registry)
        self.registry.register(_Gauges(registry, jobs))
        self._commands = frozenset(CATALOG)
        self._statuses = frozenset(get_args(DispatchStatus))

    # -- hooks (the data path calls these) ------------------------------------------------------------
    def delivered(self, delivery: dict[str, str]) -> None:
        """One `Bus.deliver`: its recipients' states (uuid -> state)."""
        records = self.records
        # A state this module does not know yet is counted under its own name: the bus's code, not its
        # callers, names the states, so they stay few.
        if len(delivery) < 32:  # below ~40 recipients a plain loop is cheaper than building a Counter (timed)
            for state in delivery.values():
                records[state] = records.get(state, 0) + 1
            return
        for state, count in Tally(delivery.values()).items():
            records[state] = records.get(state, 0) + count

    def dispatched(self, command: str, answer: dict[str, Any], seconds: float) -> None:
        """One Style A call's answer; its latency counts only when a job was sent (the answer has a job_id)."""
        command = command if command in self._commands else OTHER
        status = answer.get("status")
        self.dispatches.labels(command, status if status in self._statuses else OTHER).inc()
        if answer.get("job_id"):
            self.dispatch_seconds.labels(command).observe(seconds)

    # -- the route ------------------------------------------------------------------------------------
    async def route(self, request: Request) -> Response:
        refusal = access_refusal(self.settings, request.headers.get("authorization"))
        if refusal is not None:
            status, message = refusal
            headers = {"WWW-Authenticate": 'Bearer realm="metrics"'} if status == 401 else None
            return PlainTextResponse(message, status_code=status, headers=headers)
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)
