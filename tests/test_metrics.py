"""GET /metrics: a real server's counters, gauges and histogram after real sends and a Style A call, who
may read them, and that they name no user, client or job."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from blender_mcp_server import __version__
from blender_mcp_server.app import build_server
from blender_mcp_server.config import Settings
from blender_mcp_server.metrics import OTHER, access_refusal
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import bus_client, login, send, start_fresh, tool_json, wait_online

pytestmark = pytest.mark.anyio
TOKEN = "metrics-scrape-token"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    """A server of this module's own (its counters start at zero), with a metrics token and a replica id."""
    srv = start_fresh(tmp_path_factory.mktemp("metrics"), BLENDER_MCP_METRICS_TOKEN=TOKEN,
                      BLENDER_MCP_REPLICA_ID="replica-a")
    yield srv
    srv.stop()


def scrape(base: str, token: str | None = TOKEN) -> tuple[str, Samples]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = httpx.get(f"{base}/metrics", headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return r.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def answer_dispatches(blender: Client, count: int) -> None:
    """What a Blender does, without Blender: each command_dispatch gets a running then a completed update,
    both in one blender_job_updates call, as the extension sends them."""
    records = await blender.collector.wait_for(count)  # type: ignore[attr-defined]
    for record in records[:count]:
        job_id = record["payload"]["job_id"]
        answer = tool_json(await blender.call_tool("blender_job_updates", {"updates": [
            {"job_id": job_id, "status": "running", "progress": 0.5},
            {"job_id": job_id, "status": "completed", "result": {"objects": 3}}]}))
        assert answer["status"] == "ok", answer


async def test_counters_gauges_and_histogram_follow_the_traffic(guarded):
    base = guarded.url
    _, before = scrape(base)
    # A persistent client that leaves: what is sent to it waits in its outbox ("queued").
    async with bus_client(base, uuid="m-away", persistent=True):
        pass
    async with (bus_client(base, uuid="m-llm") as llm,
                bus_client(base, uuid="m-rx1", group_id="m-group") as rx1,
                bus_client(base, uuid="m-rx2", group_id="m-group") as rx2,
                bus_client(base, uuid="m-quiet", level=None),  # default level: info is filtered
                bus_client(base, uuid="m-blender", client_type="blender") as blender):
        await wait_online(llm, "m-away", online=False)
        assert (await send(llm, target_uuid="m-rx1", payload={"n": 1}))["delivery"] == {"m-rx1": "sent"}
        assert (await send(llm, group_id="m-group", payload={"n": 2}))["status"] == "sent"
        assert (await send(llm, target_uuid="m-away", payload={"n": 3}))["delivery"] == {"m-away": "queued"}
        assert (await send(llm, target_uuid="m-quiet", payload={"n": 4}))["delivery"] == {"m-quiet": "filtered"}
        await rx1.collector.wait_for(2)
        await rx2.collector.wait_for(1)

        token = login(base)["access_token"]
        transport = StreamableHttpTransport(url=f"{base}/mcp", headers={"Authorization": f"Bearer {token}"})
        async with Client(transport, timeout=30) as style_a:
            answering = asyncio.create_task(answer_dispatches(blender, 1))
            done = tool_json(await style_a.call_tool("blender_get_scene_info", {"target_uuid": "m-blender"}))
            assert done["status"] == "completed", done
            await answering
            lost = tool_json(await style_a.call_tool("blender_get_scene_info", {"target_uuid": "m-nobody"}))
            assert lost["status"] == "unknown_target", lost

            text, after = scrape(base)
            assert value(after, "bmcp_open_streams") >= 6  # five bus clients' streams and the Style A one
            assert value(after, "bmcp_jobs_waiting") == 0

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("bmcp_messages_total") == 4
    # one record per recipient: 1 direct, 2 to the group, the dispatch's command_dispatch; 1 queued; 1 filtered
    assert moved("bmcp_records_total", status="sent") == 4
    assert moved("bmcp_records_total", status="queued") == 1
    assert moved("bmcp_records_total", status="filtered") == 1
    assert moved("bmcp_records_total", status="outbox_full") == 0
    assert moved("bmcp_job_updates_total") == 2
    assert moved("bmcp_jobs_total", command="get_scene_info", status="completed") == 1
    assert moved("bmcp_jobs_total", command="get_scene_info", status="unknown_target") == 1
    # the histogram holds the call that sent a job, not the refusal
    assert moved("bmcp_dispatch_seconds_count", command="get_scene_info") == 1
    seconds = moved("bmcp_dispatch_seconds_sum", command="get_scene_info")
    assert 0 < seconds < 30
    assert value(after, "bmcp_dispatch_seconds_bucket", command="get_scene_info", le="60.0") == 1

    assert value(after, "bmcp_clients", state="online") == 5
    assert value(after, "bmcp_clients", state="offline") == 1  # m-away, persistent
    assert value(after, "bmcp_users_with_clients") == 1
    assert value(after, "bmcp_outbox_records") == 1  # the record waiting for m-away
    assert value(after, "bmcp_outbox_bytes") > 0
    assert value(after, "bmcp_info", replica="replica-a", version=__version__) == 1
    assert value(after, "process_resident_memory_bytes") > 0
    # aggregates only: no user name, client uuid or job id appears
    for private in ("demo", "m-llm", "m-away", "m-blender", done["job_id"]):
        assert private not in text


async def test_the_token_is_required_when_set(guarded):
    url = f"{guarded.url}/metrics"
    assert httpx.get(url, timeout=10).status_code == 401
    wrong = httpx.get(url, headers={"Authorization": "Bearer not-the-token"}, timeout=10)
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Bearer")
    assert httpx.get(url, headers={"Authorization": f"Basic {TOKEN}"}, timeout=10).status_code == 401
    assert httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).status_code == 200


async def test_without_a_token_a_loopback_bind_serves_it(server):
    text, samples = scrape(server.url, token=None)
    assert "bmcp_clients" in text and value(samples, "bmcp_jobs_waiting") == 0


def test_who_may_read_metrics():
    loopback, lan = Settings(host="127.0.0.1"), Settings(host="0.0.0.0")
    assert access_refusal(loopback, None) is None
    refused = access_refusal(lan, None)
    assert refused is not None and refused[0] == 403 and "BLENDER_MCP_METRICS_TOKEN" in refused[1]
    assert access_refusal(Settings(host="0.0.0.0", metrics_public=True), None) is None
    for settings in (Settings(host="0.0.0.0", metrics_token="t0k"), Settings(host="127.0.0.1", metrics_token="t0k")):
        refusal = access_refusal(settings, None)
        assert refusal is not None and refusal[0] == 401 and refusal == access_refusal(settings, "Bearer nope")
        assert access_refusal(settings, "Bearer t0k") is None
        assert access_refusal(settings, "bearer t0k") is None  # the scheme is case-insensitive (RFC 9110)
        assert access_refusal(settings, "Bearer t0k-and-more") is not None


def test_labels_stay_bounded(tmp_path: Path):
    metrics = build_server(Settings(data_dir=tmp_path)).bus.metrics
    assert metrics is not None
    metrics.delivered({"a": "sent", "b": "sent", "c": "queued"})
    metrics.delivered({})
    metrics.dispatched("a_command_of_my_own", {"status": "completed", "job_id": "j-1"}, 0.01)
    metrics.dispatched("get_scene_info", {"status": "a_new_status", "job_id": None}, 0.0)

    def get(name: str, **labels: Any) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    assert get("bmcp_records_total", status="sent") == 2 and get("bmcp_records_total", status="queued") == 1
    assert get("bmcp_jobs_total", command=OTHER, status="completed") == 1
    assert get("bmcp_jobs_total", command="get_scene_info", status=OTHER) == 1
    assert get("bmcp_dispatch_seconds_count", command=OTHER) == 1
    assert get("bmcp_dispatch_seconds_count", command="get_scene_info") is None  # no job was sent
