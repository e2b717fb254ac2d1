"""Install like a package: `python -m build` from a clean copy of the tracked files makes an
sdist and a wheel (the wheel built from the sdist, so the sdist is complete), with the Rust
scanner when cargo is on PATH and pure Python without; each wheel goes into a fresh venv
whose `smtp-auth` runs `--version` and `normalize` on the README's sample.

Both builds happen once per session. The fresh venvs take their third-party dependencies
from the running environment (a path file) instead of downloading ~200 MB again: what is
tested is our wheel's own files, metadata and entry point, imported from the new venv."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.integration
CARGO = shutil.which("cargo") or (
    str(Path.home() / ".cargo/bin/cargo") if (Path.home() / ".cargo/bin/cargo").exists()
    else None)
SAMPLE = "\n".join([
    "Nov 28 09:59:58 mx1 postfix/submission/smtpd[2201]: Anonymous TLS connection established"
    " from laptop.lan[192.0.2.7]: TLSv1.1 with cipher ECDHE-RSA-AES128-SHA (128/128 bits)",
    "Nov 28 09:59:59 mx1 postfix/submission/smtpd[2201]: 4Q7ZrB1xyz: client=laptop.lan"
    "[192.0.2.7], sasl_method=LOGIN, sasl_username=printer@example.org",
    "Nov 28 10:00:00 mx1 postfix/qmgr[812]: 4Q7ZrB1xyz: from=<printer@example.org>,"
    " size=20480, nrcpt=3 (queue active)", ""])


def _path_without_cargo() -> str:
    return os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if not (Path(p) / "cargo").exists())


def _build(tmp: Path, native: bool) -> tuple[Path, Path]:
    """sdist and wheel from a copy of the tracked files (no .venv, no build leftovers)."""
    src = tmp / "src"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    env = dict(os.environ)
    if native:
        assert CARGO is not None
        env["PATH"] = str(Path(CARGO).parent) + os.pathsep + env.get("PATH", "")
    else:
        env["PATH"] = _path_without_cargo()
    out = tmp / "dist"
    done = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(src)],
                          env=env, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [sdist] = out.glob("*.tar.gz")
    [wheel] = out.glob("*.whl")
    return sdist, wheel


@pytest.fixture(scope="session", params=["native", "pure"])
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[
        str, Path, Path]:
    if request.param == "native" and CARGO is None:
        pytest.skip("cargo not found: only the pure-Python wheel is built here")
    sdist, wheel = _build(tmp_path_factory.mktemp(f"build-{request.param}"),
                          request.param == "native")
    return request.param, sdist, wheel


def _fresh_venv(tmp: Path, wheel: Path) -> Path:
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    purelib = Path(subprocess.run(
        [str(venv / "bin/python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True).stdout.strip())
    # Third-party packages only: a plain path line, so the dev install's own editable finder
    # for `pipeline` (a .pth import hook there) is not loaded.
    (purelib / "zz_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run([str(venv / "bin/pip"), "install", "-q", "--no-deps", str(wheel)],
                   check=True, timeout=300)
    return venv


def test_sdist_holds_what_the_wheel_is_built_from(built):
    _, sdist, _ = built
    import tarfile

    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for needed in ("pyproject.toml", "native/Cargo.toml", "native/Cargo.lock",
                   "native/src/lib.rs", "schemas/migrations/001_events.sql",
                   "pipeline/web/static/index.html", "pipeline/ingest/_scan.pyi"):
        assert needed in names, needed
    assert not any(n.startswith("native/target/") for n in names)


def test_wheel_installs_and_runs(built, tmp_path):
    kind, _, wheel = built
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    assert any(n.startswith("schemas/migrations/") and n.endswith(".sql") for n in names)
    assert any(n.startswith("pipeline/web/static/vendor/chart.js/") for n in names)
    assert any(n.startswith("pipeline/ingest/_scan") and n.endswith(".so") for n in names) == (
        kind == "native"), names
    venv = _fresh_venv(tmp_path, wheel)
    cli = str(venv / "bin/smtp-auth")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMTP_AUTH_")}
    version = subprocess.run([cli, "--version"], capture_output=True, text=True, check=True,
                             env=env, cwd=tmp_path, timeout=60)
    assert version.stdout.strip() == "smtp-auth, version 0.1.0"
    where = subprocess.run(
        [str(venv / "bin/python"), "-c",
         "import pipeline, pipeline.ingest.scan as s; print(pipeline.__file__, s.native_available())"],
        capture_output=True, text=True, check=True, env=env, cwd=tmp_path, timeout=60)
    module, native = where.stdout.split()
    assert module.startswith(str(venv)), "the wheel's package is the one imported"
    assert native == str(kind == "native")
    done = subprocess.run([cli, "normalize", "--year", "2026"], input=SAMPLE,
                          capture_output=True, text=True, check=True, env=env, cwd=tmp_path,
                          timeout=120)
    [event] = [json.loads(line) for line in done.stdout.splitlines()]
    assert {k: event[k] for k in ("kind", "server", "sender", "tls_version", "auth_mechanism",
                                  "client_ip", "recipients", "size", "ts")} == {
        "kind": "submission", "server": "mx1", "sender": "printer@example.org",
        "tls_version": "TLS1.1", "auth_mechanism": "LOGIN", "client_ip": "192.0.2.7",
        "recipients": 3, "size": 20480, "ts": "2026-11-28T09:59:59.000Z"}
