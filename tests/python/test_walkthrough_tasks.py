"""README.md's walk-through, run as written against `gantry up` on the local Docker Engine.

The code blocks of the section "A five-minute walk-through with the AWS CLI" are taken from the
README itself, not copied here:

* the ``sh`` blocks run in order as one bash script (``set -euo pipefail``), in a fresh working
  directory, after the ``export`` line `gantry up` printed, with this interpreter's AWS CLI first
  on PATH: the cluster and task definition commands, building the busybox image, running the
  ``hello`` task, reaching its httpd through the dynamic host port, stopping it;
* ``sh`` blocks that are transcripts (``$ command`` then its output) run their command and must
  print that output (compared with whitespace normalised: the README wraps long lines);
* ``python`` blocks run with this interpreter.

Needs Docker (skipped without it) and a static /bin/busybox (Debian's busybox-static; skipped
without it). Nothing is pulled: the image is built locally, and `gantry up` prefers cached images.

The module's `gantry up` leaves task containers running when it stops (as the ECS agent does), so
its teardown runs `gantry stop-all-tasks` first, waits for the tasks to stop, stops gantry, then
removes every container labelled with its container instance.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import (
    REPO_ROOT,
    _ANSI,
    _free_port,
    _gantry_binary,
    _healthy,
    _parse_export_line,
    _server_env,
)

README = REPO_ROOT / "README.md"
SECTION = "A five-minute walk-through with the AWS CLI"
IMAGE = "gantry-test/busybox:1"
BUSYBOX = Path("/bin/busybox")
DOCKERFILE = 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox","--install","-s","/bin"]\n'

# xtrace prefix of the README script: the first character repeats once per level of nesting
# (command substitutions), so a line starting with exactly one of it is a top-level command.
TRACE = "\x1f"


# --------------------------------------------------------------------------------------------
# The README


def readme_blocks() -> list[tuple[str, str]]:
    """(language, text) of each fenced block of the walk-through section, in order."""
    text = README.read_text()
    m = re.search(rf"^## {re.escape(SECTION)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert m, f"README.md has no section '## {SECTION}'"
    blocks = re.findall(r"^```(\w*)\n(.*?)^```\s*$", m.group(1), re.M | re.S)
    assert blocks, f"README.md's section '{SECTION}' has no code blocks"
    return blocks


def is_transcript(block: str) -> bool:
    return block.lstrip().startswith("$ ")


def split_transcript(block: str) -> tuple[str, str]:
    """``$ cmd \\`` + continuation lines, then the expected output: (command, output)."""
    lines = block.splitlines()
    assert lines[0].startswith("$ "), block
    cmd = [lines[0][2:]]
    i = 1
    while cmd[-1].rstrip().endswith("\\") and i < len(lines):
        cmd.append(lines[i])
        i += 1
    return "\n".join(cmd), "\n".join(lines[i:])


# --------------------------------------------------------------------------------------------
# Docker and the image


def dynamically_linked(path: Path) -> bool:
    """Whether an ELF executable has a PT_INTERP (a dynamic loader): such a busybox (Debian's
    `busybox` package) cannot run in a FROM scratch image."""
    import struct

    data = path.read_bytes()
    if data[:4] != b"\x7fELF":
        return True
    wide, little = data[4] == 2, data[5] == 1
    e = "<" if little else ">"
    if wide:
        phoff, = struct.unpack_from(e + "Q", data, 0x20)
        phentsize, phnum = struct.unpack_from(e + "HH", data, 0x36)
    else:
        phoff, = struct.unpack_from(e + "I", data, 0x1C)
        phentsize, phnum = struct.unpack_from(e + "HH", data, 0x2A)
    types = [struct.unpack_from(e + "I", data, phoff + i * phentsize)[0] for i in range(phnum)]
    return 3 in types  # PT_INTERP


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({p.returncode}):\n{p.stderr}{p.stdout}")
    return p


@pytest.fixture(scope="module")
def busybox_image(tmp_path_factory) -> str:
    """gantry-test/busybox:1, built locally (FROM scratch: nothing to pull)."""
    if shutil.which("docker") is None:
        pytest.skip("the walk-through needs Docker: no `docker` command on PATH")
    v = docker("version", "--format", "{{.Server.Version}}", timeout=30, check=False)
    if v.returncode != 0:
        pytest.skip(f"the walk-through needs Docker, and the daemon does not answer:\n{v.stderr}")
    if not (BUSYBOX.is_file() and os.access(BUSYBOX, os.X_OK)):
        pytest.skip(f"{BUSYBOX} is missing: install a static busybox (apt-get install busybox-static)")
    if dynamically_linked(BUSYBOX):
        pytest.skip(f"{BUSYBOX} is not a static executable: the image needs Debian's busybox-static")
    ctx = tmp_path_factory.mktemp("busybox-image")
    shutil.copy2(BUSYBOX, ctx / "busybox")
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    docker("build", "-q", "-t", IMAGE, str(ctx))
    return IMAGE


# --------------------------------------------------------------------------------------------
# gantry up


@dataclass
class Up:
    """A `gantry up` process: control plane and an agent on the local Docker."""

    binary: Path
    data_dir: Path
    port: int
    proc: subprocess.Popen = field(repr=False)
    stdout_path: Path
    stderr_path: Path
    export_line: str = ""
    export_vars: dict = field(default_factory=dict)
    instance_arn: str = ""

    @property
    def listen(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 60) -> str:
        text = _ANSI.sub("", self.stderr_path.read_text(errors="replace"))
        status = self.proc.poll()
        alive = "running" if status is None else f"EXITED with status {status}"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"[gantry up pid {self.proc.pid} {alive}; full log: {self.stderr_path}]\n{tail}"

    def client(self):
        import boto3
        from botocore.config import Config

        v = self.export_vars
        return boto3.session.Session().client(
            "ecs",
            region_name=v["AWS_DEFAULT_REGION"],
            endpoint_url=v["AWS_ENDPOINT_URL"],
            aws_access_key_id=v["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=v["AWS_SECRET_ACCESS_KEY"],
            config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=30),
        )

    def base_env(self, bin_dir: Path) -> dict:
        """The environment of a user's shell before pasting the export line: no AWS_* of the
        host, no AWS config files, this interpreter's AWS CLI first on PATH."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GANTRY_"))}
        env.update(
            PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            AWS_EC2_METADATA_DISABLED="true",
            AWS_PAGER="",
            NO_COLOR="1",
        )
        return env


def _wait_for(what: str, check, timeout: float, up: Up, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        if up.proc.poll() is not None:
            break
        time.sleep(interval)
    pytest.fail(f"{what} (last seen: {last!r})\n{up.log_tail()}", pytrace=False)


def _tasks(ecs) -> list[dict]:
    arns = []
    for desired in ("RUNNING", "PENDING", "STOPPED"):
        for page in ecs.get_paginator("list_tasks").paginate(cluster="default", desiredStatus=desired):
            arns += page["taskArns"]
    tasks = []
    for i in range(0, len(arns), 100):
        tasks += ecs.describe_tasks(cluster="default", tasks=arns[i:i + 100])["tasks"]
    return tasks


def _stop_everything(up: Up) -> list[str]:
    """stop-all-tasks, wait for the tasks to stop, SIGTERM gantry, remove the instance's
    containers. Returns the problems met (the teardown reports them after cleaning up)."""
    problems = []
    if up.proc.poll() is None and up.instance_arn:
        p = subprocess.run(
            [str(up.binary), "stop-all-tasks", "--data-dir", str(up.data_dir), "--listen", up.listen],
            capture_output=True, text=True, timeout=60, env=_server_env(), stdin=subprocess.DEVNULL,
        )
        if p.returncode != 0:
            problems.append(f"gantry stop-all-tasks failed ({p.returncode}):\n{p.stderr}{p.stdout}")
        else:
            ecs = up.client()
            deadline = time.monotonic() + 30
            running = ["?"]
            while time.monotonic() < deadline:
                try:
                    running = [t["taskArn"] for t in _tasks(ecs) if t["lastStatus"] != "STOPPED"]
                except Exception as e:  # noqa: BLE001 - diagnostics only
                    running = [f"(cannot list tasks: {e})"]
                if not running:
                    break
                time.sleep(0.3)
            if running:
                problems.append(f"tasks not STOPPED 30 s after gantry stop-all-tasks: {running}")
    if up.proc.poll() is None:
        up.proc.send_signal(signal.SIGTERM)
        try:
            up.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            problems.append("gantry up did not exit within 15 s of SIGTERM; killed")
            up.proc.kill()
            up.proc.wait(timeout=10)
    if up.instance_arn:
        ids = docker("ps", "-aq", "--filter", f"label=gantry.container-instance={up.instance_arn}",
                     check=False).stdout.split()
        if ids:
            docker("rm", "-f", *ids, check=False)
    # Subnet networks of awsvpc tasks outlive them; leave the engine as found.
    docker("network", "prune", "-f", "--filter", "label=gantry.subnet", check=False)
    return problems


# Where `gantry up`'s DNS server listens in tests: its default, which its containers use.
UP_DNS = "169.254.170.2:53"


@pytest.fixture(scope="module")
def gantry_up(busybox_image, tmp_path_factory, _clean_aws_environment):
    """`gantry up` on a fresh data directory and a free loopback port, its agent registered."""
    binary = _gantry_binary()
    base = tmp_path_factory.mktemp("gantry-up")
    data_dir = base / "data"
    up = None
    for attempt in range(3):
        port = _free_port()
        stdout_path, stderr_path = base / f"up-{attempt}.stdout", base / f"up-{attempt}.stderr"
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            proc = subprocess.Popen(
                [str(binary), "up", "--data-dir", str(data_dir), "--listen", f"127.0.0.1:{port}",
                 "--stop-timeout", "2s", "--tick", "200ms", "--healthy-after", "3s",
                 "--dns-listen", UP_DNS],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=_server_env(),
            )
        candidate = Up(binary, data_dir, port, proc, stdout_path, stderr_path)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None and not _healthy(port):
            time.sleep(0.05)
        if proc.poll() is None and _healthy(port):
            up = candidate
            break
        log = candidate.log_tail()
        _stop_everything(candidate)
        if "in use" not in log.lower():
            pytest.fail(f"gantry up did not start:\n{log}", pytrace=False)
    if up is None:
        pytest.fail("gantry up did not start: no free port after 3 attempts", pytrace=False)

    problems = []
    try:
        text = _wait_for("gantry up printed no export line",
                         lambda: "export " in up.stdout_path.read_text() and up.stdout_path.read_text(),
                         5, up, interval=0.02)
        up.export_line, up.export_vars = _parse_export_line(text)
        assert up.export_vars["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{port}", up.export_line

        ecs = up.client()

        def registered():
            arns = ecs.list_container_instances(cluster="default")["containerInstanceArns"]
            if len(arns) != 1:
                return None
            (ci,) = ecs.describe_container_instances(cluster="default", containerInstances=arns)[
                "containerInstances"]
            return ci["containerInstanceArn"] if ci["status"] == "ACTIVE" and ci["agentConnected"] else None

        up.instance_arn = _wait_for("the agent of gantry up did not register in the cluster default",
                                    registered, 30, up)
        yield up
    finally:
        problems = _stop_everything(up)
    if problems:
        pytest.fail("teardown of gantry up:\n" + "\n".join(problems) + "\n" + up.log_tail(), pytrace=False)


@pytest.fixture(scope="module")
def aws_bin(tmp_path_factory) -> Path:
    """A directory whose `aws` is this interpreter's AWS CLI (v1), to put first on PATH."""
    d = tmp_path_factory.mktemp("bin")
    shim = d / "aws"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m awscli "$@"\n')
    shim.chmod(0o755)
    return d


# --------------------------------------------------------------------------------------------
# Running the README


@dataclass
class Step:
    """A top-level command of the script, as xtrace printed it, and what it printed."""

    command: str
    output: str
    nested: list = field(default_factory=list)  # xtrace lines of its command substitutions


def run_script(script: str, up: Up, aws_bin: Path, cwd: Path, timeout: float = 300):
    """Runs ``script`` as a user would after pasting the export line; returns (status, steps,
    raw output). stdout and stderr share one pipe, so the trace and the output interleave.

    On timeout the whole process group goes (an `aws ecs wait` polls for up to 10 minutes);
    the status is then None."""
    full = (
        "set -euo pipefail\n"
        f"{up.export_line}\n"
        f"PS4='{TRACE} '\n"
        "set -x\n"
        f"{script}"
    )
    (cwd / "walkthrough.sh").write_text(full)
    p = subprocess.Popen(["bash", "walkthrough.sh"], cwd=cwd, env=up.base_env(aws_bin),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        output, _ = p.communicate(timeout=timeout)
        status = p.returncode
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        output, _ = p.communicate()
        output += f"\n(killed: still running after {timeout:.0f} s)\n"
        status = None
    steps: list[Step] = []
    for line in output.splitlines():
        if line.startswith(TRACE + " "):
            steps.append(Step(line[2:], ""))
        elif line.startswith(TRACE * 2):
            if steps:
                steps[-1].nested.append(line.lstrip(TRACE).lstrip())
        elif steps:
            steps[-1].output += line + "\n"
    return status, steps, output


def find_steps(steps: list[Step], pattern: str) -> list[Step]:
    return [s for s in steps if re.search(pattern, s.command)]


def assigned(steps: list[Step], name: str) -> str:
    values = [s.command.split("=", 1)[1] for s in steps if s.command.startswith(f"{name}=")]
    assert values, f"the README's script never sets ${name}"
    return values[-1]


def describe(steps: list[Step]) -> str:
    return "\n".join(f"$ {s.command}\n{s.output}" for s in steps)


# --------------------------------------------------------------------------------------------
# Tests


def test_readme_walkthrough_runs_a_task(gantry_up, aws_bin, tmp_path):
    """Every command of the walk-through, in order: clusters, task definitions, the busybox
    image, run-task / wait / describe-tasks / curl / stop-task / wait / describe-tasks."""
    blocks = [b for lang, b in readme_blocks() if lang in ("sh", "bash") and not is_transcript(b)]
    script = "\n".join(blocks)
    for needle in ("docker build", "aws ecs run-task", "aws ecs wait tasks-running", "curl",
                   "aws ecs stop-task", "aws ecs wait tasks-stopped"):
        assert needle in script, f"the walk-through no longer has `{needle}`"

    status, steps, output = run_script(script, gantry_up, aws_bin, tmp_path)
    assert status == 0, (
        f"the README's walk-through failed (status {status}) at: "
        f"{steps[-1].command if steps else '(start)'}\n--- its output ---\n{output}\n"
        f"--- gantry up ---\n{gantry_up.log_tail()}"
    )
    context = f"\n--- the walk-through ---\n{describe(steps)}"

    ecs = gantry_up.client()
    task_arn = assigned(steps, "TASK")
    port = assigned(steps, "PORT")
    assert re.fullmatch(r"arn:aws:ecs:us-east-1:000000000000:task/default/[0-9a-f]{32}", task_arn), context

    # run-task --query ... --output text gave the ARN of the one task of family hello.
    hello = [t for t in _tasks(ecs) if t["group"] == "family:hello"]
    assert [t["taskArn"] for t in hello] == [task_arn], context

    # describe-tasks while it runs: on this host's container instance, port 8080 on a dynamic
    # host port, which is what the --query printed.
    (running_step,) = find_steps(steps, r"^aws ecs describe-tasks --tasks \S+$")
    running = json.loads(running_step.output)
    assert running["failures"] == [], context
    (t,) = running["tasks"]
    assert (t["taskArn"], t["lastStatus"], t["desiredStatus"]) == (task_arn, "RUNNING", "RUNNING"), context
    assert t["clusterArn"] == "arn:aws:ecs:us-east-1:000000000000:cluster/default"
    assert t["containerInstanceArn"] == gantry_up.instance_arn
    assert t["taskDefinitionArn"] == "arn:aws:ecs:us-east-1:000000000000:task-definition/hello:1"
    assert t["launchType"] == "EC2"
    (c,) = t["containers"]
    assert (c["name"], c["image"], c["lastStatus"]) == ("web", IMAGE, "RUNNING"), context
    binding = c["networkBindings"][0]
    assert (binding["containerPort"], binding["protocol"]) == (8080, "tcp"), context
    assert binding["hostPort"] != 8080 and binding["hostPort"] > 0, context
    assert port == str(binding["hostPort"]), context

    # curl reached busybox httpd inside the task through that port.
    (curl,) = find_steps(steps, r"^curl \S+ http://127\.0\.0\.1")
    assert curl.command.endswith(f" http://127.0.0.1:{port}/"), context
    assert curl.output == "hello from gantry\n", context

    # stop-task answered with the task on its way down, by the user.
    (stop,) = find_steps(steps, r"^aws ecs stop-task (?!.*--cluster serverless)")
    stopping = json.loads(stop.output)["task"]
    assert (stopping["taskArn"], stopping["desiredStatus"]) == (task_arn, "STOPPED"), context
    assert stopping["stopCode"] == "UserInitiated", context

    # After wait tasks-stopped, the last describe-tasks prints STOPPED and UserInitiated.
    last = find_steps(steps, r"^aws ecs describe-tasks (?!.*--cluster serverless)")[-1]
    assert last is not running_step
    assert last.output.rstrip("\n").split("\t") == ["STOPPED", "UserInitiated", "Task stopped by user"], context

    (final,) = ecs.describe_tasks(tasks=[task_arn])["tasks"]
    assert (final["lastStatus"], final["desiredStatus"], final["stopCode"]) == ("STOPPED", "STOPPED", "UserInitiated")
    for key in ("stoppingAt", "executionStoppedAt", "stoppedAt"):
        assert key in final, f"{key} missing from the stopped task: {final}"
    (fc,) = final["containers"]
    assert fc["lastStatus"] == "STOPPED" and "exitCode" in fc, final

    # The container really ran on this Docker Engine, from the image the README built, and has
    # exited (httpd ignores SIGTERM as PID 1: SIGKILL after the definition's stopTimeout of 2 s).
    inspected = json.loads(docker("inspect", c["runtimeId"]).stdout)[0]
    assert inspected["State"]["Running"] is False, inspected["State"]
    assert inspected["State"]["ExitCode"] == fc["exitCode"], (inspected["State"], fc)
    assert inspected["Config"]["Labels"].get("gantry.container-instance") == gantry_up.instance_arn
    assert inspected["Config"]["Image"] == IMAGE, inspected["Config"]
    (build,) = find_steps(steps, r"^docker build ")
    m = re.search(r"^Successfully built ([0-9a-f]{12})$", build.output, re.M)  # the classic builder
    if m:
        assert inspected["Image"].startswith(f"sha256:{m.group(1)}"), (inspected["Image"], build.output)

    # The service part: scaled to 3, deployed to hello:2, and steady.
    (svc,) = find_steps(steps, r"^aws ecs describe-services --services hello-svc --query 'services\[0\]\.\[runningCount")
    running, td, rollout = svc.output.rstrip("\n").split("\t")
    assert (running, rollout) == ("3", "COMPLETED"), context
    assert td.endswith(":task-definition/hello:2"), context
    (ev,) = find_steps(steps, r"^aws ecs describe-services --services hello-svc --query 'services\[0\]\.events")
    assert ev.output.strip() == "(service hello-svc) has reached a steady state.", context

    # The seed's web server as a FARGATE task, on a cluster without instances.
    (fcurl,) = find_steps(steps, r"^curl \S+ http://10\.213\.")
    assert fcurl.output.strip() == "hello from Fargate", context


def test_readme_walkthrough_transcripts(gantry_up, aws_bin, tmp_path):
    """The walk-through's ``$ command`` blocks print what the README shows."""
    transcripts = [b for lang, b in readme_blocks() if lang in ("sh", "bash") and is_transcript(b)]
    assert transcripts, "the walk-through has no transcript block any more"
    env = gantry_up.base_env(aws_bin)
    env.update(gantry_up.export_vars)
    for block in transcripts:
        command, expected = split_transcript(block)
        p = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=60, stdin=subprocess.DEVNULL)
        got = " ".join((p.stdout + p.stderr).split())
        assert got == " ".join(expected.split()), f"$ {command}\n--- README ---\n{expected}\n--- got ---\n{p.stdout}{p.stderr}"


def test_readme_walkthrough_python(gantry_up, aws_bin, tmp_path):
    """The walk-through's Python snippets run with only the exported variables."""
    snippets = [b for lang, b in readme_blocks() if lang == "python"]
    assert snippets, "the walk-through has no Python snippet any more"
    env = gantry_up.base_env(aws_bin)
    env.update(gantry_up.export_vars)
    for code in snippets:
        p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert p.returncode == 0, f"{code}\n--- stderr ---\n{p.stderr}"
        # print(ecs.list_clusters()["clusterArns"]): gantry up's cluster, and the walk-through's.
        assert "arn:aws:ecs:us-east-1:000000000000:cluster/default" in p.stdout, p.stdout
