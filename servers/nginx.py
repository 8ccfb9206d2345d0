"""Debian's nginx on 127.0.0.1, running the deployment recipe (deploy/nginx/)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
from pathlib import Path

from servers.postgres import free_port
from servers.processes import REPO, Process, wait_for_port

RECIPE = REPO / "deploy" / "nginx" / "asyncpress.conf"


def nginx_binary() -> str:
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(found).exists():
        raise RuntimeError("nginx not found: install the Debian package 'nginx'")
    return found


class NginxServer:
    """nginx with ``deploy/nginx/asyncpress.conf`` in front of the given app ports.

    The recipe is used as it is written, but for its listening address and
    its upstream servers (replaced by ``app_ports``); the main configuration
    around it only keeps every file nginx writes in ``folder``.
    """

    def __init__(self, folder: Path, app_ports: list[int]) -> None:
        self.folder = folder
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.ws_base = f"ws://127.0.0.1:{self.port}"
        self.process: Process | None = None
        recipe = RECIPE.read_text()
        servers = re.findall(r"^\s*server 127\.0\.0\.1:\d+ (.*);$", recipe, re.MULTILINE)
        if len(servers) != 2 or "listen 80;" not in recipe:
            raise RuntimeError("the recipe no longer has the lines this test replaces")
        options = servers[0]
        recipe = re.sub(r"^\s*server 127\.0\.0\.1:\d+ .*;\n", "", recipe, flags=re.MULTILINE)
        upstream = "".join(f"    server 127.0.0.1:{p} {options};\n" for p in app_ports)
        recipe = recipe.replace("upstream asyncpress {\n", "upstream asyncpress {\n" + upstream)
        recipe = recipe.replace("listen 80;", f"listen 127.0.0.1:{self.port};")
        (folder / "asyncpress.conf").write_text(recipe)
        temp = "\n".join(
            f"    {kind}_temp_path {folder / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (folder / "nginx.conf").write_text(
            f"""user root;
worker_processes 1;
pid {folder / "nginx.pid"};
error_log {folder / "error.log"} warn;
events {{ worker_connections 1024; }}
http {{
    access_log {folder / "access.log"};
{temp}
    include {folder / "asyncpress.conf"};
}}
"""
        )

    def start(self) -> None:
        args = [nginx_binary(), "-p", str(self.folder), "-c", str(self.folder / "nginx.conf")]
        args += ["-e", str(self.folder / "error.log"), "-g", "daemon off;"]
        self.process = Process(args, self.folder / "nginx.out", raw=True)
        wait_for_port(self.port)

    def drain(self, app_port: int, *, down: bool = True) -> None:
        """Take an app server out of the rotation (``down``) or put it back, as an
        operator does before restarting it: edit, reload, old workers finish."""
        conf = self.folder / "asyncpress.conf"
        line = re.compile(rf"^(\s*server 127\.0\.0\.1:{app_port} .*?)( down)?;$", re.MULTILINE)
        conf.write_text(line.sub(lambda m: m[1] + (" down;" if down else ";"), conf.read_text()))
        self.reload()

    def reload(self, within: float = 15.0) -> None:
        """``nginx -s reload``, returning once every worker runs the new configuration."""
        assert self.process is not None
        master = self.process.popen.pid
        before = self._workers(master)
        os.kill(master, signal.SIGHUP)
        deadline = time.monotonic() + within
        while (now := self._workers(master)) & before or not now:
            if time.monotonic() > deadline:
                raise TimeoutError("nginx's old workers did not finish")
            time.sleep(0.05)

    @staticmethod
    def _workers(master: int) -> set[int]:
        children = Path(f"/proc/{master}/task/{master}/children").read_text()
        return {int(pid) for pid in children.split()}

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(10)
            self.process = None

    def access_log(self) -> str:
        return (self.folder / "access.log").read_text()
