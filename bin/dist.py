#!/usr/bin/env python3
"""`bin/dev dist`: the wheel and the sdist, into dist/, reproducibly.

Why a script and not `python -m build`: it is what `build` does (an isolated environment with
pyproject's build requirements, the sdist from the checkout, the wheel from the unpacked sdist, so
the wheel holds exactly what the sdist carries and nothing stale from build/), without adding a
tool to requirements.lock. It builds everything twice, from scratch, with SOURCE_DATE_EPOCH set
to the last commit's time (the sdist's tar metadata normalized to it too), and fails unless
both builds are byte for byte the same.

    python bin/dist.py [--out DIR] [--no-web]

--no-web: the page and the engine are already built (`node web/build.mjs`); a build from the
checkout otherwise runs it first (it needs Node; building a wheel from the sdist does not).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def source_date_epoch() -> str:
    """SOURCE_DATE_EPOCH if set, else the last commit's time (no git: 1980-01-01, zip's first day)."""
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return os.environ["SOURCE_DATE_EPOCH"]
    out = subprocess.run(["git", "log", "-1", "--format=%ct"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "315532800"


def build_env(where: Path) -> Path:
    """A fresh virtual environment with pyproject's [build-system] requires; its python."""
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    venv.create(where, with_pip=True)
    python = where / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *requires], check=True)
    return python


def backend(python: Path, hook: str, out: Path, cwd: Path, env: dict[str, str]) -> Path:
    """Calls setuptools' PEP 517 `hook` (build_sdist or build_wheel) in `cwd`; the file it made."""
    answer = out / f".{hook}.json"
    code = ("import json, sys; from setuptools import build_meta as b; out, answer = sys.argv[1:3]; "  # the hooks rewrite sys.argv
            f"extra = b.get_requires_for_{hook}(); "
            f"open(answer, 'w').write(json.dumps([extra, None if extra else b.{hook}(out)]))")

    def call() -> tuple[list[str], str | None]:
        done = subprocess.run([str(python), "-c", code, str(out), str(answer)], cwd=cwd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"dist: {hook} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        extra, name = json.loads(answer.read_text())
        answer.unlink()
        return extra, name

    extra, name = call()
    if extra:  # e.g. `wheel` for setuptools < 70.1
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *extra], check=True)
        extra, name = call()
        if extra or name is None:
            raise SystemExit(f"dist: {hook} still requires {extra}")
    assert name is not None
    return out / name


def normalize_sdist(sdist: Path, epoch: int) -> None:
    """Rewrites the sdist with its members sorted, dated `epoch` and owned by root, and no
    timestamp in the gzip header: setuptools keeps the files' own, so two builds differ."""
    with tarfile.open(sdist) as tar:
        entries = [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar.getmembers()]  # type: ignore[union-attr]
    with open(sdist, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as out:
        for member, data in sorted(entries, key=lambda e: e[0].name):
            member.mtime, member.uid, member.gid, member.uname, member.gname = epoch, 0, 0, "root", "root"
            member.pax_headers = {}
            out.addfile(member, io.BytesIO(data) if data is not None else None)


def build_once(python: Path, out: Path, scratch: Path, env: dict[str, str]) -> tuple[Path, Path]:
    """The sdist from a copy of the checkout, then the wheel from the unpacked sdist."""
    out.mkdir(parents=True, exist_ok=True)
    source = scratch.with_name(scratch.name + "-tree")
    # a copy, not the checkout itself: setuptools writes its egg-info and release tree where it
    # builds, and the checkout may be in use meanwhile (the test suite builds while others run)
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "node_modules", "data", "dist", "build", "test-artifacts", "*.egg-info", "__pycache__", ".pytest_cache", ".cache"))
    sdist = backend(python, "build_sdist", out, source, env)
    normalize_sdist(sdist, int(env["SOURCE_DATE_EPOCH"]))
    with tarfile.open(sdist) as tar:
        tar.extractall(scratch, filter="data")
    (unpacked,) = scratch.iterdir()
    wheel = backend(python, "build_wheel", out, unpacked, env)
    return sdist, wheel


def members(path: Path) -> dict[str, str]:
    """Each member of a wheel or an sdist and the sha256 of its bytes."""
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as z:
            return {name: hashlib.sha256(z.read(name)).hexdigest() for name in sorted(z.namelist())}
    with tarfile.open(path) as tar:
        return {m.name: hashlib.sha256(tar.extractfile(m).read()).hexdigest()  # type: ignore[union-attr]
                for m in sorted(tar.getmembers(), key=lambda m: m.name) if m.isfile()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    parser.add_argument("--no-web", action="store_true", help="the page and the engine are already built")
    args = parser.parse_args()
    if not args.no_web:
        subprocess.run(["node", "web/build.mjs"], cwd=ROOT, check=True)
    env = {**os.environ, "SOURCE_DATE_EPOCH": source_date_epoch()}
    env.pop("PYTHONPATH", None)
    with tempfile.TemporaryDirectory(prefix="inhabit-dist-") as tmp:
        work = Path(tmp)
        python = build_env(work / "env")
        first = build_once(python, work / "a", work / "a-src", env)
        second = build_once(python, work / "b", work / "b-src", env)
        for one, other in zip(first, second, strict=True):
            if one.read_bytes() != other.read_bytes():
                differ = sorted(set(members(one).items()) ^ set(members(other).items()))
                print(f"dist: {one.name} is not reproducible; members that differ: {differ or 'none (metadata)'}", file=sys.stderr)
                return 1
        args.out.mkdir(parents=True, exist_ok=True)
        for built in first:
            shutil.copy2(built, args.out / built.name)
            digest = hashlib.sha256(built.read_bytes()).hexdigest()
            print(f"{args.out / built.name}  {built.stat().st_size} bytes, {len(members(built))} files, sha256 {digest}, reproducible")
    return 0


if __name__ == "__main__":
    sys.exit(main())
