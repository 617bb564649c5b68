"""HTTPS: a server with a certificate generated on first start, trusted through the CA file
`gantry credentials` names, by boto3, the AWS CLI and a remote agent; and aws:SecureTransport
meaning what it says in policies."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, SSLError, EndpointConnectionError

from conftest import ACCOUNT_ID, REGION, _server_env


def credentials(binary: Path, data_dir: Path, port: int) -> dict:
    out = subprocess.run(
        [str(binary), "credentials", "--data-dir", str(data_dir), "--listen", f"127.0.0.1:{port}",
         "--region", REGION, "--tls", "--json"],
        env=_server_env(), capture_output=True, text=True, timeout=30, check=True,
    )
    return json.loads(out.stdout)


@pytest.fixture
def https(launch, tmp_path):
    data = tmp_path / "tls-data"
    p = launch(data, "--tls")
    creds = credentials(launch.binary, data, p.port)
    return p, data, creds


def client(creds: dict, service: str = "ecs", **kw):
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        service, region_name=REGION, endpoint_url=creds["endpoint"],
        aws_access_key_id=kw.pop("key", creds["accessKeyId"]),
        aws_secret_access_key=kw.pop("secret", creds["secretAccessKey"]),
        config=Config(retries={"max_attempts": 1}), **kw,
    )


def test_generated_certificate_is_trusted_through_the_named_ca(https):
    p, data, creds = https
    assert creds["endpoint"] == f"https://127.0.0.1:{p.port}"
    assert creds["caFile"] == str(data / "tls" / "ca.pem")
    assert (data / "tls" / "key.pem").stat().st_mode & 0o077 == 0
    assert "AWS_CA_BUNDLE=" + creds["caFile"] in p.stdout()
    client(creds, verify=creds["caFile"]).list_clusters()
    # Without the CA, the certificate is not trusted; plain HTTP gets no answer.
    with pytest.raises(SSLError):
        client(creds).list_clusters()
    with pytest.raises(Exception):
        urllib.request.urlopen(f"http://127.0.0.1:{p.port}/healthz", timeout=2).read()


def test_the_aws_cli_trusts_it_with_aws_ca_bundle(https):
    p, data, creds = https
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=creds["accessKeyId"], AWS_SECRET_ACCESS_KEY=creds["secretAccessKey"],
               AWS_DEFAULT_REGION=REGION, AWS_ENDPOINT_URL=creds["endpoint"], AWS_CA_BUNDLE=creds["caFile"],
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    out = subprocess.run(["aws", "sts", "get-caller-identity", "--output", "json"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:root"


def test_secure_transport_conditions(https, gantry):
    p, data, creds = https
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ecs:ListClusters", "Resource": "*"},
        {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    ]})
    for server_creds, verify, secure in [(creds, creds["caFile"], True), (None, None, False)]:
        if server_creds is None:
            iam = gantry.client("iam")
        else:
            iam = client(server_creds, "iam", verify=verify)
        name = f"tls-{int(time.time() * 1000)}"
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="https-only", PolicyDocument=policy)
        key = iam.create_access_key(UserName=name)["AccessKey"]
        if secure:
            ecs = client(server_creds, key=key["AccessKeyId"], secret=key["SecretAccessKey"], verify=verify)
            ecs.list_clusters()
        else:
            ecs = gantry.client(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
            with pytest.raises(ClientError) as ei:
                ecs.list_clusters()
            assert ei.value.response["Error"]["Code"] == "AccessDeniedException"
            assert "explicit deny" in ei.value.response["Error"]["Message"]


def test_a_remote_agent_joins_over_https(https, launch, tmp_path):
    p, data, creds = https
    token = subprocess.run(
        [str(launch.binary), "join-token", "--data-dir", str(data)], env=_server_env(),
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.strip()
    ecs = client(creds, verify=creds["caFile"])
    ecs.create_cluster(clusterName="edge")
    agent = subprocess.Popen(
        [str(launch.binary), "agent", "--runtime", "simulated", "--server", creds["endpoint"],
         "--ca-file", creds["caFile"], "--cluster", "edge", "--join-token", token,
         "--data-dir", str(tmp_path / "agent")],
        env=_server_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if ecs.list_container_instances(cluster="edge")["containerInstanceArns"]:
                break
            assert agent.poll() is None, agent.stderr.read().decode()
            time.sleep(0.2)
        else:
            pytest.fail("the agent did not register over HTTPS")
    finally:
        agent.terminate()
        agent.wait(timeout=15)
