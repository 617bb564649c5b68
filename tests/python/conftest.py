"""End-to-end fixtures for gantry: one real server per test session, on loopback.

The server binary comes from ``GANTRY_BIN`` (default ``<repo>/target/debug/gantry``, or under
``$CARGO_TARGET_DIR`` when that is set). It runs
with a fresh data directory on a free 127.0.0.1 port; its stderr goes to a log file whose tail
is attached to the report of every failing test.

Fixtures:

* ``gantry``   -- the running server: endpoint, credentials, region, ``env`` for subprocesses.
* ``ecs``      -- a boto3 ECS client signed with the admin key (no retries).
* ``unique``   -- ``unique("prefix")`` gives a fresh resource name (tests share one server).
* ``raw``      -- POSTs raw bodies, SigV4-signed with botocore's ``SigV4Auth`` (or not signed).
* ``aws_cli``  -- runs ``aws ...`` (the AWS CLI v1 of this interpreter) against the server.
* ``launch``   -- starts extra servers on data directories of a test's own (restart tests).

Run: ``GANTRY_BIN=target/debug/gantry python3 -m pytest -q tests/python``
"""

from __future__ import annotations

import datetime
import http.client
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional
from unittest import mock

import boto3
import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

REPO_ROOT = Path(__file__).resolve().parents[2]
# Where cargo puts it: $CARGO_TARGET_DIR when set, else <repo>/target.
DEFAULT_BIN = Path(os.environ.get("CARGO_TARGET_DIR") or REPO_ROOT / "target") / "debug" / "gantry"
TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113"
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
ACCOUNT_ID = "000000000000"
REGION = "us-east-1"

_ANSI = re.compile(r"\x1b\[[0-9;]*m")

# The running server, for the failure-report hook.
_SERVER: Optional["Gantry"] = None


# --------------------------------------------------------------------------------------------
# The server


@dataclass
class Gantry:
    binary: Path
    data_dir: Path
    port: int
    endpoint: str
    region: str
    account_id: str
    access_key_id: str
    secret_access_key: str
    export_line: str
    export_vars: dict
    credentials_json: dict
    env: dict
    stdout_path: Path
    stderr_path: Path
    proc: subprocess.Popen = field(repr=False)
    process: Optional["Process"] = field(default=None, repr=False)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def arn(self, resource: str) -> str:
        return f"arn:aws:ecs:{self.region}:{self.account_id}:{resource}"

    def cluster_arn(self, name: str) -> str:
        return self.arn(f"cluster/{name}")

    def task_definition_arn(self, family: str, revision: int) -> str:
        return self.arn(f"task-definition/{family}:{revision}")

    def stderr_tail(self, lines: int = 100) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError as e:  # pragma: no cover - diagnostics only
            return f"(cannot read {self.stderr_path}: {e})"
        text = _ANSI.sub("", text)
        tail = "\n".join(text.splitlines()[-lines:])
        status = self.proc.poll()
        alive = "running" if status is None else f"EXITED with status {status}"
        return f"[gantry pid {self.proc.pid} {alive}; full log: {self.stderr_path}]\n{tail}"

    def client(self, service: str = "ecs", **overrides: Any):
        """A boto3 client for this server; keyword arguments override the defaults."""
        kwargs = dict(
            region_name=self.region,
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            config=Config(
                retries={"max_attempts": 1, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
                # As the export line's AWS_DISABLE_HOST_PREFIX_INJECTION: botocore would send
                # some operations (Cloud Map's DiscoverInstances) to `data-<host>`.
                inject_host_prefix=False,
            ),
        )
        kwargs.update(overrides)
        return boto3.session.Session().client(service, **kwargs)


def _gantry_binary() -> Path:
    p = Path(os.environ.get("GANTRY_BIN") or DEFAULT_BIN)
    if not p.is_absolute():
        p = (Path.cwd() / p).resolve()
    if not (p.is_file() and os.access(p, os.X_OK)):
        pytest.exit(
            f"gantry binary not found or not executable: {p}\n"
            "Build it (cargo build -p gantry) or point GANTRY_BIN at one.",
            returncode=4,
        )
    return p


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(port: int, tls: bool = False, data_dir: Optional[Path] = None) -> bool:
    try:
        if tls:
            import ssl

            ca = Path(data_dir) / "tls" / "ca.pem" if data_dir else None
            ctx = ssl.create_default_context(cafile=str(ca)) if ca and ca.exists() else ssl._create_unverified_context()
            url = f"https://127.0.0.1:{port}/healthz"
            with urllib.request.urlopen(url, timeout=1, context=ctx) as r:
                return r.status == 200 and r.read().strip() == b"ok"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
            return r.status == 200 and r.read().strip() == b"ok"
    except OSError:
        return False


def _parse_export_line(text: str) -> tuple[str, dict]:
    for line in text.splitlines():
        if line.startswith("export "):
            words = shlex.split(line)[1:]
            return line, dict(w.split("=", 1) for w in words)
    raise AssertionError(f"no 'export ...' line in the server's stdout:\n{text}")


@pytest.fixture(scope="session")
def _clean_aws_environment():
    """Keeps the host's AWS configuration (profiles, config files, env) out of the tests."""
    mp = pytest.MonkeyPatch()
    for k in list(os.environ):
        if k.startswith("AWS_"):
            mp.delenv(k)
    mp.setenv("AWS_CONFIG_FILE", os.devnull)
    mp.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
    yield
    mp.undo()


def _server_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GANTRY_")}
    env["GANTRY_LOG"] = "info,gantry_server=debug"
    # Sessions as short as a second, so that tests see them expire.
    env["GANTRY_STS_MIN_SESSION"] = "1s"
    # Task-role credentials that renew within a test (at half their life).
    env["GANTRY_TASK_CREDENTIALS_TTL"] = "20s"
    # Log events past their retention are swept within a test.
    env["GANTRY_LOG_EXPIRY_INTERVAL"] = "1s"
    # A load balancer's second (health check intervals, deregistration delays) lasts 100 ms.
    env["GANTRY_ELB_SECOND"] = "100ms"
    # gantry's DNS server never forwards in tests (the host's resolver is a private address),
    # and servers listen for DNS only where a test asks (`gantry up` passes its own address).
    env["GANTRY_DNS_FORWARD"] = "none"
    env["GANTRY_DNS_LISTEN"] = "off"
    env["NO_COLOR"] = "1"
    return env


@dataclass
class Process:
    """A `gantry server` process: where it listens and where its output goes."""

    proc: subprocess.Popen
    port: int
    stdout_path: Path
    stderr_path: Path

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return _ANSI.sub("", self.stderr_path.read_text(errors="replace"))

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM, then SIGKILL if it has not exited within `timeout`; returns the status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode


def start_server(binary: Path, data_dir: Path, log_dir: Path, name: str = "server", args=()) -> Process:
    """Starts `gantry server` on a free loopback port and waits for /healthz.

    Retries with another port if the chosen one was taken in the meantime.
    """
    last_error = ""
    for attempt in range(3):
        port = _free_port()
        stdout_path = log_dir / f"{name}-{attempt}.stdout"
        stderr_path = log_dir / f"{name}-{attempt}.stderr"
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            proc = subprocess.Popen(
                [
                    str(binary),
                    "server",
                    "--data-dir",
                    str(data_dir),
                    "--listen",
                    f"127.0.0.1:{port}",
                    "--region",
                    REGION,
                    "--account-id",
                    ACCOUNT_ID,
                    *args,
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=_server_env(),
            )
        p = Process(proc, port, stdout_path, stderr_path)
        deadline = time.monotonic() + 30
        tls = "--tls" in args or any(str(a).startswith("--tls-cert") for a in args)
        while time.monotonic() < deadline and proc.poll() is None:
            if _healthy(port, tls, data_dir):
                return p
            time.sleep(0.05)
        p.stop(timeout=5)
        last_error = p.stderr()
        if "in use" not in last_error.lower():
            break
    pytest.fail(f"gantry did not start ({binary}); its stderr:\n{last_error}", pytrace=False)


def read_credentials(binary: Path, data_dir: Path, port: int) -> dict:
    """`gantry credentials --json` for a data directory."""
    out = subprocess.run(
        [
            str(binary),
            "credentials",
            "--data-dir",
            str(data_dir),
            "--listen",
            f"127.0.0.1:{port}",
            "--region",
            REGION,
            "--json",
        ],
        env=_server_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, f"gantry credentials failed:\n{out.stderr}"
    return json.loads(out.stdout)


def make_gantry(binary: Path, data_dir: Path, p: Process, *, expect_export_line: bool) -> "Gantry":
    export_line, export_vars = "", {}
    if expect_export_line:
        # The line is printed before the server answers; allow for file-system lag anyway.
        text = p.stdout()
        deadline = time.monotonic() + 5
        while "export " not in text and time.monotonic() < deadline:
            time.sleep(0.02)
            text = p.stdout()
        export_line, export_vars = _parse_export_line(text)
    creds = read_credentials(binary, data_dir, p.port)
    endpoint = f"http://127.0.0.1:{p.port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=creds["accessKeyId"],
        AWS_SECRET_ACCESS_KEY=creds["secretAccessKey"],
        AWS_DEFAULT_REGION=creds["region"],
        AWS_ENDPOINT_URL=endpoint,
        AWS_DISABLE_HOST_PREFIX_INJECTION="true",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_PAGER="",
        AWS_MAX_ATTEMPTS="1",
    )
    return Gantry(
        binary=binary,
        data_dir=data_dir,
        port=p.port,
        endpoint=endpoint,
        region=creds["region"],
        account_id=ACCOUNT_ID,
        access_key_id=creds["accessKeyId"],
        secret_access_key=creds["secretAccessKey"],
        export_line=export_line,
        export_vars=export_vars,
        credentials_json=creds,
        env=env,
        stdout_path=p.stdout_path,
        stderr_path=p.stderr_path,
        proc=p.proc,
        process=p,
    )


@pytest.fixture(scope="session")
def gantry(tmp_path_factory, _clean_aws_environment):
    """The session's server, on a fresh data directory (so it prints its export line)."""
    global _SERVER
    binary = _gantry_binary()
    base = tmp_path_factory.mktemp("gantry")
    data_dir = base / "data"
    p = start_server(binary, data_dir, base)
    try:
        server = make_gantry(binary, data_dir, p, expect_export_line=True)
        _SERVER = server
        yield server
    finally:
        _SERVER = None
        p.stop()


@pytest.fixture
def launch(tmp_path, _clean_aws_environment):
    """Starts extra servers for one test; all are stopped after it.

    ``launch(data_dir)`` -> Process; ``launch.gantry(data_dir, process, expect_export_line)``
    -> Gantry; ``launch.credentials(data_dir, port)`` -> ``gantry credentials --json``.
    """
    binary = _gantry_binary()
    started = []

    def start(data_dir: Path, *args: str) -> Process:
        p = start_server(binary, data_dir, tmp_path, name=f"extra{len(started)}", args=args)
        started.append(p)
        return p

    start.binary = binary
    start.credentials = lambda data_dir, port=8100: read_credentials(binary, data_dir, port)
    start.gantry = lambda data_dir, p, expect_export_line=False: make_gantry(
        binary, data_dir, p, expect_export_line=expect_export_line
    )
    yield start
    for p in started:
        p.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and _SERVER is not None:
        report.sections.append(("gantry server stderr (tail)", _SERVER.stderr_tail()))


# --------------------------------------------------------------------------------------------
# Clients


@pytest.fixture(scope="session")
def ecs(gantry):
    return gantry.client()


@pytest.fixture(scope="session")
def unique() -> Callable[[str], str]:
    """``unique("web")`` -> ``"web-1a2b3c4d5e"``: a name no other test uses."""

    def make(prefix: str = "t") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:10]}"

    return make


@dataclass
class RawResponse:
    status: int
    headers: dict  # lower-cased names
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error_type(self) -> Optional[str]:
        try:
            return self.json.get("__type")
        except ValueError:
            return None

    def __repr__(self) -> str:
        return f"RawResponse({self.status}, {self.body[:500]!r})"


class RawClient:
    """Sends hand-made AWS JSON 1.1 requests, signed with botocore's SigV4Auth."""

    def __init__(self, server: Gantry):
        self.server = server

    def target(self, operation: str) -> str:
        return operation if "." in operation else f"{TARGET_PREFIX}.{operation}"

    def sign(
        self,
        operation: Optional[str],
        body: bytes,
        *,
        access_key: Optional[str] = None,
        secret_key: Optional[str] = None,
        region: Optional[str] = None,
        service: str = "ecs",
        when: Optional[datetime.datetime] = None,
        headers: Optional[dict] = None,
        path: str = "/",
    ) -> dict:
        """Headers for a request signed as botocore signs it (``when``: a naive UTC time)."""
        h = {"Content-Type": JSON_CONTENT_TYPE}
        if operation is not None:
            h["X-Amz-Target"] = self.target(operation)
        h.update(headers or {})
        req = AWSRequest(method="POST", url=self.server.endpoint + path, data=body, headers=h)
        creds = Credentials(
            access_key or self.server.access_key_id, secret_key or self.server.secret_access_key
        )
        signer = SigV4Auth(creds, service, region or self.server.region)
        if when is None:
            signer.add_auth(req)
        else:
            with mock.patch.object(botocore.auth, "get_current_datetime", lambda *a, **k: when):
                signer.add_auth(req)
            want = when.strftime("%Y%m%dT%H%M%SZ")
            assert req.headers["X-Amz-Date"] == want, (
                "could not back-date the signature: botocore.auth no longer uses "
                "get_current_datetime"
            )
        return dict(req.headers.items())

    def send(self, headers: dict, body: bytes, *, method: str = "POST", path: str = "/") -> RawResponse:
        conn = http.client.HTTPConnection(self.server.host, self.server.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return RawResponse(
                status=resp.status,
                headers={k.lower(): v for k, v in resp.getheaders()},
                body=resp.read(),
            )
        finally:
            conn.close()

    def call(self, operation: Optional[str], body: Any = b"{}", **sign_kwargs: Any) -> RawResponse:
        """Signs and POSTs ``body`` (bytes, str, or an object to JSON-encode)."""
        if isinstance(body, str):
            body = body.encode()
        elif not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode()
        headers = self.sign(operation, bytes(body), **sign_kwargs)
        return self.send(headers, bytes(body))

    def unsigned(self, operation: str, body: Any = b"{}") -> RawResponse:
        if isinstance(body, str):
            body = body.encode()
        headers = {"Content-Type": JSON_CONTENT_TYPE, "X-Amz-Target": self.target(operation)}
        return self.send(headers, body)


@pytest.fixture(scope="session")
def raw(gantry) -> RawClient:
    return RawClient(gantry)


@dataclass
class CliResult:
    args: list
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.returncode == 0, f"aws {' '.join(self.args)} failed:\n{self.stderr}"
        return json.loads(self.stdout)


class AwsCli:
    """Runs the AWS CLI (v1, from this interpreter's site-packages) against the server."""

    def __init__(self, server: Gantry):
        self.server = server

    def run(self, *args: str, cwd: Optional[Path] = None, env: Optional[dict] = None) -> CliResult:
        argv = [sys.executable, "-m", "awscli", *args]
        if "--output" not in args:
            argv += ["--output", "json"]
        p = subprocess.run(
            argv,
            env=env or self.server.env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        return CliResult(list(args), p.returncode, p.stdout, p.stderr)

    def json(self, *args: str, **kwargs: Any) -> Any:
        return self.run(*args, **kwargs).json()

    def __call__(self, *args: str, **kwargs: Any) -> Any:
        return self.json(*args, **kwargs)


@pytest.fixture(scope="session")
def aws_cli(gantry) -> AwsCli:
    return AwsCli(gantry)
