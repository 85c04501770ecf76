"""Run records bounded in bytes (issue 19, item 1): a program's calls are kept as counts plus the
first and last ones, each cut to a preview, and the whole record under `--run-record-bytes`;
a room's records are trimmed by count and by bytes; `GET /rooms/NAME/runs` serves summaries from
their column, a page at a time, and never decodes a record on the event loop, so a room full of
the largest records answers in < 100 ms while another room's strokes still cross in < 100 ms,
in embedded mode (SQLite) and in cluster mode (PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from psycopg_pool import ConnectionPool

from agent.contract.callsample import HEAD, PREVIEW_BYTES, TAIL, sample
from agent.runs.bounded import fit
from agent.runs.records import RunRecords
from agent.runs.store import CACHED, AgentRun, RunStore, dump_json
from agent.sandbox import CallRecord
from canvas import Stroke
from common.postgres import open_pool
from wire.client import CanvasClient

from support.mcp_helpers import mcp_client, payload
from support.sql_engines import raw

RECORD_BYTES = 64 * 1024


# ---- what a record keeps ----------------------------------------------------------------------


def test_calls_are_counted_and_sampled_first_and_last_with_previews() -> None:
    calls = [CallRecord(name="canvas.stroke" if i % 3 else "canvas.bounds", args=[f"{i}" + "A" * 380], ms=0.1) for i in range(9999)]
    kept, counts, dropped = sample(calls)
    assert counts == {"canvas.stroke": 6666, "canvas.bounds": 3333} and dropped == 9999 - HEAD - TAIL
    assert [c.args.split("A")[0] for c in kept] == [f'["{i}' for i in [*range(HEAD), *range(9999 - TAIL, 9999)]]
    assert all(isinstance(c.args, str) and c.args.endswith("more bytes cut]") and len(c.args.encode()) < PREVIEW_BYTES + 40 for c in kept)
    run = AgentRun(room="r", prompt="p")
    for chunk in (calls[:10], calls[10:5000], calls[5000:]):  # one execute after another: the same sample
        run.keep_calls(chunk)
    assert run.calls == kept and run.call_counts == counts and run.calls_dropped == dropped


def test_a_record_is_cut_to_its_byte_limit_and_its_summary_is_small() -> None:
    run = AgentRun(room="r", prompt="p" * 4000, status="done", code=["x" * 32_000] * 24, errors=["e" * 1000] * 24, reply="r" * 16_000,
                   strokes=[f"stroke-{i:06d}" for i in range(4800)])
    run.keep_calls([CallRecord(name="canvas.draw", args={"points": [[i, i]] * 60}, ms=1) for i in range(300)])
    assert fit(run, RECORD_BYTES) <= RECORD_BYTES == 64 * 1024 and len(dump_json(run).encode()) <= RECORD_BYTES
    assert run.code and "more chars cut" in run.code[0] and run.ids_dropped > 0 and len(run.strokes) + run.ids_dropped == 4800
    assert run.call_counts == {"canvas.draw": 300}
    summary = dump_json(run.summary())
    assert len(summary.encode()) < 4096 and json.loads(summary)["drawn"] == 4800


# ---- the records database, both engines ---------------------------------------------------------


def row(run_id: str, size: int = 100, status: str = "done", room: str = "r") -> tuple[str, str, str, str]:
    run = AgentRun(id=run_id, room=room, prompt=run_id, status=status, code=["c" * size])  # type: ignore[arg-type]
    return (run_id, room, status, dump_json(run))


def test_summaries_come_a_page_at_a_time_from_their_column(where: Path | ConnectionPool) -> None:
    db = RunRecords.open(where)
    db.write([row(f"run-{i}") for i in range(1, 8)], [])
    page, older = db.summaries("r", 3)
    assert [i for i, _, _ in page] == ["run-5", "run-6", "run-7"] and older == "run-5"
    assert json.loads(page[0][2])["prompt"] == "run-5" and "code" not in json.loads(page[0][2]) and page[0][1] > 0
    page, older = db.summaries("r", 3, older)
    assert [i for i, _, _ in page] == ["run-2", "run-3", "run-4"] and older == "run-2"
    page, older = db.summaries("r", 3, older)
    assert [i for i, _, _ in page] == ["run-1"] and older is None
    assert db.summaries("r", 3, "run-nope") == ([], None) and db.summaries("empty", 3) == ([], None)
    db.close()


def test_a_rooms_records_are_trimmed_by_bytes_oldest_finished_first(where: Path | ConnectionPool) -> None:
    db = RunRecords.open(where, room_bytes=100_000)
    db.write([row("old-running", 30_000, "running")] + [row(f"run-{i}", 30_000) for i in range(6)] + [row("other", 30_000, room="s")], [])
    kept = [i for i, _, _ in db.summaries("r", 50)[0]]
    assert kept == ["old-running", "run-3", "run-4", "run-5"]  # the newest finished within 100 kB; a running one is never trimmed
    with db.sql.read() as c:
        assert c.row("SELECT SUM(bytes) FROM runs WHERE room = 'r' AND status = 'done'")[0] <= 100_000
    db.write([row("huge", 200_000)], [])  # the newest record always stays, alone if need be
    assert [i for i, _, _ in db.summaries("r", 50)[0]] == ["old-running", "huge"] and [i for i, _, _ in db.summaries("s", 5)[0]] == ["other"]
    db.close()


async def test_the_store_holds_few_runs_and_pages_the_rest_from_the_database(where: Path | ConnectionPool) -> None:
    store = RunStore(db=RunRecords.open(where), record_bytes=RECORD_BYTES)
    runs = [store.add(AgentRun(room="r", prompt=str(i), status="done")) for i in range(60)]
    store.flush()
    live = store.add(AgentRun(room="r", prompt="live", status="running"))  # not written yet: still listed, newest
    assert len(store.list("r")) == CACHED + 1  # the newest finished ones and the one in progress
    page, older = await store.page("r", 50)
    assert [json.loads(s)["prompt"] for s in page] == [str(i) for i in range(11, 60)] + ["live"] and older == runs[11].id
    page, older = await store.page("r", 50, older)
    assert [json.loads(s)["prompt"] for s in page] == [str(i) for i in range(11)] and older is None
    assert (await store.fetch("r", runs[0].id)).prompt == "0" and store.get("r", runs[0].id) is None  # read through, not held
    assert (await store.fetch("r", live.id)) is live
    store.close()


V1 = {False: "CREATE TABLE runs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, room TEXT NOT NULL, "
             "status TEXT NOT NULL, data TEXT NOT NULL); CREATE INDEX runs_room ON runs (room, seq);",
      True: "CREATE SCHEMA IF NOT EXISTS inhabit; CREATE TABLE inhabit.runs (seq bigserial PRIMARY KEY, id text NOT NULL UNIQUE, "
            "room text NOT NULL, status text NOT NULL, data text NOT NULL); CREATE INDEX runs_room ON inhabit.runs (room, seq);"}


def test_records_of_version_1_get_their_summaries_and_sizes(where: Path | ConnectionPool) -> None:
    pg = isinstance(where, ConnectionPool)
    old = [row("run-a", 5_000), row("run-b", 10)]
    raw(where, "runs.sqlite3", V1[pg], [(f"INSERT INTO {'inhabit.' if pg else ''}runs (id, room, status, data) VALUES (?, ?, ?, ?)", old)])
    db = RunRecords.open(where)
    page, older = db.summaries("r", 10)
    assert [(i, json.loads(s)["prompt"]) for i, _, s in page] == [("run-a", "run-a"), ("run-b", "run-b")] and older is None
    with db.sql.read() as c:
        assert c.rows("SELECT bytes FROM runs ORDER BY seq") == [(len(old[0][3]),), (len(old[1][3]),)]
    db.close()


# ---- a real server: the 9999-call execute ---------------------------------------------------------

LOOP = 'for (let i = 0; i < 9999; i++) canvas.stroke(i + "A".repeat(380)); "done"'


async def test_an_mcp_execute_of_9999_calls_makes_a_bounded_record(server) -> None:
    room = "calls"
    async with mcp_client(server, room) as c:
        out = payload(await c.call_tool("execute", {"code": LOOP}))
    assert out["ok"] and out["calls"] == {"canvas.stroke": 9999}, out
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.get(f"{server.http}/rooms/{room}/runs/{out['run']}", params={"token": server.token(room, "view")})
    assert r.status_code == 200 and len(r.content) <= RECORD_BYTES, len(r.content)
    record = r.json()
    assert record["call_counts"] == {"canvas.stroke": 9999} and record["calls_dropped"] == 9999 - HEAD - TAIL
    firsts = [json.dumps(c["args"])[:12] for c in record["calls"]]
    assert firsts[0].startswith('"[\\"0AAA') and firsts[HEAD - 1].startswith(f'"[\\"{HEAD - 1}A') and firsts[-1].startswith('"[\\"9998A')
    db = RunRecords.open(server.data_dir)
    with db.sql.read() as conn:
        assert conn.row("SELECT bytes FROM runs WHERE id = ?", (out["run"],))[0] <= RECORD_BYTES
    db.close()


# ---- a real server: GET /runs over a room full of the largest records -------------------------------


def largest_records(room: str, n: int = 200) -> list[tuple[str, str, str, str]]:
    """`n` records of a room, each cut to just under the byte limit (as the server writes them)."""
    rows = []
    for i in range(n):
        run = AgentRun(room=room, prompt=f"flood {i}", status="done", code=["A" * 6_000] * 8, strokes=[f"s{i}-{k}" for k in range(200)])
        run.keep_calls([CallRecord(name="canvas.stroke", args=["A" * 380], ms=0.1)] * 9999)
        fit(run, RECORD_BYTES)
        rows.append((run.id, room, run.status, dump_json(run)))
    assert all(RECORD_BYTES - 8192 < len(r[3]) <= RECORD_BYTES for r in rows)
    return rows


async def stroke_round_trip(a: CanvasClient, b: CanvasClient, i: int) -> float:
    """Seconds from a stroke drawn by `a` to its arrival at `b`."""
    sid = f"by-{i}"
    t0 = time.perf_counter()
    a.doc.add_strokes([Stroke(id=sid, points=[i, i, 0.5, i + 5, i + 5, 0.5])])
    await b.wait_for(lambda d: sid in d.stroke_ids(), 10)
    return time.perf_counter() - t0


async def timed(get: Callable[[], Awaitable[httpx.Response]]) -> float:
    t0 = time.perf_counter()
    r = await get()
    assert r.status_code == 200, r.text
    return time.perf_counter() - t0


async def list_and_bystander(node: Any, room: str) -> tuple[float, float, dict[str, Any]]:
    """While `GET /rooms/ROOM/runs` is asked over and over: the median time of that request and the
    median round trip of a stroke between two people in another room (after a warm-up)."""
    tok = node.token("*", "edit")
    a = await CanvasClient.connect(node.ws, "bystanders", tok, name="a")
    b = await CanvasClient.connect(node.ws, "bystanders", tok, name="b")
    try:
        async with httpx.AsyncClient(timeout=30, params={"token": node.token(room, "view")}) as http:
            url = f"{node.http}/rooms/{room}/runs"
            first = (await http.get(url, params={"limit": 200})).json()
            await stroke_round_trip(a, b, -1)  # warm-up
            lists: list[float] = []
            stop = asyncio.Event()

            async def flood() -> None:
                while not stop.is_set():
                    lists.append(await timed(lambda: http.get(url)))

            task = asyncio.create_task(flood())
            trips = []
            for i in range(15):
                trips.append(await stroke_round_trip(a, b, i))
                await asyncio.sleep(0.03)
            stop.set()
            await task
            one = await timed(lambda: http.get(f"{url}/{first['runs'][-1]['id']}"))
        return statistics.median(lists), statistics.median(trips), {"first": first, "record_s": one, "lists": len(lists)}
    finally:
        await asyncio.gather(a.close(), b.close(), return_exceptions=True)


def check_flood(list_s: float, trip_s: float, seen: dict[str, Any], rows: list[tuple[str, str, str, str]]) -> None:
    runs = seen["first"]["runs"]
    assert 100 <= len(runs) <= 200 and [r["id"] for r in runs] == [r[0] for r in rows][-len(runs):]  # kept by bytes (8 MiB), newest last
    assert len(runs) < 200 and "next" not in seen["first"]  # 8 MiB hold ~128 of them: one page, no older one
    assert list_s < 0.1, f"GET /runs took {list_s * 1000:.0f} ms (median of {seen['lists']})"
    assert trip_s < 0.1, f"a bystander's stroke took {trip_s * 1000:.0f} ms (median) while GET /runs was asked"
    assert seen["record_s"] < 0.5


@pytest.mark.serial  # timing-sensitive: runs alone under xdist
async def test_get_runs_over_a_room_of_the_largest_records_is_fast_embedded(server_factory) -> None:
    server = server_factory()
    rows = largest_records("flood")
    db = RunRecords.open(server.data_dir)  # the server's own file, written beside it (WAL): fast, as the server would
    db.write(rows, [])
    db.close()
    list_s, trip_s, seen = await list_and_bystander(server, "flood")
    check_flood(list_s, trip_s, seen, rows)


@pytest.mark.serial
@pytest.mark.timeout(120)
async def test_get_runs_over_a_room_of_the_largest_records_is_fast_in_a_cluster(cluster) -> None:
    node = cluster.node()
    rows = largest_records("flood")
    pool = open_pool(cluster.database_url, 2)
    try:
        db = RunRecords.open(pool)
        db.write(rows, [])
    finally:
        pool.close()
    list_s, trip_s, seen = await list_and_bystander(node, "flood")
    check_flood(list_s, trip_s, seen, rows)
