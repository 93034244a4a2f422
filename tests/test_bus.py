"""The bus against a real server with real fastmcp clients: routing, isolation, priorities, jobs, lifecycle."""

from __future__ import annotations

import asyncio

import pytest

from tests.helpers import bus_client, login, send, tool_json, wait_online

pytestmark = pytest.mark.anyio


async def test_four_routing_modes_and_sender_rules(server):
    base = server.url
    async with (bus_client(base, uuid="r-sender", client_type="llm", group_id="g1") as sender,
                bus_client(base, uuid="r-b1", client_type="blender", group_id="g1") as b1,
                bus_client(base, uuid="r-b2", client_type="blender", group_id="g2") as b2):
        # direct: only the named client, stamped with its uuid
        res = await send(sender, target_uuid="r-b2", group_id="g1", from_uuid="r-sender", payload={"n": 1})
        assert res["routing"] == {"type": "direct", "target_uuid": "r-b2"}  # target_uuid beats group_id
        assert res["recipients"] == ["r-b2"]
        [rec] = await b2.collector.wait_for(1)
        assert rec["target_uuid"] == "r-b2" and rec["payload"] == {"n": 1} and rec["from_uuid"] == "r-sender"
        assert set(rec) >= {"user_id", "from_uuid", "target_uuid", "routing", "payload", "job_id", "message_id",
                            "priority", "timestamp"}
        assert rec["priority"] == 6 and b2.collector.levels == ["info"]

        # group: sender in the group gets a copy
        res = await send(sender, group_id="g1", client_type="blender", from_uuid="r-sender", payload={"n": 2})
        assert res["routing"] == {"type": "group", "group_id": "g1"}
        assert sorted(res["recipients"]) == ["r-b1", "r-sender"]
        await sender.collector.wait_for(1)
        await b1.collector.wait_for(1)

        # type_filter: does not exclude the sender either
        res = await send(b1, client_type="blender", from_uuid="r-b1", payload={"n": 3})
        assert res["routing"] == {"type": "type_filter", "client_type": "blender"}
        assert sorted(res["recipients"]) == ["r-b1", "r-b2"]

        # broadcast: everyone but the sender
        res = await send(sender, from_uuid="r-sender", payload={"n": 4})
        assert res["routing"] == {"type": "broadcast"} and sorted(res["recipients"]) == ["r-b1", "r-b2"]
        await b1.collector.wait_for(3)
        await b2.collector.wait_for(3)
        await asyncio.sleep(0.3)
        assert [r["payload"]["n"] for r in sender.collector.records] == [2]
        assert [r["payload"]["n"] for r in b1.collector.records] == [2, 3, 4]
        assert [r["payload"]["n"] for r in b2.collector.records] == [1, 3, 4]
        assert all(r["target_uuid"] == "r-b1" for r in b1.collector.records)
        assert b1.collector.records[2]["routing"] == {"type": "broadcast"}


async def test_users_never_see_each_other(server):
    base = server.url
    async with (bus_client(base, username="alice", password="alice-pw", uuid="iso-alice", client_type="blender") as alice,
                bus_client(base, username="bob", password="bob-pw", uuid="iso-bob", client_type="blender") as bob):
        listing = tool_json(await bob.call_tool("blender_list_available_clients", {}))
        uuids = [c["uuid"] for c in listing["persistent"] + listing["ephemeral"]]
        assert "iso-alice" not in uuids and "iso-bob" in uuids
        res = await send(bob, target_uuid="iso-alice", from_uuid="iso-bob", payload={"x": 1})
        assert res["status"] == "error" and res["error"] == "unknown_target"
        await send(bob, from_uuid="iso-bob", payload={"x": 2})
        await send(bob, client_type="blender", from_uuid="iso-bob", payload={"x": 3})
        # bob hears only his own bus: his broadcast excludes him, and his type_filter send reaches iso-bob
        await asyncio.sleep(0.5)
        assert [r["payload"] for r in bob.collector.records] == [{"x": 3}]
        assert bob.collector.records[0]["target_uuid"] == "iso-bob"
        # uuids are per user: bob's "iso-alice" is his own client, and alice's stays hers, untouched
        mine = tool_json(await bob.call_tool("blender_register_client", {"client_uuid": "iso-alice", "client_type": "llm"}))
        assert mine["status"] == "registered" and mine["took_over"] is False, mine
        res = await send(bob, target_uuid="iso-alice", from_uuid="iso-bob", payload={"x": 4})
        assert res["status"] == "sent", res
        await bob.collector.wait_for(2)
        assert bob.collector.records[1]["target_uuid"] == "iso-alice"
        await asyncio.sleep(0.3)
        assert alice.collector.records == []
        theirs = tool_json(await alice.call_tool("blender_list_available_clients", {}))
        [own] = [c for c in theirs["persistent"] + theirs["ephemeral"] if c["uuid"] == "iso-alice"]
        assert own["online"] and own["client_type"] == "blender"


async def test_priorities_and_level_filtering(server):
    base = server.url
    async with (bus_client(base, uuid="p-sender") as sender,
                bus_client(base, uuid="p-warn", level=None) as warn):
        assert "warning" in warn.registration  # registered at the default level: told what it will miss
        assert "set_logging_level" in warn.registration["warning"]
        for prio in ["debug", "info", "notice", "warning", "error", 0, "ALERT", "3"]:
            res = await send(sender, target_uuid="p-warn", from_uuid="p-sender", priority=prio, payload={"p": str(prio)})
            assert res["status"] == "sent", res
        await warn.collector.wait_for(5)
        await asyncio.sleep(0.3)
        # only warning and above reach a session at the default level
        assert sorted(warn.collector.levels) == sorted(["warning", "error", "emergency", "alert", "error"])
        assert {r["priority"] for r in warn.collector.records} == {4, 3, 0, 1}
        bad = await send(sender, target_uuid="p-warn", from_uuid="p-sender", priority="urgent", payload={})
        assert bad["error"] == "invalid_priority" and "emergency" in bad["message"] and "debug" in bad["message"]
        assert (await send(sender, target_uuid="p-warn", priority=9, payload={}))["error"] == "invalid_priority"


async def test_job_update_routes_to_originator_and_falls_back_to_broadcast(server):
    base = server.url
    async with (bus_client(base, uuid="j-llm") as llm, bus_client(base, uuid="j-other") as other,
                bus_client(base, uuid="j-blender", client_type="blender", persistent=True) as blender):
        res = await send(llm, target_uuid="j-blender", from_uuid="j-llm",
                         payload={"message_type": "job_dispatch", "job_id": "job-route-1", "script": "print(1)"})
        assert res["status"] == "sent"
        [dispatch] = await blender.collector.wait_for(1)
        assert dispatch["job_id"] == "job-route-1"
        upd = tool_json(await blender.call_tool("blender_job_update", {
            "job_id": "job-route-1", "status": "completed", "result": "1\n", "from_uuid": "j-blender"}))
        assert upd["routing"] == {"type": "direct", "target_uuid": "j-llm"}
        [reply] = await llm.collector.wait_for(1)
        assert llm.collector.levels == ["notice"]
        assert reply["payload"]["kind"] == "job_update" and reply["payload"]["status"] == "completed"
        assert reply["payload"]["result"] == "1\n"
        # unknown job: broadcast on the bus, sender excluded
        upd = tool_json(await blender.call_tool("blender_job_update", {
            "job_id": "never-dispatched", "status": "error", "error": "boom", "from_uuid": "j-blender"}))
        assert upd["routing"] == {"type": "broadcast"} and sorted(upd["recipients"]) == ["j-llm", "j-other"]
        await other.collector.wait_for(1)
        await llm.collector.wait_for(2)
        bad = tool_json(await blender.call_tool("blender_job_update", {"job_id": "job-route-1", "status": "done"}))
        assert bad["error"] == "invalid_arguments"


async def test_job_ids_are_per_user(server):
    """The same job id on two buses is two jobs: each update reaches its own user's originator only."""
    base = server.url
    async with (bus_client(base, username="alice", password="alice-pw", uuid="xa-llm") as alice,
                bus_client(base, username="bob", password="bob-pw", uuid="xb-llm") as bob):
        for who, uuid in ((alice, "xa-llm"), (bob, "xb-llm")):
            sent = await send(who, target_uuid=uuid, from_uuid=uuid,
                              payload={"message_type": "job_dispatch", "job_id": "shared-job", "script": ""})
            assert sent["status"] == "sent", sent
        await alice.collector.wait_for(1)
        await bob.collector.wait_for(1)
        res = tool_json(await bob.call_tool("blender_job_update", {"job_id": "shared-job", "status": "completed",
                                                                   "result": "bob's"}))
        assert res["routing"] == {"type": "direct", "target_uuid": "xb-llm"}, res
        res = tool_json(await alice.call_tool("blender_job_update", {"job_id": "shared-job", "status": "error",
                                                                     "error": "alice's"}))
        assert res["routing"] == {"type": "direct", "target_uuid": "xa-llm"}, res
        [_, bobs] = await bob.collector.wait_for(2)
        [_, alices] = await alice.collector.wait_for(2)
        assert bobs["payload"]["result"] == "bob's" and alices["payload"]["error"] == "alice's"
        await asyncio.sleep(0.3)
        assert len(alice.collector.records) == 2 and len(bob.collector.records) == 2


async def test_job_updates_batch_applies_in_order_with_one_answer_each(server):
    base = server.url
    async with (bus_client(base, uuid="jb-llm") as llm,
                bus_client(base, uuid="jb-blender", client_type="blender") as blender,
                bus_client(base, username="bob", password="bob-pw", uuid="jb-bob") as bob):
        for job in ("jb-1", "jb-2"):
            await send(llm, target_uuid="jb-blender", from_uuid="jb-llm",
                       payload={"message_type": "job_dispatch", "job_id": job, "script": ""})
        answer = tool_json(await blender.call_tool("blender_job_updates", {"updates": [
            {"job_id": "jb-1", "status": "running", "progress": 0.5},
            {"job_id": "jb-2", "status": "completed", "result": "two"},
            {"job_id": "jb-1", "status": "completed", "result": "one"},
            {"job_id": "jb-1", "status": "done"},
        ]}))
        assert answer["status"] == "ok"
        assert [r["status"] for r in answer["results"]] == ["sent", "sent", "sent", "error"]
        assert answer["results"][3]["error"] == "invalid_arguments"
        replies = await llm.collector.wait_for(3)
        assert [(r["payload"]["job_id"], r["payload"]["status"]) for r in replies] == [
            ("jb-1", "running"), ("jb-2", "completed"), ("jb-1", "completed")]
        # another user's job id, inside a batch, is unknown on bob's bus: it never reaches alice's originator
        stolen = tool_json(await bob.call_tool("blender_job_updates", {"updates": [
            {"job_id": "jb-1", "status": "error", "from_uuid": "jb-bob"}]}))
        assert stolen["results"][0]["routing"] == {"type": "broadcast"}
        assert stolen["results"][0]["recipients"] == []
        await asyncio.sleep(0.3)
        assert len(llm.collector.records) == 3
        too_many = await bob.call_tool("blender_job_updates", {"updates": [{"job_id": "x", "status": "running"}] * 257},
                                       raise_on_error=False)
        assert too_many.is_error and "Traceback" not in too_many.content[0].text


async def test_lifecycle_ephemeral_vanishes_persistent_stays_and_gets_queued(server):
    base = server.url
    async with bus_client(base, uuid="lc-watch") as watch:
        async with bus_client(base, uuid="lc-eph"), bus_client(base, uuid="lc-per", client_type="blender", persistent=True):
            await wait_online(watch, "lc-eph")
        # both sessions ended: the ephemeral client goes, the persistent one stays offline
        entry = await wait_online(watch, "lc-per", online=False)
        assert entry["is_persistent"]
        for _ in range(100):
            listing = tool_json(await watch.call_tool("blender_list_available_clients", {}))
            if "lc-eph" not in [c["uuid"] for c in listing["ephemeral"]]:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("ephemeral client was not removed")
        # store and forward: queued for the offline persistent client, in priority order on its return
        for prio in ["debug", "info", "emergency"]:
            res = await send(watch, target_uuid="lc-per", from_uuid="lc-watch", priority=prio, payload={"p": prio})
            assert res["status"] == "queued"
        async with bus_client(base, uuid="lc-per", client_type="blender", persistent=True) as back:
            assert back.registration["queued"] == 3
            records = await back.collector.wait_for(3)
            assert [r["payload"]["p"] for r in records] == ["emergency", "info", "debug"]


async def test_reregister_from_new_session_takes_over(server):
    base = server.url
    async with bus_client(base, uuid="to-watch") as watch:
        async with bus_client(base, uuid="to-blender", client_type="blender", persistent=True) as first:
            async with bus_client(base, uuid="to-blender", client_type="blender", persistent=True) as second:
                assert second.registration["took_over"] is True
                await send(watch, target_uuid="to-blender", from_uuid="to-watch", payload={"k": 1})
                await second.collector.wait_for(1)
                await asyncio.sleep(0.2)
                assert first.collector.records == []
                beat = tool_json(await first.call_tool("blender_heartbeat", {"client_uuid": "to-blender"}))
                assert beat["status"] == "replaced"


async def test_bad_arguments_get_structured_errors(server):
    base = server.url
    async with bus_client(base, uuid="bad-1") as c:
        too_big = await send(c, target_uuid="bad-1", payload={"blob": "x" * (1024 * 1024 + 10)})
        assert too_big["error"] == "payload_too_large" and too_big["limit"] == 1024 * 1024
        malformed = await send(c, target_uuid="bad-1", payload={"message_type": "job_dispatch", "script": 3})
        assert malformed["error"] == "invalid_payload" and "job_id" in malformed["message"]
        res = tool_json(await c.call_tool("blender_register_client", {"client_uuid": "", "client_type": "llm"}))
        assert res["error"] == "invalid_arguments"
        res = tool_json(await c.call_tool("blender_unregister_client", {"client_uuid": "nobody"}))
        assert res["status"] == "error" and res["error"] == "unknown_client"
        beat = tool_json(await c.call_tool("blender_heartbeat", {"client_uuid": "nobody"}))
        assert {k: beat[k] for k in ("status", "error")} == {k: res[k] for k in ("status", "error")}  # one shape
        # a wrong type is refused by the tool's schema, as an MCP error, not a crash
        raw = await c.call_tool("blender_send_message", {"payload": "not an object"}, raise_on_error=False)
        assert raw.is_error
        # still healthy afterwards
        assert (await send(c, target_uuid="bad-1", payload={"ok": True}))["status"] == "sent"


def test_login_in_the_spec_shape(server):
    auth = login(server.url)
    assert set(auth) >= {"access_token", "refresh_token", "token_type", "expires_in", "user"}
