"""One check added to setuptools' build (the rest is pyproject.toml): a wheel is built only with
its assets, and only with the engine the tests ran.

The package data `node web/build.mjs` puts in a checkout (the page in server/static, quickjs.wasm
and its licence in agent/sandbox/assets) is git-ignored, so a build that forgot it would quietly
ship a server with no page and no sandbox; and the wasm must be the one agent/sandbox/ENGINE.json
pins (sha256). An sdist carries the assets, so building from it runs this check with no Node.
An editable install (`bin/dev` installs one before building the assets) is not checked.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
PAGE = ["server/static/index.html", "server/static/app.js", "server/static/app.css"]


def check_assets() -> None:
    pin = json.loads((HERE / "agent" / "sandbox" / "ENGINE.json").read_text())
    assets = HERE / "agent" / "sandbox" / "assets"
    missing = [name for name in [*PAGE, f"agent/sandbox/assets/{pin['wasm']}", f"agent/sandbox/assets/{pin['license_file']}"]
               if not (HERE / name).is_file()]
    if missing:
        raise SystemExit(f"inhabit: the package data is not built ({', '.join(missing)} missing): run `node web/build.mjs` first (bin/dev dist does)")
    sha = hashlib.sha256((assets / pin["wasm"]).read_bytes()).hexdigest()
    if sha != pin["sha256"]:
        raise SystemExit(f"inhabit: agent/sandbox/assets/{pin['wasm']} has sha256 {sha}, but ENGINE.json pins "
                         f"{pin['package']} {pin['version']} with {pin['sha256']}: run `node web/build.mjs`")
    package_json = HERE / "package.json"  # a checkout (an sdist has no package.json): the npm pin agrees too
    if package_json.is_file():
        pinned = json.loads(package_json.read_text())["dependencies"].get(pin["package"])
        if pinned != pin["version"]:
            raise SystemExit(f"inhabit: package.json pins {pin['package']} {pinned}, ENGINE.json {pin['version']}")


class BuildPyWithAssets(build_py):
    def run(self) -> None:
        if not getattr(self, "editable_mode", False):
            check_assets()
        super().run()


setup(cmdclass={"build_py": BuildPyWithAssets})
