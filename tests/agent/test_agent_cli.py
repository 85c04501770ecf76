"""`inhabit exec FILE.js --room URL --grant ...` and `inhabit agent ...` against a live server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from support import ROOT
from support.agent_helpers import FINAL_TEXT, board_strokes, cell_of, connect, inhabit, play_script, scripted_env, wait_chat
from support.model_server import ModelServer


async def test_exec_against_a_live_room(server, tmp_path):
    room = "cli"
    watcher = await connect(server, room, "wendy", role="view")
    try:
        js = tmp_path / "line.js"
        js.write_text("const n = canvas.strokes().length; canvas.draw({points: [[10, 10], [90, 40]], color: '#00aa00'}); n")
        url = f"{server.ws}/{room}?token={server.token(room, 'edit')}"
        out = inhabit("exec", str(js), "--room", url, "--grant", "write")
        assert out.returncode == 0, out.stderr + out.stdout
        rec = json.loads(out.stdout)
        assert rec["ok"] and rec["result"] == 0 and len(rec["written"]["drawn"]) == 1
        sid = rec["written"]["drawn"][0]
        await watcher.wait_for(lambda: watcher.doc.stroke(sid) is not None, 10)
        s = watcher.doc.stroke(sid)
        assert s.kind == "agent" and s.run == rec["written"]["run"] and s.color == "#00aa00"

        # read grant: no draw function, exit status 1, nothing written
        out = inhabit("exec", str(js), "--room", url)
        assert out.returncode == 1 and not json.loads(out.stdout)["ok"]
        assert len(watcher.doc.strokes()) == 1

        # a bad URL is a readable error, not a traceback
        out = inhabit("exec", str(js), "--room", "http://nowhere")
        assert out.returncode == 2 and "room URL" in out.stderr and "Traceback" not in out.stderr
    finally:
        await watcher.close()


async def test_agent_command_answers_chat_prompts(server_factory):
    ms = ModelServer().start()
    room = "cliagent"
    ms.script(room, play_script())
    server = server_factory()
    proc = None
    alice = await connect(server, room, "alice")
    try:
        alice.doc.add_strokes(board_strokes())
        env = {**os.environ, "PYTHONPATH": str(ROOT), **scripted_env(ms)}
        proc = subprocess.Popen([sys.executable, "-m", "inhabit", "agent", "--server", server.http, "--room", room, "--token", server.token(room, "edit"), "--name", "claude"],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        await alice.wait_for(lambda: any((s.get("user") or {}).get("name") == "claude" for s in alice.awareness().values()), 20)
        from canvas import Message

        alice.doc.post(Message(author="alice", text="@claude your move"))
        # an agent the server did not start is shown as the link it connects with (issue 18): its
        # lines keep their run, not the agent badge
        reply = await wait_chat(alice, lambda m: m.author == "claude" and FINAL_TEXT in m.text, 30)
        assert reply.kind == "human" and reply.run
        await alice.wait_for(lambda: any(s.run == reply.run for s in alice.doc.strokes()), 10)
        ours = [s for s in alice.doc.strokes() if s.run == reply.run]
        assert len(ours) == 2 and all(s.kind == "agent" and s.author == "claude" for s in ours)
        assert {cell_of(x, y) for s in ours for x, y in s.xy()} == {(1, 1)}
    finally:
        await alice.close()
        if proc is not None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        ms.stop()
