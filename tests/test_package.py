"""The package on its own: a wheel, installed in a fresh environment outside
the checkout, reports its version and migrates its database."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import asyncpress

CHECKOUT = Path(__file__).resolve().parents[1]


def _uv() -> list[str]:
    # make passes the uv it found; run by hand, the same search as make's.
    if "UV" in os.environ:
        return shlex.split(os.environ["UV"])
    found = shutil.which("uv")
    return [found] if found else ["python3", "-m", "uv"]


def _run(command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    done = subprocess.run(  # noqa: S603 - our own command lines
        command,
        cwd=cwd,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_an_installed_wheel_migrates_outside_the_checkout(tmp_path: Path) -> None:
    dist, venv, elsewhere = tmp_path / "dist", tmp_path / "venv", tmp_path / "elsewhere"
    elsewhere.mkdir()
    _run([*_uv(), "build", "--wheel", "--out-dir", str(dist), str(CHECKOUT)], cwd=tmp_path)
    (wheel,) = dist.glob("asyncpress-*.whl")
    _run([*_uv(), "venv", "--quiet", "--python", sys.executable, str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    _run(
        [*_uv(), "pip", "install", "--quiet", "--python", str(python), "--no-deps", str(wheel)],
        cwd=tmp_path,
    )
    # The dependencies come from the test environment (no network needed);
    # asyncpress itself only from the wheel: a path added by a .pth file does
    # not run that folder's own .pth files, so the checkout's editable install
    # stays out.
    site = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            cwd=elsewhere,
        ).stdout.strip()
    )
    (site / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    where = _run(
        [str(python), "-c", "import asyncpress; print(asyncpress.__file__)"], cwd=elsewhere
    )
    assert Path(where.stdout.strip()).is_relative_to(venv)

    command = str(venv / "bin" / "asyncpress")
    env = {
        "ENVIRONMENT": "development",
        "DATABASE_URL": f"sqlite+aiosqlite:///{elsewhere / 'a.db'}",
    }
    version = _run([command, "--version"], cwd=elsewhere, **env)
    assert version.stdout.strip() == f"asyncpress {asyncpress.__version__}"
    _run([command, "db", "upgrade"], cwd=elsewhere, **env)
    # A command that refuses an unmigrated database now starts.
    stats = _run([command, "notifications", "stats"], cwd=elsewhere, **env)
    assert "depth" in stats.stdout
