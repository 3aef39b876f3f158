"""A throwaway PostgreSQL cluster for tests: ``initdb`` in a temp dir, on a free port.

Debian's server binaries live in ``/usr/lib/postgresql/<version>/bin``. The server refuses
to run as root, so as root (CI) the cluster is made and started as the ``postgres`` user
(``runuser``), in a directory that user owns; as anyone else, as oneself. The server
listens on 127.0.0.1 only, trusts local connections (a test cluster holds nothing), keeps
its log inside its own data directory, and is stopped ``immediate`` at the end.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def server_bin() -> Path | None:
    """The directory holding ``initdb``/``pg_ctl``/``postgres``, newest version first."""
    for root in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (root / "postgres").is_file():
            return root
    found = shutil.which("pg_ctl")
    return Path(found).resolve().parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    """A running throwaway cluster; ``url`` reaches its ``postgres`` database."""

    data: Path
    port: int
    bin: Path
    as_postgres: bool

    @property
    def url(self) -> str:
        """The superuser's URL on the default database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url_of(self, database: str) -> str:
        """The superuser's URL on ``database``."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run one of the server's programs as the cluster's owner."""
        command = [str(self.bin / args[0]), *args[1:]]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=120)

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` with psql as the superuser; its output, unaligned."""
        done = subprocess.run(
            ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", self.url_of(database),
             "-c", sql],
            check=True, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        return done.stdout.strip()

    def new_database(self) -> str:
        """Create an empty database with a fresh name; its URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.psql(f"CREATE DATABASE {name}")
        return self.url_of(name)

    def stop(self) -> None:
        """Stop the server at once (tests keep nothing in it)."""
        self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)

    def start(self) -> None:
        """Start (or start again) the server on its port; waits until it accepts."""
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1"
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.data / "server.log"),
                 "-o", options, "-w", "-t", "60", "start")  # fmt: skip


@contextlib.contextmanager
def running_cluster() -> Iterator[Cluster]:
    """A fresh cluster for the duration of the block; removed afterwards."""
    bin_dir = server_bin()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL's server is not installed (Debian package postgresql)")
    as_postgres = os.geteuid() == 0
    top = Path(tempfile.mkdtemp(prefix="rt-pg-"))
    data = top / "data"
    try:
        if as_postgres:
            shutil.chown(top, "postgres", "postgres")
            top.chmod(0o700)
        cluster = Cluster(data=data, port=_free_port(), bin=bin_dir, as_postgres=as_postgres)
        cluster.run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust",
                    "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync")  # fmt: skip
        with (data / "postgresql.conf").open("a") as conf:
            # A test cluster: speed over durability, and room for several daemons' pools.
            conf.write("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
            conf.write("max_connections = 200\nshared_buffers = 32MB\n")
        for attempt in range(3):
            try:
                cluster.start()
                break
            except subprocess.CalledProcessError:
                if attempt == 2:
                    raise
                cluster.port = _free_port()  # taken between the check and the start
                time.sleep(0.2)
        yield cluster
    finally:
        with contextlib.suppress(Exception):
            Cluster(data, 0, bin_dir, as_postgres).stop()
        shutil.rmtree(top, ignore_errors=True)
