"""Run `python -m inhabit ...` with uvicorn options overridden, to test a tuning idea without
editing server/.  Usage (via fanout.py --ours-cmd):

    {python} bench/_ours_variant.py --no-deflate [--uvloop] -- serve --host 127.0.0.1 --port {port} --data {data} --open
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import uvicorn

argv = sys.argv[1:]
sep = argv.index("--")
flags, rest = argv[:sep], argv[sep + 1:]
_run = uvicorn.run


def patched_run(app, **kw):  # type: ignore[no-untyped-def]
    if "--no-deflate" in flags:
        kw["ws_per_message_deflate"] = False
    if "--uvloop" in flags:
        kw["loop"] = "uvloop"
    print(f"bench variant: uvicorn.run overrides {flags}", flush=True)
    return _run(app, **kw)


uvicorn.run = patched_run
from inhabit.cli import main  # noqa: E402

sys.argv = ["inhabit", *rest]
sys.exit(main())
