"""Real things for the server tests: a test XLSForm compiled with pyxform, a seeded store, a uvicorn server
on a free port (in a thread or a subprocess), and an httpx client that talks like ODK Collect
(no credentials until a 401 Digest challenge, then pre-emptive Digest with an increasing nc).
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from rasoat.core.cli import main as cli_main
from rasoat.core.models import FormVersion, Round, RoundState
from rasoat.core.storage.base import Store
from rasoat.core.storage.opening import open_store
from rasoat.server.app import ServerSettings, create_app

if TYPE_CHECKING:
    from pyodk.client import Client

REPO = Path(__file__).resolve().parents[1]
COMMUNE = "05563"  # Xã Phượng Tiến
OTHER_COMMUNE = "05503"  # Xã Tân Cương, same province

FORM_MD = """
| survey |
| | type | name | label | choice_filter |
| | select_one_from_file provinces.csv | province | Tỉnh | |
| | select_one_from_file communes.csv | commune | Xã | province=${{province}} |
| | select_one_from_file hamlets.csv | hamlet | Thôn | commune=${{commune}} |
| | text | name | Họ tên | |
| | image | photo | Ảnh | |
| | begin_repeat | member | Thành viên | |
| | integer | age | Tuổi | |
| | end_repeat | | | |
| | audit | audit | | |
| settings |
| | form_id | version | form_title |
| | {form_id} | {version} | {title} |
"""


def compile_test_form(
    form_id: str = "tform", version: str = "1", title: str = "Biểu thử"
) -> tuple[bytes, dict]:
    """A small XLSForm with the location block, a photo, a repeat and an audit log, compiled by pyxform."""
    from pyxform.xls2xform import convert

    result = convert(
        xlsform=FORM_MD.format(form_id=form_id, version=version, title=title),
        file_type=".md",
        form_name="data",
    )
    return result.xform.encode("utf-8"), result._survey.to_json_dict()


def publish_test_form(
    store: Store, form_id: str = "tform", version: str = "1", title: str = "Biểu thử"
) -> FormVersion:
    xml, schema = compile_test_form(form_id, version, title)
    form = FormVersion(
        form_id=form_id,
        version=version,
        title=title,
        md5=hashlib.md5(xml).hexdigest(),
        media=["provinces.csv", "communes.csv", "hamlets.csv", "logo.png"],
        source="test",
    )
    store.put_form(form, xml, schema, {"logo.png": b"\x89PNG fake logo"})
    return form


def instance_xml(
    form_id: str = "tform",
    version: str = "1",
    instance_id: str | None = None,
    commune: str = COMMUNE,
    hamlet: str = "",
    name: str = "Nguyễn Văn A",
    photo: str = "",
    deprecated_id: str | None = None,
    ages: tuple[str, ...] = ("34", "7"),
    audit: str = "",
) -> tuple[str, bytes]:
    """(instanceID, XML) as Collect writes it for the test form."""
    instance_id = instance_id or f"uuid:{uuid.uuid4()}"
    members = "".join(f"<member><age>{a}</age></member>" for a in ages)
    dep = f"<deprecatedID>{deprecated_id}</deprecatedID>" if deprecated_id else ""
    xml = (
        f'<?xml version=\'1.0\' ?><data id="{form_id}" version="{version}" '
        'xmlns:orx="http://openrosa.org/xforms" xmlns:jr="http://openrosa.org/javarosa">'
        f"<province>19</province><commune>{commune}</commune><hamlet>{hamlet}</hamlet>"
        f"<name>{name}</name><photo>{photo}</photo>{members}"
        f"<meta><audit>{audit}</audit><instanceID>{instance_id}</instanceID>{dep}</meta></data>"
    )
    return instance_id, xml.encode("utf-8")


def multipart(
    xml: bytes | None,
    files: dict[str, bytes] | None = None,
    incomplete: bool = False,
    boundary: str = "4c1f0a62-1b7e-4d3e-9f0a-0b1b2c3d4e5f",
) -> tuple[bytes, str]:
    """A multipart body byte for byte as OkHttp builds it (names may be any bytes, as a hostile client's)."""
    out = bytearray()

    def part(headers: list[str], data: bytes) -> None:
        out.extend(f"--{boundary}\r\n".encode())
        for h in headers:
            out.extend(h.encode("utf-8", "surrogateescape") + b"\r\n")
        out.extend(f"Content-Length: {len(data)}\r\n\r\n".encode())
        out.extend(data + b"\r\n")

    if xml is not None:
        part(
            [
                'Content-Disposition: form-data; name="xml_submission_file"; filename="Biểu thử_2026.xml"',
                "Content-Type: text/xml",
            ],
            xml,
        )
    for name, data in (files or {}).items():
        part(
            [
                f'Content-Disposition: form-data; name="{name}"; filename="{name}"',
                "Content-Type: application/octet-stream",
            ],
            data,
        )
    if incomplete:
        part(['Content-Disposition: form-data; name="*isIncomplete*"'], b"yes")
    out.extend(f"--{boundary}--\r\n".encode())
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- a client that behaves like Collect ----------------------------------------------------------


class CollectClient:
    """httpx with Collect's headers and okhttp-digest's behaviour (challenge first, then pre-emptive)."""

    def __init__(self, base: str, username: str | None = None, password: str | None = None) -> None:
        self.base = base.rstrip("/")
        self.username = username
        self.password = password
        self.http = httpx.Client(
            timeout=60,
            headers={
                "X-OpenRosa-Version": "1.0",
                "User-Agent": "org.odk.collect.android/v2026.3.0 test",
                "Date": "Tue, 05 Mar 2024 03:04:05 GMT",
            },
        )
        self.device = "collect%3AXy12AbCdEfGh3456"
        self._challenge: str | None = None
        self._nc = 0
        self.challenges = 0

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base}{path}{sep}deviceID={self.device}"

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        from rasoat.server.digest import authorization_header

        url = self.url(path) if not path.startswith("http") else path
        headers = dict(kw.pop("headers", {}) or {})
        for _attempt in range(3):
            if self._challenge and self.username:
                self._nc += 1
                target = httpx.URL(url)
                uri = target.raw_path.decode()
                headers["Authorization"] = authorization_header(
                    method, uri, self.username, self.password or "", self._challenge, self._nc
                )
            resp = self.http.request(method, url, headers=headers, **kw)
            challenge = resp.headers.get("www-authenticate", "")
            if resp.status_code == 401 and challenge.lower().startswith("digest") and self.username:
                already = "Authorization" in headers
                self.challenges += 1
                self._challenge, self._nc = challenge, 0
                if already and "stale=true" not in challenge:
                    return resp  # wrong credentials: Collect would prompt
                continue
            return resp
        return resp

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def head(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("HEAD", path, **kw)

    def submit(
        self,
        xml: bytes | None,
        files: dict[str, bytes] | None = None,
        incomplete: bool = False,
        path: str = "/submission",
    ) -> httpx.Response:
        body, ctype = multipart(xml, files, incomplete)
        return self.request("POST", path, content=body, headers={"Content-Type": ctype})

    def close(self) -> None:
        self.http.close()


# --- servers -------------------------------------------------------------------------------------


def load_until_cut(
    url: str, token: str, cut: Callable[[], None], *, acked_before_cut: int, within: float, at_least: int,
    extra_files: bool = False, unexpected: list[str] | None = None,
) -> dict[str, dict[str, bytes]]:
    """Four Collect-like clients send submissions with a photo (and with ``extra_files`` an audit log) to
    the server at ``url`` until ``acked_before_cut`` were acknowledged or ``within`` seconds passed, then
    ``cut()`` (a kill, a power cut) while they are still sending. Returns each acknowledged instance id with
    its attachments (a request the cut interrupted made no promise); at least ``at_least`` must have been
    acknowledged. An answer other than 201 before the cut goes to ``unexpected`` when given."""
    acked: dict[str, dict[str, bytes]] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def load(worker: int) -> None:
        client = CollectClient(f"{url}/v1/key/{token}/projects/1")
        n = 0
        while not stop.is_set():
            n += 1
            photo = f"w{worker}-{n}.jpg"
            files = {photo: os.urandom(2000 + n % 7 * 1000)}
            if extra_files:
                files["audit.csv"] = f"event,node\n{worker},{n}\n".encode()
            iid, xml = instance_xml(photo=photo, audit="audit.csv" if extra_files else "",
                                    name=f"Người {worker}-{n}")
            try:
                resp = client.submit(xml, files)
            except httpx.HTTPError:
                continue  # the cut came under this request: no promise was made
            if resp.status_code == 201:
                with lock:
                    acked[iid] = files
            elif unexpected is not None and not stop.is_set():
                unexpected.append(f"{resp.status_code} {resp.text[:200]}")
        client.close()

    threads = [threading.Thread(target=load, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + within
    while len(acked) < acked_before_cut and time.monotonic() < deadline:
        time.sleep(0.05)
    cut()
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert len(acked) >= at_least, "the load did not get going before the cut"
    with lock:
        return dict(acked)


def assert_all_kept(data: Path, database_url: str | None, acked: dict[str, dict[str, bytes]]) -> None:
    """Every submission ``load_until_cut`` saw acknowledged is in the store at ``data``, with its files."""
    store = open_store(data, database_url)
    try:
        for iid, files in acked.items():
            assert store.get_submission(iid) is not None, f"{iid} got 201 but the cut took it"
            for name, content in files.items():
                assert store.attachment(iid, name) == content, f"{iid}/{name} lost or damaged"
        assert store.count_submissions() >= len(acked)
    finally:
        store.close()


def assert_serves_again(data: Path, token: str, database_url: str | None = None) -> None:
    """``rasoat serve`` comes back on ``data`` (and ``database_url``) after the cut and takes a submission
    from the collector of ``token``."""
    again = ProcessServer(data, "--no-demo", database_url=database_url).start()
    try:
        client = CollectClient(f"{again.url}/v1/key/{token}/projects/1")
        _, xml = instance_xml()
        assert client.submit(xml).status_code == 201
        client.close()
    finally:
        again.terminate()


class ThreadServer:
    """uvicorn serving ``app`` on a free port in a daemon thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.app = app
        # the socket is bound here and handed to uvicorn, so no other process (another pytest-xdist
        # worker) can take the port between choosing it and listening on it
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, access_log=False, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    def start(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.socket.close()


def serve(store: Store, **settings: Any) -> ThreadServer:
    """The app over ``store`` (with ``ServerSettings(**settings)``) served by a started ``ThreadServer``."""
    return ThreadServer(create_app(store, ServerSettings(**settings))).start()


@contextmanager
def serving(store: Store, **settings: Any) -> Iterator[ThreadServer]:
    """``serve``, stopped afterwards; the store stays open (its caller opened it, and filled it first)."""
    server = serve(store, **settings)
    try:
        yield server
    finally:
        server.stop()


def rasoat_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "rasoat.core.cli", *args]


def backend_env(database_url: str | None) -> dict[str, str]:
    """os.environ for a child ``rasoat``: the store is the one the test names (``database_url``, or the
    embedded one when None), never a RASOAT_DATABASE_URL left in the developer's shell."""
    env = {k: v for k, v in os.environ.items() if k != "RASOAT_DATABASE_URL"}
    if database_url:
        env["RASOAT_DATABASE_URL"] = database_url
    return env


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120, database_url: str | None = None
) -> subprocess.CompletedProcess:
    """``rasoat ARGS`` in a subprocess, on PostgreSQL at ``database_url`` or else the embedded store."""
    return subprocess.run(
        rasoat_cmd(*args),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
        env={**backend_env(database_url), **(env or {})},
    )


def store_args(data_dir: Path, database_url: str | None = None) -> list[str]:
    """``--data DIR``, and ``--database URL`` on PostgreSQL: the store a ``rasoat`` command works on."""
    return ["--data", str(data_dir), *(["--database", database_url] if database_url else [])]


def run_main(*args: str) -> subprocess.CompletedProcess:
    """``rasoat ARGS`` in this process (``run_cli`` without a Python start-up each): its exit code and
    what it printed."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli_main(list(args))
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


class PortTaken(RuntimeError):
    """``rasoat serve`` found its port bound by another process."""


class ProcessServer:
    """``rasoat serve`` in a subprocess (for SIGKILL/SIGTERM tests and the CLI sharing a data dir); on
    PostgreSQL at ``database_url`` (``data_dir`` then holds the attachments) or else the embedded store."""

    def __init__(
        self,
        data_dir: Path,
        *extra: str,
        port: int | None = None,
        database_url: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.env = env or {}  # added to the child's environment (e.g. LD_PRELOAD for the power-cut test)
        self.extra = extra
        self.chosen_port = port
        self._use_port(port or free_port())
        self.proc: subprocess.Popen | None = None

    def _use_port(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = rasoat_cmd("serve", "--data", str(self.data_dir), "--port", str(self.port), *self.extra)
        if self.database_url:
            self.args += ["--database", self.database_url]
        self.log_path = self.data_dir.parent / f"serve-{self.port}.log"

    def start(self, timeout: float = 120) -> ProcessServer:
        for _attempt in range(3):
            try:
                return self._start(timeout)
            except PortTaken:
                # another process (a parallel test worker) bound the free port first: take another
                if self.chosen_port is not None:
                    raise
                self._use_port(free_port())
        raise RuntimeError(f"no free port after three attempts: {self.output()}")

    def _start(self, timeout: float) -> ProcessServer:
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.args,
            cwd=REPO,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**backend_env(self.database_url), "PYTHONUNBUFFERED": "1", **self.env},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.close()
                output = self.output()
                if "address already in use" in output.lower():
                    raise PortTaken(output)
                raise RuntimeError(f"server exited: {output}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code in (200, 503):
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.output()}")

    def output(self) -> str:
        try:
            return self.log_path.read_text()
        except OSError:
            return ""

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.log.close()

    def terminate(self, timeout: float = 90) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self.log.close()
        return code

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.terminate()


# --- a seeded store ------------------------------------------------------------------------------


@dataclass
class Seeded:
    """What ``seed`` made: rounds, collectors and their credentials."""

    token: str  # collector in COMMUNE, assigned to the open round
    user_id: str
    digest_user: str
    digest_password: str
    stranger_token: str  # a collector in the same commune assigned to nothing
    other_commune_token: str  # assigned to the open round but scoped to OTHER_COMMUNE's hamlets? no: to 05566
    extra: dict[str, Any] = field(default_factory=dict)


def seed(store: Store) -> Seeded:
    """Forms ``tform`` (open round ``r-open``) and ``tclosed`` (closed round ``r-closed``) and collectors."""
    from rasoat.core.collectors import create_collector
    from rasoat.server.digest import set_password

    publish_test_form(store, "tform", "1")
    publish_test_form(store, "tclosed", "1", "Biểu đợt đã đóng")
    publish_test_form(store, "tother", "1", "Biểu không được giao")
    store.put_round(
        Round(
            id="r-open",
            name="Đợt mở",
            period="2026",
            form_ids=["tform"],
            unit_codes=[COMMUNE, OTHER_COMMUNE],
            state=RoundState.open,
        )
    )
    store.put_round(
        Round(
            id="r-closed",
            name="Đợt đóng",
            period="2025",
            form_ids=["tclosed"],
            unit_codes=[COMMUNE],
            state=RoundState.open,
        )
    )
    user, token = create_collector(store, "Nguyễn Văn A", [COMMUNE], ["r-open", "r-closed"])
    digest_user, _ = create_collector(store, "Trần Thị B", [COMMUNE], ["r-open"], username="tranthib")
    set_password(store, "tranthib", "mật-khẩu-1")
    _, stranger = create_collector(store, "Lê Văn C", [COMMUNE])
    _, other = create_collector(store, "Phạm D", [OTHER_COMMUNE], ["r-open"])
    closed = store.get_round("r-closed")
    assert closed is not None
    store.put_round(closed.model_copy(update={"state": RoundState.closed}))
    return Seeded(
        token=token,
        user_id=user.id,
        digest_user=digest_user.username,
        digest_password="mật-khẩu-1",
        stranger_token=stranger,
        other_commune_token=other,
    )


@contextmanager
def seeded_store(data_dir: Path, database_url: str | None = None) -> Iterator[tuple[Store, Seeded]]:
    """``seed`` into the store a server on ``data_dir`` (and ``database_url``, if any) will open."""
    store = open_store(data_dir, database_url)
    try:
        yield store, seed(store)
    finally:
        store.close()


@contextmanager
def opened_store(data_dir: Path, database_url: str | None = None) -> Iterator[Store]:
    """The store of a data dir (or database), closed afterwards: to fill before ``serving`` it, or to look at
    what a server process left."""
    store = open_store(data_dir, database_url)
    try:
        yield store
    finally:
        store.close()


def pyodk_client(url: str, tmp_path: Path, username: str, password: str) -> Client:
    """pyodk 1.3.0, unmodified, logged in to the server at ``url`` as ``username`` (project 1)."""
    from pyodk.client import Client

    name = uuid.uuid4().hex[:8]
    config = tmp_path / f"{name}.toml"
    config.write_text(
        f'[central]\nbase_url = "{url}"\nusername = "{username}"\npassword = "{password}"\n'
        "default_project_id = 1\n",
        encoding="utf-8",
    )
    return Client(config_path=str(config), cache_path=str(tmp_path / f"{name}-cache.toml"))
