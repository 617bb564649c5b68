"""A task's `secrets` on real Docker: Secrets Manager (whole and by JSON key) and SSM
SecureString values arrive as environment variables, read as the task's execution role; a
secret the role may not read fails the start with ECS's reason; values stay out of
DescribeTasks."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time

import boto3
import pytest
from botocore.config import Config

from test_walkthrough_tasks import IMAGE, _wait_for, busybox_image, docker, gantry_up  # noqa: F401

TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def client(up, service: str):
    v = up.export_vars
    return boto3.session.Session().client(
        service, region_name=v["AWS_DEFAULT_REGION"], endpoint_url=v["AWS_ENDPOINT_URL"],
        aws_access_key_id=v["AWS_ACCESS_KEY_ID"], aws_secret_access_key=v["AWS_SECRET_ACCESS_KEY"],
        config=Config(retries={"max_attempts": 1}),
    )


def wait_task(up, ecs, arn: str, status: str) -> dict:
    def seen():
        (t,) = ecs.describe_tasks(cluster="default", tasks=[arn])["tasks"]
        return t if t["lastStatus"] == status else None

    return _wait_for(f"task {arn} did not reach {status}", seen, 60, up)


def test_secrets_arrive_as_environment_variables_read_as_the_execution_role(gantry_up):
    up = gantry_up
    ecs, iam, sm, ssm = (client(up, s) for s in ("ecs", "iam", "secretsmanager", "ssm"))
    secret_arn = sm.create_secret(Name="task/db", SecretString='{"user": "app", "password": "hunter2"}')["ARN"]
    ssm.put_parameter(Name="/task/token", Type="SecureString", Value="tok-123")
    ssm.put_parameter(Name="/task/log-size", Type="String", Value="7m")
    iam.create_role(RoleName="exec-ok", AssumeRolePolicyDocument=TRUST)
    iam.put_role_policy(RoleName="exec-ok", PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secret_arn},
            {"Effect": "Allow", "Action": "ssm:GetParameters",
             "Resource": "arn:aws:ssm:us-east-1:000000000000:parameter/task/*"}]}))
    iam.create_role(RoleName="exec-none", AssumeRolePolicyDocument=TRUST)
    secrets = [
        {"name": "DB_PASSWORD", "valueFrom": f"{secret_arn}:password::"},
        {"name": "DB_WHOLE", "valueFrom": secret_arn},
        {"name": "TOKEN", "valueFrom": "/task/token"},
    ]

    def register(family: str, role: str) -> str:
        return ecs.register_task_definition(
            family=family, executionRoleArn=f"arn:aws:iam::000000000000:role/{role}",
            containerDefinitions=[{"name": "app", "image": IMAGE, "memory": 32, "command": ["sleep", "60"],
                                   "environment": [{"name": "PLAIN", "value": "yes"}], "secrets": secrets,
                                   "logConfiguration": {"logDriver": "json-file", "options": {"max-file": "2"},
                                                        "secretOptions": [{"name": "max-size", "valueFrom": "/task/log-size"}]}}],
        )["taskDefinition"]["taskDefinitionArn"]

    ok = ecs.run_task(cluster="default", taskDefinition=register("with-secrets", "exec-ok"))["tasks"][0]["taskArn"]
    try:
        t = wait_task(up, ecs, ok, "RUNNING")
        env = json.loads(docker("inspect", "-f", "{{json .Config.Env}}", t["containers"][0]["runtimeId"]).stdout)
        assert "DB_PASSWORD=hunter2" in env and "TOKEN=tok-123" in env and "PLAIN=yes" in env, env
        # What every ECS container finds set.
        assert {"AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=us-east-1", "AWS_EXECUTION_ENV=AWS_ECS_EC2"} <= set(env), env
        assert 'DB_WHOLE={"user": "app", "password": "hunter2"}' in env, env
        log = json.loads(docker("inspect", "-f", "{{json .HostConfig.LogConfig}}", t["containers"][0]["runtimeId"]).stdout)
        assert log == {"Type": "json-file", "Config": {"max-file": "2", "max-size": "7m"}}, log
        described = json.dumps(ecs.describe_tasks(cluster="default", tasks=[ok]), default=str)
        assert "hunter2" not in described and "tok-123" not in described
    finally:
        ecs.stop_task(cluster="default", task=ok)

    refused = ecs.run_task(cluster="default", taskDefinition=register("secrets-refused", "exec-none"))["tasks"][0]["taskArn"]
    t = wait_task(up, ecs, refused, "STOPPED")
    assert t["stopCode"] == "TaskFailedToStart", t
    assert t["stoppedReason"].startswith("ResourceInitializationError: unable to pull secrets or registry auth:"), t
    assert "AccessDeniedException" in t["stoppedReason"] and "assumed-role/exec-none/" in t["stoppedReason"], t


def test_environment_files_are_refused_until_gantry_serves_s3(ecs, unique):
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as ei:
        ecs.register_task_definition(family=unique("envfile"), containerDefinitions=[{
            "name": "app", "image": "busybox", "memory": 32,
            "environmentFiles": [{"value": "arn:aws:s3:::bucket/app.env", "type": "s3"}]}])
    assert ei.value.response["Error"]["Code"] == "ClientException"
    assert "does not serve S3" in ei.value.response["Error"]["Message"]


@pytest.fixture(scope="module")
def private_registry(busybox_image, tmp_path_factory):
    """distribution's registry on loopback, behind a password: `puller`/`pw-123`, holding
    `<addr>/private/busybox:1`. The image is pushed, then removed from the engine, so that a
    task can run it only by pulling it with the password."""
    import bcrypt

    from conftest import _free_port

    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.fail("docker-registry is missing: apt-get install docker-registry (scripts/test does)", pytrace=False)
    d = tmp_path_factory.mktemp("registry")
    (d / "htpasswd").write_text("puller:" + bcrypt.hashpw(b"pw-123", bcrypt.gensalt(rounds=5)).decode() + "\n")
    port = _free_port()
    (d / "config.yml").write_text(
        "version: 0.1\n"
        f"storage:\n  filesystem:\n    rootdirectory: {d / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        f"auth:\n  htpasswd:\n    realm: gantry-test\n    path: {d / 'htpasswd'}\n")
    log = open(d / "registry.log", "wb")
    proc = subprocess.Popen([binary, "serve", str(d / "config.yml")], stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL)
    addr = f"127.0.0.1:{port}"
    image = f"{addr}/private/busybox:1"
    # The docker CLI keeps its login in a directory of the test's, not the user's.
    env = {**os.environ, "DOCKER_CONFIG": str(d / "docker-config")}

    def cli(*args, check=True):
        p = subprocess.run(["docker", *args], capture_output=True, text=True, env=env, timeout=120,
                           stdin=subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)}: {p.stderr}\n{(d / 'registry.log').read_text()}")
        return p

    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, (d / "registry.log").read_text()
                time.sleep(0.1)
        p = subprocess.run(["docker", "login", addr, "-u", "puller", "--password-stdin"], input="pw-123",
                           capture_output=True, text=True, env=env, timeout=60)
        assert p.returncode == 0, p.stderr
        cli("tag", busybox_image, image)
        cli("push", image)
        cli("logout", addr)
        cli("rmi", image)
        yield image
    finally:
        cli("rmi", "-f", image, check=False)
        proc.terminate()
        proc.wait(timeout=10)


def test_repository_credentials_pull_a_private_image_as_the_execution_role(gantry_up, private_registry):
    from botocore.exceptions import ClientError

    up = gantry_up
    ecs, iam, sm = (client(up, s) for s in ("ecs", "iam", "secretsmanager"))
    creds = sm.create_secret(Name="registry/puller", SecretString='{"username": "puller", "password": "pw-123"}')["ARN"]
    iam.create_role(RoleName="exec-pull", AssumeRolePolicyDocument=TRUST)
    iam.put_role_policy(RoleName="exec-pull", PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": creds}]}))
    iam.create_role(RoleName="exec-nopull", AssumeRolePolicyDocument=TRUST)

    def run(family: str, role: str, credentials: str | None) -> dict:
        c = {"name": "app", "image": private_registry, "memory": 32, "command": ["sleep", "60"]}
        if credentials:
            c["repositoryCredentials"] = {"credentialsParameter": credentials}
        td = ecs.register_task_definition(family=family, executionRoleArn=f"arn:aws:iam::000000000000:role/{role}",
                                          containerDefinitions=[c])["taskDefinition"]["taskDefinitionArn"]
        arn = ecs.run_task(cluster="default", taskDefinition=td)["tasks"][0]["taskArn"]

        def settled():
            (t,) = ecs.describe_tasks(cluster="default", tasks=[arn])["tasks"]
            return t if t["lastStatus"] in ("RUNNING", "STOPPED") else None

        return _wait_for(f"task {family} did not settle", settled, 90, up)

    # Without the password the registry refuses the pull.
    t = run("private-anonymous", "exec-pull", None)
    assert t["lastStatus"] == "STOPPED" and t["stoppedReason"].startswith("CannotPullContainerError"), t
    # With it (by the secret's name, as ECS accepts in the task's region), the task runs.
    t = run("private-pulled", "exec-pull", "registry/puller")
    assert t["lastStatus"] == "RUNNING", t
    ecs.stop_task(cluster="default", task=t["taskArn"])
    docker("rmi", "-f", private_registry, check=False)
    # An execution role that may not read the secret: ECS's reason, before any pull.
    t = run("private-refused", "exec-nopull", creds)
    assert t["lastStatus"] == "STOPPED" and t["stopCode"] == "TaskFailedToStart", t
    assert t["stoppedReason"].startswith("ResourceInitializationError: unable to pull secrets or registry auth:"), t
    # ECS takes registry credentials from Secrets Manager only.
    with pytest.raises(ClientError) as ei:
        ecs.register_task_definition(family="private-ssm", containerDefinitions=[{
            "name": "app", "image": private_registry, "memory": 32,
            "repositoryCredentials": {"credentialsParameter": "/registry/puller"}}])
    assert ei.value.response["Error"]["Code"] == "ClientException"
    assert "Secrets Manager" in ei.value.response["Error"]["Message"]
