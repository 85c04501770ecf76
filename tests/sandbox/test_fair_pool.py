"""The fair pool's rules, on its own (issue 19 item 2): rooms take turns, then links; caps per
link and per room; a CPU budget per minute past which a share is refused, saying when to retry;
a run past its time limit keeps its turn until its thread ends. Real threads, no server."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from agent.sandbox import FairPool, OverBudget, Sandbox, Share, Shares


def _spin(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


async def _until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def test_rooms_take_turns_then_links_within_a_room():
    pool = FairPool(Shares(workers=1, link_turns=1, room_turns=1), name="test")
    gate = threading.Event()
    order: list[str] = []
    try:
        blocker = asyncio.create_task(pool.run(Share("z", "z"), gate.wait))
        await _until(lambda: pool.load() == (1, 0))
        jobs = []
        for room, link, n in [("big", "hog", 6), ("big", "other", 2), ("small", "victim", 1)]:
            for i in range(n):
                tag = f"{room}/{link}/{i}"
                jobs.append(asyncio.create_task(pool.run(Share(room, link), lambda tag=tag: order.append(tag))))
        await _until(lambda: pool.load() == (1, 9))
        gate.set()
        await asyncio.gather(blocker, *jobs)
    finally:
        pool.close()
    assert order[:2] == ["big/hog/0", "small/victim/0"]  # the other room's one job goes second, not tenth
    assert order[2:5] == ["big/other/0", "big/hog/1", "big/other/1"]  # then the big room's links alternate
    assert order[5:] == ["big/hog/2", "big/hog/3", "big/hog/4", "big/hog/5"]


async def test_a_link_holds_at_most_its_turns_in_all_rooms_and_a_room_its_own():
    pool = FairPool(Shares(workers=8, link_turns=2, room_turns=3), name="test")
    gate = threading.Event()
    try:
        star = [asyncio.create_task(pool.run(Share(f"r{i}", "star"), gate.wait)) for i in range(4)]  # one '*' link, 4 rooms
        await _until(lambda: pool.load() == (2, 2))
        crowd = [asyncio.create_task(pool.run(Share("busy", f"l{i}"), gate.wait)) for i in range(5)]
        await _until(lambda: pool.load() == (5, 4))  # 2 of the link's 4, 3 of the room's 5
        gate.set()
        await asyncio.gather(*star, *crowd)
    finally:
        pool.close()


async def test_past_its_cpu_budget_a_link_is_refused_and_told_when_to_retry_others_are_not():
    pool = FairPool(Shares(workers=2, link_cpu_s=0.3, room_cpu_s=10.0), name="sandbox")
    try:
        await pool.run(Share("a", "hog"), lambda: _spin(0.4))  # thread CPU time, charged once it ends
        with pytest.raises(OverBudget) as refused:
            await pool.run(Share("b", "hog"), lambda: None)  # the same link in another room: one budget
        assert "this link used its 0.3 CPU-seconds a minute of the sandbox: try again in" in str(refused.value)
        assert 0 < refused.value.retry_after <= 60 * 0.1 / 0.3 + 1
        await pool.run(Share("a", "someone-else"), lambda: None)  # another link of the same room is not
    finally:
        pool.close()


async def test_a_run_past_its_time_limit_keeps_its_turn_until_its_thread_ends():
    pool = FairPool(Shares(workers=1), name="test")
    release = threading.Event()
    try:
        with pytest.raises(TimeoutError):
            await pool.run(Share("a", "slow"), release.wait, timeout=0.05)
        assert pool.load() == (1, 0)  # the thread still runs: its turn is not given to anyone else
        nxt = asyncio.create_task(pool.run(Share("b", "next"), lambda: "ran"))
        await _until(lambda: pool.load() == (1, 1))
        release.set()
        assert await nxt == "ran"
        await _until(lambda: pool.load() == (0, 0))
    finally:
        pool.close()


async def test_a_waiter_that_leaves_gives_its_place_up():
    pool = FairPool(Shares(workers=1), name="test")
    gate = threading.Event()
    try:
        holder = asyncio.create_task(pool.run(Share("a", "a"), gate.wait))
        await _until(lambda: pool.load() == (1, 0))
        leaver = asyncio.create_task(pool.run(Share("b", "b"), lambda: "never"))
        await _until(lambda: pool.load() == (1, 1))
        leaver.cancel()
        gate.set()
        await holder
        assert await pool.run(Share("c", "c"), lambda: "ran") == "ran"
        assert pool.load() == (0, 0)
    finally:
        pool.close()


async def test_the_sandbox_runs_in_turns_and_charges_the_share():
    sandbox = Sandbox(shares=Shares(workers=2, link_cpu_s=0.5))
    try:
        record = await sandbox.run("while (true) {}", share=Share("r", "looper"), limits=None)
        assert record.error is not None and record.error.kind == "timeout"
        with pytest.raises(OverBudget):
            await sandbox.run("1 + 1", share=Share("r2", "looper"))
        assert (await sandbox.run("1 + 1", share=Share("r2", "victim"))).result == 2
    finally:
        sandbox.close()


async def test_work_waiting_when_its_link_runs_out_of_budget_is_refused_when_it_comes_up():
    pool = FairPool(Shares(workers=2, link_turns=1, link_cpu_s=0.2), name="renderer")
    try:
        first = asyncio.create_task(pool.run(Share("big", "hog"), lambda: _spin(0.3)))
        queued = [asyncio.create_task(pool.run(Share("big", "hog"), lambda: "ran")) for _ in range(5)]
        await _until(lambda: pool.load() == (1, 5))
        await first
        outcomes = await asyncio.gather(*queued, return_exceptions=True)
        assert all(isinstance(o, OverBudget) for o in outcomes), outcomes
        assert pool.load() == (0, 0)
    finally:
        pool.close()
