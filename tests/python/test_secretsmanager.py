"""Secrets Manager through boto3 and the AWS CLI: secrets with versions and staging labels,
deletion with and without recovery, tags, errors in its shapes, values sealed at rest, and
every call authorized by IAM policies."""

from __future__ import annotations

import base64
import json

import pytest
from botocore.exceptions import ClientError


@pytest.fixture(scope="module")
def sm(gantry):
    return gantry.client("secretsmanager")


def code(e: pytest.ExceptionInfo) -> str:
    return e.value.response["Error"]["Code"]


def test_create_get_and_describe(sm, unique):
    name = unique("db/password")
    r = sm.create_secret(Name=name, SecretString='{"user": "app", "password": "hunter2"}', Description="db",
                         Tags=[{"Key": "team", "Value": "blue"}])
    assert r["Name"] == name and r["ARN"].startswith(f"arn:aws:secretsmanager:us-east-1:000000000000:secret:{name}-")
    assert len(r["ARN"].rsplit("-", 1)[1]) == 6
    got = sm.get_secret_value(SecretId=name)
    assert json.loads(got["SecretString"])["password"] == "hunter2"
    assert got["VersionStages"] == ["AWSCURRENT"] and got["VersionId"] == r["VersionId"]
    # By ARN, and by the ARN without its random suffix.
    assert sm.get_secret_value(SecretId=r["ARN"])["Name"] == name
    assert sm.get_secret_value(SecretId=r["ARN"][:-7])["Name"] == name
    d = sm.describe_secret(SecretId=name)
    assert d["Description"] == "db" and d["Tags"] == [{"Key": "team", "Value": "blue"}]
    assert d["VersionIdsToStages"] == {r["VersionId"]: ["AWSCURRENT"]}
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name=name, SecretString="x")
    assert code(e) == "ResourceExistsException"


def test_versions_and_staging_labels(sm, unique):
    name = unique("rotating")
    v1 = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    v2 = sm.put_secret_value(SecretId=name, SecretString="two")["VersionId"]
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "two"
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"] == "one"
    assert sm.get_secret_value(SecretId=name, VersionId=v1)["SecretString"] == "one"
    v3 = sm.put_secret_value(SecretId=name, SecretString="three", VersionStages=["AWSPENDING"])["VersionId"]
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "two"
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSPENDING")["SecretString"] == "three"
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    assert stages == {v1: ["AWSPREVIOUS"], v2: ["AWSCURRENT"], v3: ["AWSPENDING"]}
    # The same token and value again is accepted; the same token with another value is not.
    token = "a" * 32
    sm.put_secret_value(SecretId=name, SecretString="four", ClientRequestToken=token)
    sm.put_secret_value(SecretId=name, SecretString="four", ClientRequestToken=token)
    with pytest.raises(ClientError) as e:
        sm.put_secret_value(SecretId=name, SecretString="five", ClientRequestToken=token)
    assert code(e) == "ResourceExistsException"
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId=name, VersionStage="nope")
    assert code(e) == "ResourceNotFoundException"
    u = sm.update_secret(SecretId=name, SecretString="six", Description="now described")
    assert sm.get_secret_value(SecretId=name)["VersionId"] == u["VersionId"]
    assert sm.describe_secret(SecretId=name)["Description"] == "now described"


def test_binary_secrets(sm, unique):
    name = unique("bin")
    sm.create_secret(Name=name, SecretBinary=b"\x00\x01binary")
    assert sm.get_secret_value(SecretId=name)["SecretBinary"] == b"\x00\x01binary"
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name=unique("both"), SecretBinary=b"x", SecretString="y")
    assert code(e) == "InvalidParameterException"


def test_delete_with_a_recovery_window_restore_and_force(sm, unique):
    name = unique("gone")
    sm.create_secret(Name=name, SecretString="v")
    with pytest.raises(ClientError) as e:
        sm.delete_secret(SecretId=name, RecoveryWindowInDays=3)
    assert code(e) == "InvalidParameterException"
    r = sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    assert r["DeletionDate"]
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId=name)
    assert code(e) == "InvalidRequestException" and "marked for deletion" in e.value.response["Error"]["Message"]
    assert name not in [s["Name"] for s in sm.list_secrets()["SecretList"]]
    assert name in [s["Name"] for s in sm.list_secrets(IncludePlannedDeletion=True)["SecretList"]]
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name=name, SecretString="again")
    assert code(e) == "InvalidRequestException"
    sm.restore_secret(SecretId=name)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v"
    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    with pytest.raises(ClientError) as e:
        sm.describe_secret(SecretId=name)
    assert code(e) == "ResourceNotFoundException"
    sm.create_secret(Name=name, SecretString="new")


def test_list_filters_pages_and_tags(sm, unique):
    prefix = unique("lst")
    for i in range(3):
        sm.create_secret(Name=f"{prefix}/{i}", SecretString="v", Tags=[{"Key": "n", "Value": str(i)}])
    names = []
    kwargs = {"Filters": [{"Key": "name", "Values": [prefix]}], "MaxResults": 2}
    while True:
        r = sm.list_secrets(**kwargs)
        names += [s["Name"] for s in r["SecretList"]]
        if "NextToken" not in r:
            break
        kwargs["NextToken"] = r["NextToken"]
    assert names == [f"{prefix}/{i}" for i in range(3)]
    one = sm.list_secrets(Filters=[{"Key": "name", "Values": [prefix]}, {"Key": "tag-value", "Values": ["1"]}])
    assert [s["Name"] for s in one["SecretList"]] == [f"{prefix}/1"]
    sm.tag_resource(SecretId=f"{prefix}/0", Tags=[{"Key": "env", "Value": "prod"}])
    sm.untag_resource(SecretId=f"{prefix}/0", TagKeys=["n"])
    assert sm.describe_secret(SecretId=f"{prefix}/0")["Tags"] == [{"Key": "env", "Value": "prod"}]


def test_unknown_secrets_and_bad_names(sm, unique):
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId=unique("missing"))
    assert code(e) == "ResourceNotFoundException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name="bad name!", SecretString="x")
    assert code(e) == "InvalidParameterException"


def test_values_are_sealed_at_rest_and_survive_a_restart(launch, tmp_path):
    data = tmp_path / "data"
    g = launch.gantry(data, launch(data))
    g.client("secretsmanager").create_secret(Name="plain", SecretString="correct-horse-battery-staple")
    g.process.stop()
    for f in data.glob("state.db*"):
        assert b"correct-horse-battery-staple" not in f.read_bytes(), f
    assert (data / "secrets.key").stat().st_mode & 0o077 == 0
    g2 = launch.gantry(data, launch(data))
    assert g2.client("secretsmanager").get_secret_value(SecretId="plain")["SecretString"] == "correct-horse-battery-staple"


def test_access_is_decided_by_iam_policies(gantry, sm, unique):
    allowed, other = unique("app/allowed"), unique("app/other")
    arn = sm.create_secret(Name=allowed, SecretString="yes")["ARN"]
    sm.create_secret(Name=other, SecretString="no")
    iam = gantry.client("iam")
    user = unique("reader")
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="one-secret", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                       "Resource": f"arn:aws:secretsmanager:us-east-1:000000000000:secret:{allowed}-*"}]}))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    mine = gantry.client("secretsmanager", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
    assert mine.get_secret_value(SecretId=allowed)["SecretString"] == "yes"
    assert mine.get_secret_value(SecretId=arn)["SecretString"] == "yes"
    with pytest.raises(ClientError) as e:
        mine.get_secret_value(SecretId=other)
    assert code(e) == "AccessDeniedException"
    assert f"is not authorized to perform: secretsmanager:GetSecretValue on resource: arn:aws:secretsmanager:us-east-1:000000000000:secret:{other}-" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        mine.describe_secret(SecretId=allowed)
    assert code(e) == "AccessDeniedException"


def test_the_aws_cli(aws_cli, unique):
    name = unique("cli")
    assert aws_cli("secretsmanager", "create-secret", "--name", name, "--secret-string", "from-the-cli")["Name"] == name
    r = aws_cli.run("secretsmanager", "get-secret-value", "--secret-id", name, "--query", "SecretString", "--output", "text")
    assert r.stdout.strip() == "from-the-cli", r
