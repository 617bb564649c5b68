"""Inside a task, on real Docker: the agent's endpoint at 169.254.170.2.

- task-role credentials: ECS's shape, an STS session of the role named by the task, limited by
  the role's policy, renewed before it expires, refused to any other caller, and ended once the
  task has stopped;
- an AWS SDK (aws-config's default chain, the `task_sdk` example of crates/gantry) in a
  container, allowed and refused exactly as the role's policy says;
- metadata v4 (and v3) in bridge, awsvpc and host modes: the task's ARN and each container's
  addresses, stats, tags.
"""

from __future__ import annotations

import calendar
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import _gantry_binary
from test_walkthrough_tasks import IMAGE, _wait_for, busybox_image, docker, gantry_up  # noqa: F401

ACCOUNT = "000000000000"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
SDK_IMAGE = "gantry-test/task-sdk:1"


def client(up, service: str, creds: dict | None = None):
    v = up.export_vars
    keys = dict(aws_access_key_id=v["AWS_ACCESS_KEY_ID"], aws_secret_access_key=v["AWS_SECRET_ACCESS_KEY"])
    if creds:
        keys = dict(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                    aws_session_token=creds["Token"])
    return boto3.session.Session().client(
        service, region_name=v["AWS_DEFAULT_REGION"], endpoint_url=v["AWS_ENDPOINT_URL"],
        config=Config(retries={"max_attempts": 1}), **keys)


def role(iam, name: str, actions: list[str]) -> str:
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="app", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}))
    return arn


def run(up, ecs, family: str, *, mode: str = "bridge", role_arn: str | None = None, image: str = IMAGE,
        command=("sleep", "120"), containers: int = 1, tags=None, wait: str = "RUNNING",
        launch_type: str | None = None) -> dict:
    defs = [{"name": f"c{i}", "image": image, "memory": 32} for i in range(containers)]
    for d in defs:
        if command:
            d["command"] = list(command)
    kw = {"taskRoleArn": role_arn} if role_arn else {}
    if launch_type == "FARGATE":
        kw.update(requiresCompatibilities=["FARGATE"], cpu="256", memory="512")
    td = ecs.register_task_definition(family=family, networkMode=mode, containerDefinitions=defs, **kw)
    extra = {"tags": tags} if tags else {}
    if launch_type:
        extra["launchType"] = launch_type
    if mode == "awsvpc":
        extra["networkConfiguration"] = {"awsvpcConfiguration": {"subnets": ["subnet-endpoint"]}}
    arn = ecs.run_task(cluster="default", taskDefinition=td["taskDefinition"]["taskDefinitionArn"],
                       **extra)["tasks"][0]["taskArn"]

    def reached():
        (t,) = ecs.describe_tasks(cluster="default", tasks=[arn])["tasks"]
        return t if t["lastStatus"] == wait else None

    return _wait_for(f"task {family} did not reach {wait}", reached, 60, up)


def sh(task: dict, script: str, container: int = 0) -> subprocess.CompletedProcess:
    """Runs `script` in a container of the task (in its network namespace and cgroup)."""
    return docker("exec", task["containers"][container]["runtimeId"], "sh", "-c", script, check=False)


def get(task: dict, url_expr: str, container: int = 0) -> dict:
    p = sh(task, f'wget -qO- "{url_expr}"', container)
    assert p.returncode == 0, f"wget {url_expr} in {task['taskArn']}: {p.stderr}"
    return json.loads(p.stdout)


def get_raw(task: dict, path_expr: str) -> dict:
    """GET with busybox's nc, for gVisor sandboxes (FARGATE), where busybox's wget fails to read
    any HTTP answer."""
    # stdin stays open until the answer has come: busybox's nc stops at the end of its input.
    p = sh(task, f'(printf "GET {path_expr} HTTP/1.0\\r\\nHost: 169.254.170.2\\r\\n\\r\\n"; sleep 5) | nc 169.254.170.2 80')
    # (Text mode reads the answer's CRLFs as newlines.)
    head, _, body = p.stdout.partition("\n\n")
    assert p.returncode == 0 and head.startswith("HTTP/1.") and " 200 " in head.splitlines()[0], (p.stdout, p.stderr)
    return json.loads(body)


def task_id(arn: str) -> str:
    return arn.rsplit("/", 1)[1]


def stop(ecs, up, arn: str):
    ecs.stop_task(cluster="default", task=arn)

    def stopped():
        (t,) = ecs.describe_tasks(cluster="default", tasks=[arn])["tasks"]
        return t["lastStatus"] == "STOPPED"

    _wait_for(f"task {arn} did not stop", stopped, 60, up)


CREDS = "http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"


def test_task_role_credentials_are_the_roles_own_and_nobody_elses(gantry_up):
    up = gantry_up
    ecs, iam = client(up, "ecs"), client(up, "iam")
    app = role(iam, "endpoint-app", ["ecs:ListClusters"])
    t = run(up, ecs, "with-role", role_arn=app)
    env = dict(line.split("=", 1) for line in sh(t, "env").stdout.splitlines() if "=" in line)
    ref = f"{task_id(t['taskArn'])}-0"
    assert env["ECS_CONTAINER_METADATA_URI_V4"] == f"http://169.254.170.2/v4/{ref}", env
    assert env["ECS_CONTAINER_METADATA_URI"] == f"http://169.254.170.2/v3/{ref}", env
    assert env["ECS_AGENT_URI"] == f"http://169.254.170.2/api/{ref}", env
    assert env["AWS_ENDPOINT_URL"] == "http://169.254.170.2", env
    assert env["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"].startswith("/v2/credentials/"), env

    c1 = get(t, CREDS)
    assert set(c1) == {"RoleArn", "AccessKeyId", "SecretAccessKey", "Token", "Expiration"}, c1
    assert c1["RoleArn"] == app and c1["AccessKeyId"].startswith("ASIA")
    who = client(up, "sts", c1).get_caller_identity()
    assert who["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/endpoint-app/{task_id(t['taskArn'])}", who
    as_task = client(up, "ecs", c1)
    assert as_task.list_clusters()["clusterArns"]
    with pytest.raises(ClientError) as denied:
        as_task.create_cluster(clusterName="not-allowed")
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"

    # Nobody else gets them with the same URI: a second task (bridge, awsvpc), the host itself.
    uri = env["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"]
    for mode in ("bridge", "awsvpc"):
        other = run(up, ecs, f"thief-{mode}", mode=mode)
        p = sh(other, f"wget -qO- http://169.254.170.2{uri}")
        assert p.returncode != 0 and "403" in p.stderr, (mode, p.stdout, p.stderr)
        ecs.stop_task(cluster="default", task=other["taskArn"])
    import urllib.error
    import urllib.request
    with pytest.raises(urllib.error.HTTPError) as host:
        urllib.request.urlopen(f"http://169.254.170.2{uri}", timeout=10)
    assert host.value.code == 403
    assert json.loads(host.value.read())["code"] == "AccessDenied"
    # An id no task has.
    p = sh(t, "wget -qO- http://169.254.170.2/v2/credentials/00000000-0000-0000-0000-000000000000")
    assert p.returncode != 0 and "400" in p.stderr, p.stderr

    # Renewed well before they expire (tests run with 20 s sessions): new keys are served while
    # the old still work, and both are sessions of the role.
    expires = calendar.timegm(time.strptime(c1["Expiration"], "%Y-%m-%dT%H:%M:%SZ"))
    c2 = _wait_for("the task's credentials were not renewed",
                   lambda: (c := get(t, CREDS))["AccessKeyId"] != c1["AccessKeyId"] and c, 40, up, interval=0.5)
    assert time.time() < expires, "renewed only after the old credentials expired"
    assert client(up, "sts", c1).get_caller_identity()["Arn"] == who["Arn"]
    assert client(up, "sts", c2).get_caller_identity()["Arn"] == who["Arn"]

    # Once the task has stopped, its credentials stop working.
    stop(ecs, up, t["taskArn"])

    def refused():
        try:
            client(up, "sts", c2).get_caller_identity()
            return False
        except ClientError as e:
            return e.response["Error"]["Code"]

    assert _wait_for("credentials still work after their task stopped", refused, 15, up) == "InvalidClientTokenId"


def container_ip(runtime_id: str) -> str:
    nets = json.loads(docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", runtime_id).stdout)
    return next(n["IPAddress"] for n in nets.values() if n["IPAddress"])


def test_metadata_gives_the_task_and_its_containers_addresses_in_every_network_mode(gantry_up):
    up = gantry_up
    ecs, iam = client(up, "ecs"), client(up, "iam")
    (instance,) = ecs.list_container_instances(cluster="default")["containerInstanceArns"]
    ecs.tag_resource(resourceArn=instance, tags=[{"key": "rack", "value": "r7"}])
    host_role = role(iam, "endpoint-host", ["ecs:ListClusters"])

    bridge = run(up, ecs, "meta-bridge", containers=2, tags=[{"key": "team", "value": "blue"}])
    task = get(bridge, "$ECS_CONTAINER_METADATA_URI_V4/task")
    assert task["TaskARN"] == bridge["taskArn"] and task["Family"] == "meta-bridge", task
    assert task["Cluster"].endswith(":cluster/default") and task["LaunchType"] == "EC2"
    assert task["KnownStatus"] == "RUNNING" and task["Revision"] == "1"
    assert [c["Name"] for c in task["Containers"]] == ["c0", "c1"]
    for c, described in zip(task["Containers"], sorted(bridge["containers"], key=lambda c: c["name"])):
        assert c["DockerId"] == described["runtimeId"], c
        assert c["ContainerARN"] == described["containerArn"], c
        assert c["Networks"] == [{"NetworkMode": "bridge", "IPv4Addresses": [container_ip(c["DockerId"])]}], c
        assert c["Labels"]["com.amazonaws.ecs.task-arn"] == bridge["taskArn"], c
        assert c["Image"] == IMAGE and c["ImageID"].startswith("sha256:") and c["Limits"]["Memory"] == 32
        assert c["StartedAt"].endswith("Z") and c["Type"] == "NORMAL"
    own = get(bridge, "$ECS_CONTAINER_METADATA_URI_V4", container=1)
    assert own["Name"] == "c1" and own["DockerId"] == task["Containers"][1]["DockerId"], own
    tagged = get(bridge, "$ECS_CONTAINER_METADATA_URI_V4/taskWithTags")
    assert tagged["TaskTags"] == {"team": "blue"}, tagged
    assert tagged["ContainerInstanceTags"] == {"rack": "r7"}, tagged
    stats = get(bridge, "$ECS_CONTAINER_METADATA_URI_V4/stats")
    assert stats["memory_stats"]["usage"] > 0 and "cpu_stats" in stats and "networks" in stats, stats
    all_stats = get(bridge, "$ECS_CONTAINER_METADATA_URI_V4/task/stats")
    assert set(all_stats) == {c["DockerId"] for c in task["Containers"]}
    v3 = get(bridge, "$ECS_CONTAINER_METADATA_URI/task")
    assert v3["TaskARN"] == bridge["taskArn"] and "ContainerARN" not in v3["Containers"][0]
    ecs.stop_task(cluster="default", task=bridge["taskArn"])

    awsvpc = run(up, ecs, "meta-awsvpc", mode="awsvpc")
    details = {d["name"]: d["value"] for d in awsvpc["attachments"][0]["details"]}
    (c,) = get(awsvpc, "$ECS_CONTAINER_METADATA_URI_V4/task")["Containers"]
    (net,) = c["Networks"]
    assert net["NetworkMode"] == "awsvpc" and net["IPv4Addresses"] == [details["privateIPv4Address"]], net
    assert net["MACAddress"] == details["macAddress"], net
    assert net["SubnetGatewayIpv4Address"] == details["subnetGatewayIpv4Address"], net
    ecs.stop_task(cluster="default", task=awsvpc["taskArn"])

    # FARGATE: awsvpc in the task's own sandbox (gVisor when the engine has runsc).
    fargate = run(up, ecs, "meta-fargate", mode="awsvpc", role_arn=host_role, launch_type="FARGATE")
    details = {d["name"]: d["value"] for d in fargate["attachments"][0]["details"]}
    meta = get_raw(fargate, "${ECS_CONTAINER_METADATA_URI_V4#http://169.254.170.2}/task")
    assert meta["TaskARN"] == fargate["taskArn"] and meta["LaunchType"] == "FARGATE", meta
    assert meta["Limits"] == {"CPU": 0.25, "Memory": 512}, meta
    assert meta["Containers"][0]["Networks"][0]["IPv4Addresses"] == [details["privateIPv4Address"]], meta
    creds = get_raw(fargate, "$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
    assert client(up, "sts", creds).get_caller_identity()["Arn"].endswith(f"/{task_id(fargate['taskArn'])}")
    ecs.stop_task(cluster="default", task=fargate["taskArn"])

    # Host mode shares the host's addresses; its credentials go to it by its cgroup.
    host = run(up, ecs, "meta-host", mode="host", role_arn=host_role)
    meta = get(host, "$ECS_CONTAINER_METADATA_URI_V4/task")
    (net,) = meta["Containers"][0]["Networks"]
    assert meta["TaskARN"] == host["taskArn"] and net["NetworkMode"] == "host", meta
    assert len(net["IPv4Addresses"]) == 1, net
    creds = get(host, CREDS)
    assert client(up, "sts", creds).get_caller_identity()["Arn"].endswith(f"/endpoint-host/{task_id(host['taskArn'])}")
    ecs.stop_task(cluster="default", task=host["taskArn"])


@pytest.fixture(scope="module")
def sdk_image(tmp_path_factory) -> str:
    """The `task_sdk` example (built by `cargo test`) with its shared libraries, FROM scratch."""
    binary = _gantry_binary().parent / "examples" / "task_sdk"
    if not binary.is_file():
        pytest.fail(f"{binary} is missing: build it with `cargo build -p gantry --example task_sdk` "
                    "(`cargo test` builds it too)", pytrace=False)
    ctx = tmp_path_factory.mktemp("task-sdk")
    if shutil.which("objcopy"):
        subprocess.run(["objcopy", "--strip-debug", str(binary), str(ctx / "task_sdk")], check=True)
    else:
        shutil.copy2(binary, ctx / "task_sdk")
    libs = []
    for line in subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout.splitlines():
        path = next((w for w in line.split() if w.startswith("/")), None)
        if path:
            libs.append(path)
    lines = ["FROM scratch", "COPY task_sdk /task_sdk"]
    for i, lib in enumerate(libs):
        shutil.copy2(os.path.realpath(lib), ctx / f"lib{i}")
        lines.append(f"COPY lib{i} {lib}")
    # The SDK's HTTPS client refuses to start without root certificates (it talks plain HTTP here).
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    if bundle.is_file():
        shutil.copy2(bundle, ctx / "ca.crt")
        lines.append(f"COPY ca.crt {bundle}")
    (ctx / "Dockerfile").write_text("\n".join(lines) + '\nENTRYPOINT ["/task_sdk"]\n')
    docker("build", "-q", "-t", SDK_IMAGE, str(ctx), timeout=300)
    return SDK_IMAGE


def test_an_sdk_in_a_task_is_allowed_and_refused_as_its_role_says(gantry_up, sdk_image):
    up = gantry_up
    ecs, iam = client(up, "ecs"), client(up, "iam")
    sdk_role = role(iam, "endpoint-sdk", ["ecs:ListClusters"])

    def answers() -> tuple[dict, str]:
        t = run(up, ecs, "sdk", role_arn=sdk_role, image=sdk_image, command=(), wait="STOPPED")
        out = docker("logs", t["containers"][0]["runtimeId"]).stdout.strip().splitlines()
        assert out, f"the SDK program printed nothing: {t.get('stoppedReason')}"
        return json.loads(out[-1]), t["taskArn"]

    got, arn = answers()
    assert got == {"caller": f"arn:aws:sts::{ACCOUNT}:assumed-role/endpoint-sdk/{task_id(arn)}",
                   "listClusters": "ok", "createCluster": "AccessDeniedException"}, got
    # The policy changes; so does what the SDK may do.
    iam.put_role_policy(RoleName="endpoint-sdk", PolicyName="app", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecs:*Cluster*", "Resource": "*"}]}))
    got, _ = answers()
    assert (got["listClusters"], got["createCluster"]) == ("ok", "ok"), got
