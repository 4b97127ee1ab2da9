"""A 201 survives a power cut: the disk image after a simulated power cut holds every acknowledged submission.

kill -9 (tests/test_server_crash.py) keeps what the operating system already holds in its cache; a power
cut loses everything that was written but not synced. ``tests/powercut/powercut.c``, preloaded into the
processes that write (the rasoat server; on PostgreSQL also a private PostgreSQL cluster), copies each
file's bytes at each fsync/fdatasync and each directory's entries at each directory fsync. After killing
every writer under load the test builds each disk as a power cut would leave it (the state before the
load, plus what was synced, nothing else), starts again on those images and finds every submission that
got a 201, with its attachments.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import psycopg
import pytest
from pg_support import require_pg
from rasoat.core.storage.opening import open_store
from server_support import (
    ProcessServer,
    assert_all_kept,
    assert_serves_again,
    free_port,
    load_until_cut,
    seeded_store,
)

pytestmark = pytest.mark.slow  # compiles the shim, a server under load, a kill

SHIM = Path(__file__).parent / "powercut" / "powercut.c"
PG_BIN = Path("/usr/lib/postgresql")
Entries = dict[str, tuple[str, int]]  # name -> ("d" or "f", inode)
LOAD = {"acked_before_cut": 80, "within": 60, "at_least": 40}  # the power goes while clients still send


@pytest.fixture
def world() -> Iterator[Path]:
    """A folder every process can read (PostgreSQL runs as its own user, the tests as root)."""
    path = Path(tempfile.mkdtemp(prefix="rasoat-powercut-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def shim(world: Path) -> Path:
    out = world / "powercut.so"
    cmd = ["gcc", "-shared", "-fPIC", "-O2", "-o", str(out), str(SHIM), "-ldl", "-lpthread"]
    subprocess.run(cmd, check=True)
    return out


def preload(shim: Path, watched: Path, shadow: Path) -> dict[str, str]:
    shadow.mkdir(mode=0o777)
    shadow.chmod(0o777)
    return {"LD_PRELOAD": str(shim), "POWERCUT_DIR": str(watched), "POWERCUT_SHADOW": str(shadow)}


def recorded(shadow: Path) -> set[str]:
    """"f" when a file sync was recorded, "d" when a directory sync was."""
    return {p.name[0] for p in shadow.iterdir() if p.name[0] in "df"}


class Disk:
    """The durable state of a directory tree: what it held when synced before the test, then what the
    shim recorded at each sync."""

    def __init__(self, root: Path, shadow: Path) -> None:
        os.sync()  # the starting state is on disk
        self.root_inode = root.stat().st_ino
        self.shadow = shadow
        self.dirs: dict[int, Entries] = {}
        self.files: dict[int, bytes] = {}
        self._scan(root)

    def _scan(self, directory: Path) -> None:
        entries: Entries = {}
        for child in directory.iterdir():
            inode = child.stat().st_ino
            if child.is_dir():
                entries[child.name] = ("d", inode)
                self._scan(child)
            else:
                entries[child.name] = ("f", inode)
                self.files[inode] = child.read_bytes()
        self.dirs[directory.stat().st_ino] = entries

    def _entries(self, inode: int, synced: bool) -> Entries:
        listing = self.shadow / f"d{inode}"
        if not (synced and listing.exists()):
            return self.dirs.get(inode, {})
        entries: Entries = {}
        for line in listing.read_text().splitlines():
            kind, ino, name = line.split(" ", 2)
            entries[name] = (kind, int(ino))
        return entries

    def _content(self, inode: int, synced: bool) -> bytes:
        copy = self.shadow / f"f{inode}"
        if synced and copy.exists():
            return copy.read_bytes()
        return self.files.get(inode, b"")  # created, named, never synced: no bytes reached the disk

    def image(self, target: Path, synced: bool = True) -> Path:
        """The tree as a power cut leaves it (``synced=False``: as if no sync had ever returned)."""

        def build(inode: int, path: Path) -> None:
            path.mkdir(parents=True)
            for name, (kind, ino) in self._entries(inode, synced).items():
                if name.endswith("-shm"):
                    continue  # SQLite's shared-memory index is rebuilt from the log on open
                if kind == "d":
                    build(ino, path / name)
                else:
                    (path / name).write_bytes(self._content(ino, synced))

        build(self.root_inode, target)
        return target


class PgCluster:
    """A private PostgreSQL cluster (Debian's binaries, run as the postgres user), so that its own syncs
    can be recorded and it can be killed as a power cut kills it."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.bin = sorted(PG_BIN.glob("*/bin"))[-1]
        self.proc: subprocess.Popen | None = None
        pgdata.mkdir(mode=0o700)
        shutil.chown(pgdata, "postgres", "postgres")
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(self.bin / "initdb"), "-D", str(pgdata), "-A", "trust",
             "-U", "postgres", "--wal-segsize=1", "--no-sync"],
            check=True, capture_output=True,
        )

    def start(self, env: dict[str, str] | None = None) -> PgCluster:
        settings = ["-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.pgdata}",
                    "-c", "fsync=on", "-c", "synchronous_commit=on", "-c", "full_page_writes=on",
                    "-c", "shared_buffers=16MB", "-c", "max_wal_size=32MB"]
        self.proc = subprocess.Popen(
            ["runuser", "-u", "postgres", "--", "env", *[f"{k}={v}" for k, v in (env or {}).items()],
             str(self.bin / "postgres"), "-D", str(self.pgdata), "-p", str(self.port), *settings],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                psycopg.connect(self.url, connect_timeout=2).close()
                return self
            except psycopg.OperationalError:
                time.sleep(0.2)
        raise RuntimeError("private PostgreSQL did not start")

    def stop(self) -> None:
        """A clean shutdown (a checkpoint, then exit)."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGINT)  # "fast" shutdown
        self.proc.wait(timeout=60)

    def kill(self) -> None:
        """Every process of the cluster at once, as the power does."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=60)


def test_power_cut_under_load_keeps_every_acknowledged_submission_sqlite(
    world: Path, shim: Path
) -> None:
    data = world / "data"
    with seeded_store(data) as (_store, seeded):
        pass
    disk = Disk(data, world / "shadow")
    server = ProcessServer(data, "--no-demo", env=preload(shim, data, disk.shadow)).start()
    acked = load_until_cut(server.url, seeded.token, server.kill, **LOAD)
    assert recorded(disk.shadow) == {"f", "d"}, "the shim recorded no sync: the image would prove nothing"

    # Without the syncs the image lacks what was acknowledged: the simulation does drop unsynced writes.
    unsynced = disk.image(world / "unsynced", synced=False)
    store = open_store(unsynced)
    try:
        assert all(store.get_submission(iid) is None for iid in acked)
    finally:
        store.close()

    image = disk.image(world / "after-cut")
    with closing(sqlite3.connect(image / "rasoat.sqlite3")) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert_all_kept(image, None, acked)

    # the server comes back on the image and takes submissions
    shutil.rmtree(data)
    image.rename(data)
    assert_serves_again(data, seeded.token)


def test_power_cut_under_load_keeps_every_acknowledged_submission_postgres(
    world: Path, shim: Path
) -> None:
    require_pg()  # the same Debian PostgreSQL packages the other PostgreSQL tests use
    if os.geteuid() != 0:  # CI runs as root; a developer's own account cannot become postgres
        pytest.skip("a private PostgreSQL cluster runs as the postgres user: run the tests as root")
    pg = PgCluster(world / "pgdata").start()
    data = world / "data"
    try:
        with seeded_store(data, pg.url) as (_store, seeded):
            pass
        pg.stop()
        pg_disk, files_disk = Disk(pg.pgdata, world / "pg-shadow"), Disk(data, world / "shadow")
        pg.start(env=preload(shim, pg.pgdata, pg_disk.shadow))
        server = ProcessServer(
            data, "--no-demo", database_url=pg.url, env=preload(shim, data, files_disk.shadow)
        ).start()

        def cut() -> None:
            pg.kill()
            server.kill()

        acked = load_until_cut(server.url, seeded.token, cut, **LOAD)
        assert "f" in recorded(pg_disk.shadow), "PostgreSQL's syncs were not recorded"
        assert "f" in recorded(files_disk.shadow), "the attachments' syncs were not recorded"

        # PostgreSQL restarts on the image of its disk (crash recovery replays its log), the attachments
        # come from the image of theirs
        pgdata = pg_disk.image(world / "pg-after-cut")
        subprocess.run(["chown", "-R", "postgres:postgres", str(pgdata)], check=True)
        pgdata.chmod(0o700)
        shutil.rmtree(pg.pgdata)
        pgdata.rename(pg.pgdata)
        pg.start()
        assert_all_kept(files_disk.image(world / "after-cut"), pg.url, acked)
    finally:
        pg.kill()
