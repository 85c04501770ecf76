"""Cluster benchmark: bench/fanout.py's load against one process and against a cluster.

    .venv/bin/python bench/cluster.py                          # 500 clients / 50 rooms / 1 upd/s, 15 s measured
    .venv/bin/python bench/cluster.py --clients 100 --rooms 10 --duration 5 --warmup 2
    .venv/bin/python bench/cluster.py --setups embedded,cluster2 --repeat 3
    .venv/bin/python bench/cluster.py --setups cluster2 --profile     # py-spy each node; profiles in the logs folder

Setups (the same Node load generator, two worker processes, each client in room i % rooms):
- `embedded`: today's single process with SQLite (the figure cluster mode is measured against);
- `cluster1`: one cluster-mode node on Redis + PostgreSQL (the cost of the commit going to Redis);
- `cluster2`: two nodes; generator worker 0's clients connect to node A, worker 1's to node B, so
  every room has members on both nodes and every update crosses nodes for half its receivers.

Reported per setup: delivered updates/s and delivery ratio, latency p50/p99 (all deliveries, and
cross-node ones: strokes written by the other worker's clients), server CPU per delivered update
(each node, and the sum), Redis commands and PostgreSQL transactions per update sent, and the
CPU of Redis and PostgreSQL themselves. "Nothing lost": after the load, every room is read back
from every node over HTTP and must hold every stroke the generator sent.

Redis runs with `appendonly yes`, `appendfsync everysec` (the README's recommended setting).
Everything is on loopback in temp folders and stopped at the end, also on error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _servers import PY, ROOT, Server, free_port, py_spy_available
from fanout import LOAD, _reader, pct

from support.cluster_fixtures import Postgres, RedisServer


def node(kind: str, log_dir: Path, env: dict[str, str], n: int) -> Server:
    port = free_port()
    data = tempfile.TemporaryDirectory(prefix="inhabit-bench-")
    cmd = [str(PY), "-m", "inhabit", "serve", "--host", "127.0.0.1", "--port", str(port), "--data", data.name, "--open"]
    srv = Server("ours", cmd, {**os.environ, **env}, port, f"ws://127.0.0.1:{port}/rooms", log_dir / f"{kind}-{n}.log")
    srv.tmp = data
    return srv


def proc_cpu(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        for q in [p, *p.children(recursive=True)]:
            try:
                t = q.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
    return total


def run_load(servers: list[Server], args: argparse.Namespace, prefix: str, redis: RedisServer | None,
             pg: Postgres | None, db: str | None) -> dict:
    """One fan-out run: worker w's clients connect to servers[w % len(servers)]."""
    workers, procs, outs = [], [], []
    try:
        for w in range(args.workers):
            base = servers[w % len(servers)].ws_base
            spec = dict(base=base, prefix=prefix, clients=args.clients, rooms=args.rooms, worker=w, workers=args.workers, rate=args.rate,
                        warmupMs=int(args.warmup * 1000), durationMs=int(args.duration * 1000), drainMs=int(args.drain * 1000),
                        points=args.points, deflate=False)
            p = subprocess.Popen(["node", str(LOAD), json.dumps(spec)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                 cwd=ROOT, start_new_session=True)
            workers.append(p)
            procs.append(psutil.Process(p.pid))
            lines: list[str] = []
            threading.Thread(target=_reader, args=(p, lines, threading.Event()), daemon=True).start()
            outs.append(lines)

        def wait_for(tag: str, timeout: float) -> list[dict]:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                found = [next((json.loads(ln[len(tag) + 1:]) for ln in lines if ln.startswith(tag + " ")), None) for lines in outs]
                if all(f is not None for f in found):
                    return found  # type: ignore[return-value]
                if any(p.poll() not in (None, 0) for p in workers):
                    raise RuntimeError("a load worker failed")
                time.sleep(0.05)
            raise RuntimeError(f"timeout waiting for {tag}")

        wait_for("READY", 180)
        t_go = time.time() * 1000 + 300
        for p in workers:
            p.stdin.write(f"GO {t_go}\n")  # type: ignore[union-attr]
            p.stdin.flush()  # type: ignore[union-attr]
        m_start = t_go / 1000 + args.warmup
        time.sleep(max(0.0, m_start - time.time()))
        backends = [pg_procs(pg)] if pg else []
        cpu0 = [s.cpu_seconds() for s in servers]
        gen0 = proc_cpu(procs)
        redis0 = proc_cpu([psutil.Process(redis.proc.pid)]) if redis and redis.proc else 0.0
        pg0 = proc_cpu(backends[0]) if backends else 0.0
        cmds0 = redis.commands() if redis else 0
        calls0 = node_calls(servers) if redis else 0
        xacts0 = pg_xacts(pg, db) if pg and db else 0
        spies = []
        if args.profile and py_spy_available():  # each node's stacks over the window, as bench/fanout.py --profile
            for i, s in enumerate(servers):
                out = args.log_dir / f"{prefix}-node{i}.txt"
                spies.append(subprocess.Popen([py_spy_available(), "record", "-p", str(s.proc.pid), "-d",
                                               str(max(1, int(args.duration) - 1)), "-r", "100", "-f", "raw", "-o", str(out),
                                               "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        t_a = time.time()
        time.sleep(max(0.0, m_start + args.duration - time.time()))
        wall = time.time() - t_a
        cpu = [s.cpu_seconds() - c0 for s, c0 in zip(servers, cpu0, strict=True)]
        gen = proc_cpu(procs) - gen0
        redis_cpu = proc_cpu([psutil.Process(redis.proc.pid)]) - redis0 if redis and redis.proc else 0.0
        pg_cpu = proc_cpu(pg_procs(pg)) - pg0 if pg else 0.0
        cmds = redis.commands() - cmds0 if redis else 0
        calls = node_calls(servers) - calls0 if redis else 0
        xacts = pg_xacts(pg, db) - xacts0 if pg and db else 0
        results = wait_for("RESULT", args.drain + 60)
        for spy in spies:
            spy.wait(30)
    finally:
        for p in workers:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            p.wait()
    lat = sorted(x for r in results for x in r["lat"])
    cross = sorted(x for r in results for x in r["latCross"])
    received = sum(r["received"] for r in results)
    expected = sum(r["expectedWindow"] for r in results)
    sent = sum(r["sentWindow"] for r in results)
    delivered = received / args.duration
    return dict(
        delivered_per_s=delivered, delivery_ratio=received / expected if expected else float("nan"),
        p50_ms=pct(lat, 0.5), p99_ms=pct(lat, 0.99), cross_p50_ms=pct(cross, 0.5), cross_p99_ms=pct(cross, 0.99),
        cpu_pct=[100 * c / wall for c in cpu], cpu_us_per_delivered=[1e6 * c / max(1, received) for c in cpu],
        cpu_us_per_delivered_total=1e6 * sum(cpu) / max(1, received),
        redis_cmds_per_update=cmds / max(1, sent), redis_calls_per_update=calls / max(1, sent), pg_xacts_per_update=xacts / max(1, sent),
        redis_cpu_pct=100 * redis_cpu / wall, pg_cpu_pct=100 * pg_cpu / wall, gen_cpu_pct=100 * gen / wall,
        gen_lag_max_ms=max(r["eventLoopLagMaxMs"] for r in results), closed=sum(r["closed"] for r in results),
        sent_all=sum(r["sentAll"] for r in results),
    )


def pg_procs(pg: Postgres | None) -> list[psutil.Process]:
    if pg is None or pg.proc is None:
        return []
    return [psutil.Process(pg.proc.pid)]


def pg_xacts(pg: Postgres, db: str) -> int:
    name = db.rsplit("/", 1)[1]
    rows = pg.execute(f"SELECT xact_commit FROM pg_stat_database WHERE datname = '{name}'")
    return int(rows[0][0]) if rows else 0


def stored_strokes(servers: list[Server], prefix: str, rooms: int) -> list[int]:
    """Strokes each server holds over all the run's rooms, as a joining client gets them."""
    from wire.client import CanvasClient

    async def count(srv: Server) -> int:
        total = 0
        for r in range(rooms):
            c = await CanvasClient.connect(srv.ws_base, f"{prefix}-r{r}", reconnect=False, timeout=30)
            total += len(c.doc.stroke_ids())
            await c.close()
        return total

    return [asyncio.run(count(srv)) for srv in servers]


def node_calls(servers: list[Server]) -> int:
    """Redis round trips the nodes made (append script calls + stream reads), from their /metrics."""
    total = 0
    for srv in servers:
        with urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/metrics", timeout=10) as resp:
            for line in resp.read().decode().splitlines():
                if line.startswith(("inhabit_stream_append_calls_total ", "inhabit_stream_reads_total ")):
                    total += int(float(line.split()[1]))
    return total


def run_setup(setup: str, args: argparse.Namespace, log_dir: Path, tag: str) -> dict:
    redis = pg = db = None
    servers: list[Server] = []
    try:
        env: dict[str, str] = {}
        if setup != "embedded":
            redis = RedisServer(log_dir / f"redis-{tag}", appendfsync="everysec").start()
            pg = Postgres().start()
            db = pg.create_database()
            env = {"INHABIT_REDIS_URL": redis.url, "INHABIT_DATABASE_URL": db}
        count = 2 if setup == "cluster2" else 1
        servers = [node(setup, log_dir, env, i) for i in range(count)]
        for s in servers:
            s.start()
        prefix = f"{tag}-{setup}"
        res = run_load(servers, args, prefix, redis, pg, db)
        time.sleep(1.0)
        res["stored"] = stored_strokes(servers, prefix, args.rooms)
        res["lost"] = max(res["sent_all"] - n for n in res["stored"])
        return res
    finally:
        for s in servers:
            s.stop()
        if redis is not None:
            redis.stop()
        if pg is not None:
            pg.cleanup()


def fmt(v: object, nd: int = 1) -> str:
    if isinstance(v, list):
        return " + ".join(fmt(x, nd) for x in v)
    if isinstance(v, float) and v != v:
        return "-"
    return f"{v:,.{nd}f}" if isinstance(v, (int, float)) else str(v)


ROWS = [
    ("delivered_per_s", "delivered updates/s", 0),
    ("delivery_ratio", "delivered / expected", 3),
    ("lost", "strokes lost (sent - stored, worst node)", 0),
    ("p50_ms", "latency p50 ms (all)", 2),
    ("p99_ms", "latency p99 ms (all)", 2),
    ("cross_p50_ms", "cross-node latency p50 ms", 2),
    ("cross_p99_ms", "CROSS-NODE LATENCY p99 ms", 2),
    ("cpu_pct", "server CPU % of a core (per node)", 1),
    ("cpu_us_per_delivered", "server CPU us / delivered (per node)", 1),
    ("cpu_us_per_delivered_total", "SERVER CPU us / DELIVERED (all nodes)", 1),
    ("redis_calls_per_update", "Redis round trips / update sent (nodes)", 2),
    ("redis_cmds_per_update", "Redis commands / update (scripts' inside)", 2),
    ("pg_xacts_per_update", "PostgreSQL transactions / update sent", 3),
    ("redis_cpu_pct", "redis-server CPU %", 1),
    ("pg_cpu_pct", "PostgreSQL CPU %", 1),
    ("gen_cpu_pct", "load generator CPU % (2 procs)", 1),
    ("gen_lag_max_ms", "generator event-loop lag max ms", 1),
    ("closed", "sockets closed by a server", 0),
]


def median(runs: list[dict]) -> dict:
    out: dict = {}
    for key, v0 in runs[0].items():
        if isinstance(v0, list):
            out[key] = [statistics.median(r[key][i] for r in runs) for i in range(len(v0))]
        elif isinstance(v0, (int, float)):
            out[key] = statistics.median(r[key] for r in runs)
        else:
            out[key] = v0
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=500)
    ap.add_argument("--rooms", type=int, default=50)
    ap.add_argument("--rate", type=float, default=1.0, help="stroke updates/s per client")
    ap.add_argument("--duration", type=float, default=15.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--drain", type=float, default=1.5)
    ap.add_argument("--points", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2, help="load generator processes (worker w -> node w %% nodes)")
    ap.add_argument("--setups", default="embedded,cluster1,cluster2")
    ap.add_argument("--repeat", type=int, default=1, help="alternate the setups K times; medians")
    ap.add_argument("--json", default=None)
    ap.add_argument("--profile", action="store_true", help="py-spy record every node during the window (summarise with "
                                                          "bench/_pyspy_summary.py); costs CPU: not for the figures")
    args = ap.parse_args()
    setups = [s.strip() for s in args.setups.split(",") if s.strip()]
    log_dir = args.log_dir = Path(tempfile.mkdtemp(prefix="inhabit-cluster-bench-"))
    tag = f"c{int(time.time()) % 100000}"
    print(f"cluster bench: {args.clients} clients / {args.rooms} rooms, {args.rate} upd/s/client, {args.points}-point strokes, "
          f"warmup {args.warmup}s, measured {args.duration}s, {args.workers} generator procs, {os.cpu_count()} cores, "
          f"load avg {os.getloadavg()[0]:.1f}; logs in {log_dir}", flush=True)
    runs: dict[str, list[dict]] = {}
    for rep in range(args.repeat):
        for setup in setups if rep % 2 == 0 else setups[::-1]:
            try:
                r = run_setup(setup, args, log_dir, f"{tag}-{rep}")
            except Exception as e:
                print(f"  [{rep}] {setup}: FAILED: {e}", flush=True)
                continue
            runs.setdefault(setup, []).append(r)
            print(f"  [{rep}] {setup}: delivered {r['delivered_per_s']:.0f}/s p99 {r['p99_ms']:.1f} ms cross p99 {fmt(r['cross_p99_ms'])} ms "
                  f"cpu {fmt(r['cpu_pct'])} % lost {r['lost']}", flush=True)
    res = {k: median(v) for k, v in runs.items()}
    print(f"\nFAN-OUT ACROSS NODES ({args.clients} clients, {args.rooms} rooms, {args.rate}/s each, {args.duration:g}s measured, "
          f"median of {args.repeat})")
    print(f"  {'metric':<42}" + "".join(f"{k:>20}" for k in res))
    for key, label, nd in ROWS:
        print(f"  {label:<42}" + "".join(f"{fmt(r.get(key, float('nan')), nd):>20}" for r in res.values()))
    goals = []
    if "cluster2" in res:
        c2 = res["cluster2"]
        goals.append(f"nothing lost: {'PASS' if c2['lost'] == 0 and c2['delivery_ratio'] >= 0.999 else 'FAIL'}")
        goals.append(f"cross-node p99 <= 50 ms: {'PASS' if c2['cross_p99_ms'] <= 50 else 'FAIL'} ({c2['cross_p99_ms']:.1f})")
        for single in ("embedded", "cluster1"):  # one process as today, and one node of a cluster
            if single in res:
                ratio = c2["cpu_us_per_delivered_total"] / res[single]["cpu_us_per_delivered_total"]
                goals.append(f"CPU/delivered <= 1.5x {single}: {'PASS' if ratio <= 1.5 else 'FAIL'} ({ratio:.2f}x)")
    if goals:
        print("\nGOALS (cluster2): " + "; ".join(goals))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": res, "runs": runs}, indent=2, default=str))
    return 0 if res else 1


if __name__ == "__main__":
    sys.exit(main())
