"""The awslogs driver on real Docker: a task's output reaches CloudWatch Logs (stream
`<prefix>/<container>/<task id>`, the group created with `awslogs-create-group`), as the task's
execution role; `aws logs tail --follow` (the AWS CLI v2) shows lines as they are written; a
counter arrives as exactly 1..N in order across a restart of gantry (server and agent); an
execution role that may not write logs gets nothing written."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time

import boto3
import pytest
from botocore.config import Config

from conftest import _healthy, _server_env
from test_walkthrough_tasks import UP_DNS, IMAGE, _wait_for, busybox_image, docker, gantry_up  # noqa: F401

AWS_V2 = "/usr/bin/aws"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def client(up, service: str):
    v = up.export_vars
    return boto3.session.Session().client(
        service, region_name=v["AWS_DEFAULT_REGION"], endpoint_url=v["AWS_ENDPOINT_URL"],
        aws_access_key_id=v["AWS_ACCESS_KEY_ID"], aws_secret_access_key=v["AWS_SECRET_ACCESS_KEY"],
        config=Config(retries={"max_attempts": 1}, inject_host_prefix=False))


@pytest.fixture(scope="module")
def exec_role(gantry_up) -> str:
    iam = client(gantry_up, "iam")
    arn = iam.create_role(RoleName="exec-logs", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    iam.put_role_policy(RoleName="exec-logs", PolicyName="logs", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
            "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]}]}))
    return arn


def run(up, family: str, script: str, role: str, group: str) -> str:
    ecs = client(up, "ecs")
    td = ecs.register_task_definition(family=family, executionRoleArn=role, containerDefinitions=[{
        "name": "app", "image": IMAGE, "memory": 32, "command": ["sh", "-c", script],
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": group, "awslogs-region": "us-east-1", "awslogs-stream-prefix": family,
            "awslogs-create-group": "true"}}}])["taskDefinition"]["taskDefinitionArn"]
    return ecs.run_task(cluster="default", taskDefinition=td)["tasks"][0]["taskArn"]


def messages(up, group: str, stream: str) -> list[str]:
    logs = client(up, "logs")
    out, token = [], None
    while True:
        kw = {"nextToken": token} if token else {}
        try:
            r = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True, **kw)
        except logs.exceptions.ResourceNotFoundException:
            return []
        out += [e["message"] for e in r["events"]]
        if r["nextForwardToken"] == token:
            return out
        token = r["nextForwardToken"]


def status(up, arn: str) -> str:
    (t,) = client(up, "ecs").describe_tasks(cluster="default", tasks=[arn])["tasks"]
    return t["lastStatus"]


def test_a_tasks_output_reaches_cloudwatch_logs(gantry_up, exec_role):
    up = gantry_up
    arn = run(up, "hello", 'for i in $(seq 1 200); do echo "line $i"; done; echo "to stderr" >&2', exec_role, "/ecs/hello")
    stream = f"hello/app/{arn.rsplit('/', 1)[1]}"
    want = [f"line {i}" for i in range(1, 201)]
    got = _wait_for("the task's lines did not arrive", lambda: len(m := messages(up, "/ecs/hello", stream)) >= 201 and m, 60, up)
    # stdout in order; stderr interleaved with it, as Docker timestamps them.
    assert [m for m in got if m.startswith("line ")] == want and "to stderr" in got, got[-5:]
    logs = client(up, "logs")
    (g,) = logs.describe_log_groups(logGroupNamePrefix="/ecs/hello")["logGroups"]
    assert g["storedBytes"] > 0
    _wait_for("the task did not stop", lambda: status(up, arn) == "STOPPED", 30, up)
    # Still readable once the container is gone.
    (t,) = client(up, "ecs").describe_tasks(cluster="default", tasks=[arn])["tasks"]
    docker("rm", "-f", t["containers"][0]["runtimeId"], check=False)
    assert len(messages(up, "/ecs/hello", stream)) == 201


def test_aws_logs_tail_follows_a_running_task(gantry_up, exec_role):
    up = gantry_up
    arn = run(up, "ticker", 'for i in $(seq 1 100); do echo "tick $i"; sleep 0.2; done', exec_role, "/ecs/ticker")
    _wait_for("the ticker did not start", lambda: status(up, arn) == "RUNNING", 30, up)
    proc = subprocess.Popen([AWS_V2, "logs", "tail", "/ecs/ticker", "--follow", "--format", "short",
                             "--endpoint-url", up.export_vars["AWS_ENDPOINT_URL"]],
                            env={**up.base_env(up.binary.parent), **{k: v for k, v in up.export_vars.items()}},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True).start()
    try:
        _wait_for("aws logs tail --follow showed no ticks", lambda: sum("tick" in x for x in lines) >= 5, 60, up)
        seen = sum("tick" in x for x in lines)
        # The task is still writing: the tail shows lines as they come.
        assert status(up, arn) == "RUNNING"
        _wait_for("the tail did not go on", lambda: sum("tick" in x for x in lines) > seen + 3, 30, up)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        client(up, "ecs").stop_task(cluster="default", task=arn)


def restart(up):
    """SIGTERM gantry up, and start it again on the same data directory and port: the tasks
    keep running meanwhile, and the new agent adopts them."""
    up.proc.send_signal(signal.SIGTERM)
    up.proc.wait(timeout=30)
    with open(up.stdout_path, "ab") as out, open(up.stderr_path, "ab") as err:
        up.proc = subprocess.Popen(
            [str(up.binary), "up", "--data-dir", str(up.data_dir), "--listen", up.listen,
             "--stop-timeout", "2s", "--tick", "200ms", "--healthy-after", "3s",
             "--dns-listen", UP_DNS],
            stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=_server_env())
    _wait_for("gantry up did not come back", lambda: _healthy(up.port), 30, up)


def test_a_counter_arrives_exactly_once_in_order_across_a_restart(gantry_up, exec_role):
    up = gantry_up
    n = 400
    arn = run(up, "counter", f'i=0; while [ $i -lt {n} ]; do i=$((i+1)); echo $i; sleep 0.01; done', exec_role, "/ecs/counter")
    stream = f"counter/app/{arn.rsplit('/', 1)[1]}"
    _wait_for("no lines before the restart", lambda: len(messages(up, "/ecs/counter", stream)) > 20, 60, up)
    restart(up)
    got = _wait_for("the counter's lines did not all arrive",
                    lambda: len(m := messages(up, "/ecs/counter", stream)) >= n and m, 90, up)
    assert got == [str(i) for i in range(1, n + 1)], (len(got), got[:5], got[-5:])


def test_an_execution_role_without_logs_permission_writes_nothing(gantry_up):
    up = gantry_up
    iam = client(up, "iam")
    role = iam.create_role(RoleName="exec-nologs", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    arn = run(up, "mute", "echo secret-ish output; sleep 2", role, "/ecs/mute")
    _wait_for("the task did not stop", lambda: status(up, arn) == "STOPPED", 60, up)
    time.sleep(1)
    logs = client(up, "logs")
    assert logs.describe_log_groups(logGroupNamePrefix="/ecs/mute")["logGroups"] == []
    assert "logs:CreateLogGroup" in up.stderr_path.read_text(errors="replace")


def test_syslog_and_gelf_pass_through_to_docker(gantry_up):
    """Docker's own drivers deliver with the task definition's options: here to UDP listeners on
    loopback (dockerd sends from the host)."""
    import socket
    import zlib

    up = gantry_up
    ecs = client(up, "ecs")
    got = {}
    for driver in ("syslog", "gelf"):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(30)
        port = sock.getsockname()[1]
        key = "syslog-address" if driver == "syslog" else "gelf-address"
        td = ecs.register_task_definition(family=f"to-{driver}", containerDefinitions=[{
            "name": "app", "image": IMAGE, "memory": 32, "command": ["sh", "-c", f"echo hello-{driver}; sleep 1"],
            "logConfiguration": {"logDriver": driver, "options": {key: f"udp://127.0.0.1:{port}"}}}])
        ecs.run_task(cluster="default", taskDefinition=td["taskDefinition"]["taskDefinitionArn"])
        data, _ = sock.recvfrom(65536)
        sock.close()
        if driver == "gelf":
            data = zlib.decompress(data, 47)  # gzip or zlib, as Docker compresses GELF
        got[driver] = data.decode(errors="replace")
    assert "hello-syslog" in got["syslog"], got
    assert json.loads(got["gelf"])["short_message"] == "hello-gelf", got


def test_gantry_logs_prints_a_task_and_follows_a_service(gantry_up, exec_role):
    up = gantry_up
    ecs = client(up, "ecs")
    base = [str(up.binary), "logs", "--data-dir", str(up.data_dir), "--listen", up.listen]
    arn = run(up, "once", 'echo first; echo second', exec_role, "/ecs/once")
    _wait_for("the task did not stop", lambda: status(up, arn) == "STOPPED", 60, up)
    task_id = arn.rsplit("/", 1)[1]

    def printed():
        p = subprocess.run(base + [arn, "--json"], capture_output=True, text=True, timeout=60, env=_server_env())
        assert p.returncode == 0, p.stderr
        return [json.loads(x) for x in p.stdout.splitlines()]

    got = _wait_for("gantry logs printed nothing", lambda: len(r := printed()) >= 2 and r, 30, up)
    assert [(x["task"], x["container"], x["message"]) for x in got] == [
        (task_id, "app", "first"), (task_id, "app", "second")], got

    # A service: every task's lines, prefixed by task and container, as they come.
    td = ecs.describe_task_definition(taskDefinition="ticker")["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster="default", serviceName="ticking", taskDefinition=td, desiredCount=2)
    proc = subprocess.Popen(base + ["ticking", "-f"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_server_env(), stdin=subprocess.DEVNULL)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True).start()
    try:
        def two_tasks():
            prefixes = {x.split(" ", 1)[0] for x in lines if " tick " in x}
            return len(prefixes) >= 2 and prefixes

        prefixes = _wait_for("gantry logs -f did not show both tasks' ticks", two_tasks, 60, up)
        assert all(p.endswith("/app") and len(p.split("/")[0]) == 12 for p in prefixes), prefixes
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        ecs.update_service(cluster="default", service="ticking", desiredCount=0)
        ecs.delete_service(cluster="default", service="ticking", force=True)


def test_multiline_pattern_groups_lines_into_events(gantry_up, exec_role):
    up = gantry_up
    ecs = client(up, "ecs")
    td = ecs.register_task_definition(family="multiline", executionRoleArn=exec_role, containerDefinitions=[{
        "name": "app", "image": IMAGE, "memory": 32,
        "command": ["sh", "-c", "echo 'ERROR boom'; echo '  at a'; echo '  at b'; echo 'INFO fine'; sleep 1"],
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": "/ecs/multiline", "awslogs-stream-prefix": "m", "awslogs-create-group": "true",
            "awslogs-multiline-pattern": "[A-Z]+ "}}}])["taskDefinition"]["taskDefinitionArn"]
    arn = ecs.run_task(cluster="default", taskDefinition=td)["tasks"][0]["taskArn"]
    stream = f"m/app/{arn.rsplit('/', 1)[1]}"
    got = _wait_for("the events did not arrive", lambda: len(m := messages(up, "/ecs/multiline", stream)) >= 2 and m, 60, up)
    assert got == ["ERROR boom\n  at a\n  at b", "INFO fine"], got
