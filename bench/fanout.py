"""Fan-out + join benchmark: the SAME Node load against our server and @y/websocket-server.

    .venv/bin/python bench/fanout.py                      # defaults: 500 clients, 50 rooms, 1 upd/s
    .venv/bin/python bench/fanout.py --clients 100 --rooms 10 --duration 5 --servers node

See bench/README.md. All loopback; servers are killed at the end, even on error.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _servers import ROOT, Server, make_server, py_spy_available

LOAD = ROOT / "bench" / "fanout_load.mjs"


def pct(sorted_vals: list[float], q: float) -> float:
    if not sorted_vals:
        return float("nan")
    k = min(len(sorted_vals) - 1, max(0, round(q * (len(sorted_vals) - 1))))
    return sorted_vals[k]


def _reader(proc: subprocess.Popen, lines: list[str], ev: threading.Event) -> None:
    for raw in proc.stdout:  # type: ignore[union-attr]
        lines.append(raw.rstrip("\n"))
        ev.set()


def run_fanout(srv: Server, args: argparse.Namespace, prefix: str, profile_dir: Path | None) -> dict:
    workers = []
    procs: list[psutil.Process] = []
    outs: list[list[str]] = []
    evs: list[threading.Event] = []
    try:
        for w in range(args.workers):
            spec = dict(base=srv.ws_base, prefix=prefix, clients=args.clients, rooms=args.rooms,
                        worker=w, workers=args.workers, rate=args.rate,
                        warmupMs=int(args.warmup * 1000), durationMs=int(args.duration * 1000),
                        drainMs=int(args.drain * 1000), points=args.points,
                        deflate=not args.no_deflate)
            p = subprocess.Popen(["node", str(LOAD), json.dumps(spec)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=True)
            workers.append(p)
            procs.append(psutil.Process(p.pid))
            lines: list[str] = []
            ev = threading.Event()
            threading.Thread(target=_reader, args=(p, lines, ev), daemon=True).start()
            outs.append(lines)
            evs.append(ev)

        def wait_for(tag: str, timeout: float) -> list[dict]:
            deadline = time.monotonic() + timeout
            res: list[dict | None] = [None] * len(workers)
            while time.monotonic() < deadline:
                for i, lines in enumerate(outs):
                    for ln in lines:
                        if ln.startswith(tag + " "):
                            res[i] = json.loads(ln[len(tag) + 1:])
                if all(r is not None for r in res):
                    return res  # type: ignore[return-value]
                for p in workers:
                    if p.poll() is not None and p.returncode != 0:
                        raise RuntimeError(f"load worker exited {p.returncode}")
                time.sleep(0.05)
            raise RuntimeError(f"timeout waiting for {tag} from load workers")

        ready = wait_for("READY", 180)
        t_go = time.time() * 1000 + 300
        for p in workers:
            p.stdin.write(f"GO {t_go}\n")  # type: ignore[union-attr]
            p.stdin.flush()  # type: ignore[union-attr]
        m_start = t_go / 1000 + args.warmup
        m_end = m_start + args.duration
        time.sleep(max(0.0, m_start - time.time()))
        srv_cpu0 = srv.cpu_seconds()
        gen_cpu0 = [sum(p.cpu_times()[:2]) for p in procs]
        srv.reset_peak()
        spy = None
        if profile_dir is not None and srv.kind == "ours" and py_spy_available():
            out = profile_dir / "ours-fanout.txt"
            spy = subprocess.Popen([py_spy_available(), "record", "-p", str(srv.proc.pid), "-d",
                                    str(max(1, int(args.duration) - 1)), "-r", "100", "-f", "raw",
                                    "-o", str(out), "--nonblocking"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t_a = time.time()
        time.sleep(max(0.0, m_end - time.time()))
        wall = time.time() - t_a
        srv_cpu = srv.cpu_seconds() - srv_cpu0
        gen_cpu = [sum(p.cpu_times()[:2]) - c0 for p, c0 in zip(procs, gen_cpu0, strict=True)]
        peak = srv.peak_rss
        results = wait_for("RESULT", args.drain + 60)
        if spy is not None:
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
    received = sum(r["received"] for r in results)
    expected = sum(r["expectedWindow"] for r in results)
    return dict(
        server=srv.kind,
        connect_s=max(r["connectS"] for r in ready),
        extensions=(ready[0].get("extensions") or "none").replace("permessage-", ""),
        sent_per_s=sum(r["sentWindow"] for r in results) / args.duration,
        expected_per_s=expected / args.duration,
        delivered_per_s=received / args.duration,
        delivery_ratio=(received / expected) if expected else float("nan"),
        p50_ms=pct(lat, 0.50), p99_ms=pct(lat, 0.99), max_ms=lat[-1] if lat else float("nan"),
        srv_cpu_pct=100 * srv_cpu / wall, srv_cpu_s=srv_cpu, srv_peak_rss_mib=peak / 2**20,
        gen_cpu_pct=100 * sum(gen_cpu) / wall,
        gen_cpu_pct_max_worker=100 * max(gen_cpu) / wall,
        gen_lag_max_ms=max(r["eventLoopLagMaxMs"] for r in results),
        closed=sum(r["closed"] for r in results),
    )


def run_join(srv: Server, args: argparse.Namespace, room: str, profile_dir: Path | None = None) -> dict:
    spy = None
    if profile_dir is not None and srv.kind == "ours" and py_spy_available():
        spy = subprocess.Popen([py_spy_available(), "record", "-p", str(srv.proc.pid), "-d", "120",
                                "-r", "200", "-f", "raw", "-o", str(profile_dir / "ours-join.txt"),
                                "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return _run_join(srv, args, room)
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)


def _run_join(srv: Server, args: argparse.Namespace, room: str) -> dict:
    spec = dict(mode="join", base=srv.ws_base, room=room, strokes=args.join_strokes,
                joins=args.joins, points=args.points, deflate=not args.no_deflate)
    p = subprocess.run(["node", str(LOAD), json.dumps(spec)], capture_output=True, text=True,
                       cwd=ROOT, timeout=300)
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"join run failed ({p.returncode}): {p.stderr[-2000:]}")
    r = json.loads(line[7:])
    times = sorted(r["times"])
    recvs = sorted(x for x in r["recvs"] if x is not None)
    return dict(server=srv.kind, join_p50_ms=pct(times, 0.5), join_max_ms=times[-1],
                step2_p50_ms=pct(recvs, 0.5), populate_s=r["populateS"],
                update_mib=r["updateBytes"] / 2**20, step2_mib=(r.get("wireBytes") or 0) / 2**20, rss_after_mib=srv.rss() / 2**20,
                check=r["checkSize"])


def median_dict(runs: list[dict]) -> dict:
    """Per-metric median over repeats (strings: first run's)."""
    out = {}
    for key, v0 in runs[0].items():
        vals = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
        out[key] = statistics.median(vals) if vals and not isinstance(v0, str) else v0
    return out


def fmt(v: float, nd: int = 1) -> str:
    if isinstance(v, str):
        return v
    if v != v:  # nan
        return "-"
    return f"{v:,.{nd}f}"


def print_table(title: str, rows: list[tuple[str, str, int, bool]], res: dict[str, dict]) -> None:
    kinds = [k for k in ("ours", "node") if k in res]
    print(f"\n{title}")
    hdr = f"  {'metric':<34}" + "".join(f"{k:>12}" for k in kinds)
    both = len(kinds) == 2
    if both:
        hdr += f"{'ours/node':>12}"
    print(hdr)
    print("  " + "-" * (len(hdr) - 2))
    for key, label, nd, ratio in rows:
        line = f"  {label:<34}" + "".join(f"{fmt(res[k].get(key, float('nan')), nd):>12}" for k in kinds)
        if both and ratio:
            a, b = res["ours"].get(key), res["node"].get(key)
            line += f"{(a / b if isinstance(a, (int, float)) and b else float('nan')):>12.2f}"
        print(line)


FANOUT_ROWS = [
    ("sent_per_s", "sent updates/s", 0, True),
    ("expected_per_s", "expected deliveries/s", 0, True),
    ("delivered_per_s", "DELIVERED updates/s", 0, True),
    ("delivery_ratio", "delivered / expected", 3, True),
    ("p50_ms", "latency p50 ms", 2, True),
    ("p99_ms", "LATENCY p99 ms", 2, True),
    ("max_ms", "latency max ms", 1, True),
    ("srv_cpu_pct", "server CPU % of one core", 1, True),
    ("srv_cpu_s", "server CPU s (window)", 2, True),
    ("srv_peak_rss_mib", "server peak RSS MiB", 1, True),
    ("gen_cpu_pct", "generator CPU % (all workers)", 1, False),
    ("gen_cpu_pct_max_worker", "generator CPU % (busiest worker)", 1, False),
    ("gen_lag_max_ms", "generator event-loop lag max ms", 1, False),
    ("connect_s", "connect+sync all clients s", 2, True),
    ("closed", "sockets closed by server", 0, False),
    ("extensions", "ws extensions negotiated", 0, False),
]
JOIN_ROWS = [
    ("join_p50_ms", "JOIN p50 ms (connect->synced)", 1, True),
    ("join_max_ms", "join max ms", 1, True),
    ("step2_p50_ms", "SyncStep2 arrives p50 ms", 1, True),
    ("update_mib", "doc state MiB (client re-encode)", 2, False),
    ("step2_mib", "SyncStep2 message MiB", 2, True),
    ("populate_s", "populate room s", 2, True),
    ("rss_after_mib", "server RSS after join MiB", 1, True),
    ("check", "strokes seen by check client", 0, False),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=500)
    ap.add_argument("--rooms", type=int, default=50)
    ap.add_argument("--rate", type=float, default=1.0, help="stroke updates/s per client")
    ap.add_argument("--duration", type=float, default=15.0, help="measured seconds")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds of load before measuring")
    ap.add_argument("--drain", type=float, default=1.5, help="seconds to wait after sending stops")
    ap.add_argument("--points", type=int, default=20, help="points per stroke ([x,y,p] triples)")
    ap.add_argument("--workers", type=int, default=2, help="node load-generator processes")
    ap.add_argument("--servers", default="ours,node", help="comma list of ours,node (run in that order)")
    ap.add_argument("--join-strokes", type=int, default=10_000)
    ap.add_argument("--joins", type=int, default=10)
    ap.add_argument("--no-join", action="store_true")
    ap.add_argument("--no-fanout", action="store_true")
    ap.add_argument("--deflate", dest="no_deflate", action="store_false", default=True,
                    help="clients offer permessage-deflate (as browsers do; only ours accepts it)")
    ap.add_argument("--no-deflate", dest="no_deflate", action="store_true",
                    help="clients do not offer permessage-deflate (default)")
    ap.add_argument("--profile", action="store_true", help="py-spy record our server during the window")
    ap.add_argument("--ours-cmd", default=None,
                    help="override, e.g. '{python} -m inhabit serve --host 127.0.0.1 --port {port} --data {data} --open'")
    ap.add_argument("--repeat", type=int, default=1, help="alternate servers K times; tables show medians")
    ap.add_argument("--json", default=None, help="also write results as JSON here")
    args = ap.parse_args()

    log_dir = Path(tempfile.mkdtemp(prefix="inhabit-fanout-"))
    prof_dir = log_dir if args.profile else None
    kinds = [k.strip() for k in args.servers.split(",") if k.strip()]
    fan: dict[str, dict] = {}
    joi: dict[str, dict] = {}
    tag = f"b{int(time.time()) % 100000}"
    print(f"fanout: {args.clients} clients / {args.rooms} rooms, {args.rate} upd/s/client, "
          f"{args.points}-point strokes, warmup {args.warmup}s, measured {args.duration}s, "
          f"{args.workers} generator proc(s), deflate {'off' if args.no_deflate else 'offered'}, "
          f"{os.cpu_count()} cores, load avg {os.getloadavg()[0]:.1f}; logs in {log_dir}", flush=True)
    fan_runs: dict[str, list[dict]] = {}
    join_runs: dict[str, list[dict]] = {}
    for rep in range(args.repeat):
        order = kinds if rep % 2 == 0 else kinds[::-1]  # alternate to spread machine noise
        for kind in order:
            srv = make_server(kind, log_dir, args.ours_cmd)
            try:
                srv.start()
                if not args.no_fanout:
                    r = run_fanout(srv, args, f"{tag}-{rep}-{kind}", prof_dir if rep == 0 else None)
                    fan_runs.setdefault(kind, []).append(r)
                    print(f"  [{rep}] {kind}: delivered {r['delivered_per_s']:.0f}/s p50 {r['p50_ms']:.2f} ms "
                          f"p99 {r['p99_ms']:.2f} ms srv cpu {r['srv_cpu_pct']:.0f}% gen cpu {r['gen_cpu_pct']:.0f}%",
                          flush=True)
                if not args.no_join:
                    j = run_join(srv, args, f"{tag}-{rep}-{kind}-join", prof_dir if rep == 0 else None)
                    join_runs.setdefault(kind, []).append(j)
                    print(f"  [{rep}] {kind}: join p50 {j['join_p50_ms']:.1f} ms (step2 arrives {j['step2_p50_ms']:.1f} ms)",
                          flush=True)
            except Exception as e:  # keep going to the other server; report the failure
                print(f"  [{rep}] {kind}: FAILED: {e}", flush=True)
            finally:
                srv.stop()
    fan = {k: median_dict(v) for k, v in fan_runs.items()}
    joi = {k: median_dict(v) for k, v in join_runs.items()}
    if fan:
        print_table(f"FAN-OUT ({args.clients} clients, {args.rooms} rooms, {args.rate}/s each, "
                    f"{args.duration:g}s measured, median of {args.repeat})", FANOUT_ROWS, fan)
    if joi:
        print_table(f"JOIN (room with {args.join_strokes} strokes, {args.joins} sequential joins; "
                    f"populator stays connected, median of {args.repeat})", JOIN_ROWS, joi)
    goals = []
    if "ours" in fan:
        goals.append(f"p99 <= 50 ms: {'PASS' if fan['ours']['p99_ms'] <= 50 else 'FAIL'}")
        if "node" in fan:
            ok = fan["ours"]["delivered_per_s"] >= 0.995 * fan["node"]["delivered_per_s"]
            goals.append(f"delivered >= 1.0x node: {'PASS' if ok else 'FAIL'}")
    if "ours" in joi:
        goals.append(f"join <= 100 ms: {'PASS' if joi['ours']['join_p50_ms'] <= 100 else 'FAIL'}")
    if goals:
        print("\nGOALS (ours): " + "; ".join(goals))
    if args.profile:
        print(f"profiles (py-spy raw; summarise with bench/_pyspy_summary.py): "
              f"{log_dir}/ours-fanout.txt {log_dir}/ours-join.txt")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "fanout": fan, "join": joi,
                                                  "fanout_runs": fan_runs, "join_runs": join_runs}, indent=2))
    return 0 if fan or joi else 1


if __name__ == "__main__":
    sys.exit(main())
