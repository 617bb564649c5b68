"""SSM Parameter Store through boto3's ssm client and the AWS CLI: versions, SecureString,
paths, labels and selectors, tags, SSM's errors by type, values sealed at rest across a
restart, and IAM policies on parameter ARNs.
"""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

ACCOUNT = "000000000000"
REGION = "us-east-1"


def arn(name: str) -> str:
    return f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/{name.lstrip('/')}"


def error(call) -> dict:
    with pytest.raises(ClientError) as ei:
        call()
    return ei.value.response["Error"]


def code(call) -> str:
    return error(call)["Code"]


@pytest.fixture(scope="module")
def ssm(gantry):
    return gantry.client("ssm")


@pytest.fixture
def base(unique) -> str:
    """A fresh path of the test's own."""
    return "/" + unique("ps")


def names(params) -> list:
    return [p["Name"] for p in params]


def test_put_get_overwrite_and_versions(ssm, base):
    name = f"{base}/db/host"
    r = ssm.put_parameter(Name=name, Value="db1", Type="String", Description="primary db")
    assert (r["Version"], r["Tier"]) == (1, "Standard")
    assert code(lambda: ssm.put_parameter(Name=name, Value="db2", Type="String")) == "ParameterAlreadyExists"
    # Overwrites add versions; Type may be left out.
    assert ssm.put_parameter(Name=name, Value="db2", Overwrite=True)["Version"] == 2
    assert ssm.put_parameter(Name=name, Value="db3", Type="String", Overwrite=True)["Version"] == 3
    p = ssm.get_parameter(Name=name)["Parameter"]
    assert (p["Name"], p["Value"], p["Version"], p["Type"], p["DataType"]) == (name, "db3", 3, "String", "text")
    assert p["ARN"] == arn(name)
    assert p["LastModifiedDate"].year >= 2024
    assert "Selector" not in p
    old = ssm.get_parameter(Name=f"{name}:1")["Parameter"]
    assert (old["Value"], old["Version"], old["Selector"]) == ("db1", 1, ":1")
    by_arn = ssm.get_parameter(Name=arn(name) + ":2")["Parameter"]
    assert (by_arn["Value"], by_arn["Selector"]) == ("db2", ":2")
    assert code(lambda: ssm.get_parameter(Name=f"{name}:9")) == "ParameterVersionNotFound"
    history = ssm.get_parameter_history(Name=name)["Parameters"]
    assert [(h["Version"], h["Value"], h["Description"]) for h in history] == [
        (1, "db1", "primary db"),
        (2, "db2", "primary db"),
        (3, "db3", "primary db"),
    ]
    assert all(h["LastModifiedUser"].startswith(f"arn:aws:iam::{ACCOUNT}:") for h in history)
    # The StringList type keeps its value as written.
    ssm.put_parameter(Name=f"{base}/list", Value="a,b,c", Type="StringList")
    p = ssm.get_parameter(Name=f"{base}/list")["Parameter"]
    assert (p["Type"], p["Value"]) == ("StringList", "a,b,c")


def test_secure_strings_decrypt_only_when_asked(ssm, base):
    name = f"{base}/password"
    secret = "s3cr3t-" + uuid.uuid4().hex
    ssm.put_parameter(Name=name, Value=secret, Type="SecureString")
    sealed = ssm.get_parameter(Name=name)["Parameter"]
    assert sealed["Type"] == "SecureString"
    assert secret not in sealed["Value"]
    assert sealed["Value"] == ssm.get_parameter(Name=name, WithDecryption=False)["Parameter"]["Value"]
    assert ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"] == secret
    got = ssm.get_parameters(Names=[name], WithDecryption=True)["Parameters"]
    assert [p["Value"] for p in got] == [secret]
    listed = ssm.get_parameters_by_path(Path=base)["Parameters"]
    assert secret not in json.dumps(listed, default=str)
    history = ssm.get_parameter_history(Name=name)["Parameters"]
    assert secret not in json.dumps(history, default=str)
    assert history[0]["KeyId"] == "alias/aws/ssm"
    meta = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])["Parameters"]
    assert [(m["Name"], m["Type"], m["KeyId"], m["Tier"]) for m in meta] == [
        (name, "SecureString", "alias/aws/ssm", "Standard")
    ]
    assert "Value" not in meta[0]


def test_get_parameters_by_path_one_level_and_recursive(ssm, base):
    for n in ["a", "b", "sub/c", "sub/deep/d"]:
        ssm.put_parameter(Name=f"{base}/{n}", Value=n, Type="String")
    ssm.put_parameter(Name=f"{base}x/other", Value="not below", Type="String")
    one = ssm.get_parameters_by_path(Path=base)["Parameters"]
    assert names(one) == [f"{base}/a", f"{base}/b"]
    assert [p["Value"] for p in one] == ["a", "b"]
    assert names(ssm.get_parameters_by_path(Path=f"{base}/sub/")["Parameters"]) == [f"{base}/sub/c"]
    pages = ssm.get_paginator("get_parameters_by_path").paginate(
        Path=base, Recursive=True, PaginationConfig={"PageSize": 1}
    )
    seen, count = [], 0
    for page in pages:
        count += 1
        seen += names(page["Parameters"])
    assert seen == [f"{base}/{n}" for n in ["a", "b", "sub/c", "sub/deep/d"]]
    assert count >= 4
    typed = ssm.get_parameters_by_path(
        Path=base, Recursive=True, ParameterFilters=[{"Key": "Type", "Values": ["SecureString"]}]
    )["Parameters"]
    assert typed == []
    e = error(lambda: ssm.get_parameters_by_path(Path=base, ParameterFilters=[{"Key": "Name", "Values": ["x"]}]))
    assert e["Code"] == "InvalidFilterKey", e
    assert code(lambda: ssm.get_parameters_by_path(Path="no-slash")) == "ValidationException"


def test_labels_move_and_select(ssm, base):
    name = f"{base}/feature"
    for v in ["v1", "v2", "v3"]:
        ssm.put_parameter(Name=name, Value=v, Type="String", Overwrite=True)
    r = ssm.label_parameter_version(Name=name, ParameterVersion=1, Labels=["prod", "1st", "awsy"])
    assert r["ParameterVersion"] == 1
    assert sorted(r["InvalidLabels"]) == ["1st", "awsy"]
    p = ssm.get_parameter(Name=f"{name}:prod")["Parameter"]
    assert (p["Value"], p["Version"], p["Selector"]) == ("v1", 1, ":prod")
    # Labelling the latest version moves the label off version 1.
    assert ssm.label_parameter_version(Name=name, Labels=["prod"])["ParameterVersion"] == 3
    assert ssm.get_parameter(Name=f"{name}:prod")["Parameter"]["Value"] == "v3"
    labels = {h["Version"]: h["Labels"] for h in ssm.get_parameter_history(Name=name)["Parameters"]}
    assert labels == {1: [], 2: [], 3: ["prod"]}
    e = error(lambda: ssm.label_parameter_version(Name=name, ParameterVersion=3, Labels=[f"l{i}" for i in range(10)]))
    assert e["Code"] == "ParameterVersionLabelLimitExceeded", e
    assert code(lambda: ssm.label_parameter_version(Name=name, ParameterVersion=7, Labels=["x"])) == "ParameterVersionNotFound"
    r = ssm.unlabel_parameter_version(Name=name, ParameterVersion=3, Labels=["prod", "never"])
    assert (r["RemovedLabels"], r["InvalidLabels"]) == (["prod"], ["never"])
    assert code(lambda: ssm.get_parameter(Name=f"{name}:prod")) == "ParameterNotFound"


def test_get_parameters_lists_the_missing(ssm, base):
    a, b = f"{base}/a", f"{base}/b"
    ssm.put_parameter(Name=a, Value="1", Type="String")
    ssm.put_parameter(Name=b, Value="2", Type="String")
    ssm.put_parameter(Name=b, Value="3", Type="String", Overwrite=True)
    r = ssm.get_parameters(Names=[a, f"{base}/missing", f"{b}:1", f"{b}:9"])
    assert [(p["Name"], p["Value"]) for p in r["Parameters"]] == [(a, "1"), (b, "2")]
    assert r["Parameters"][1]["Selector"] == ":1"
    assert r["InvalidParameters"] == [f"{base}/missing", f"{b}:9"]


def test_delete_one_and_many(ssm, base):
    names_ = [f"{base}/{n}" for n in "abc"]
    for n in names_:
        ssm.put_parameter(Name=n, Value="v", Type="String")
    ssm.delete_parameter(Name=names_[0])
    assert code(lambda: ssm.get_parameter(Name=names_[0])) == "ParameterNotFound"
    assert code(lambda: ssm.delete_parameter(Name=names_[0])) == "ParameterNotFound"
    r = ssm.delete_parameters(Names=[names_[1], names_[2], f"{base}/none"])
    assert r["DeletedParameters"] == names_[1:]
    assert r["InvalidParameters"] == [f"{base}/none"]
    assert ssm.get_parameters_by_path(Path=base)["Parameters"] == []
    # A deleted name starts again at version 1.
    assert ssm.put_parameter(Name=names_[0], Value="again", Type="String")["Version"] == 1


def test_describe_parameters_filters(ssm, base):
    ssm.put_parameter(Name=f"{base}/a", Value="v", Type="String")
    ssm.put_parameter(Name=f"{base}/b", Value="v", Type="SecureString")
    ssm.put_parameter(Name=f"{base}/c/d", Value="v", Type="StringList", Tags=[{"Key": "team", "Value": "red"}])

    def describe(*filters):
        out = []
        for page in ssm.get_paginator("describe_parameters").paginate(ParameterFilters=list(filters)):
            out += names(page["Parameters"])
        return out

    everything = [f"{base}/a", f"{base}/b", f"{base}/c/d"]
    assert describe({"Key": "Name", "Option": "BeginsWith", "Values": [base + "/"]}) == everything
    assert describe({"Key": "Name", "Values": [f"{base}/a"]}) == [f"{base}/a"]
    assert describe({"Key": "Name", "Option": "BeginsWith", "Values": [base + "/"]},
                    {"Key": "Type", "Values": ["SecureString"]}) == [f"{base}/b"]
    assert describe({"Key": "Path", "Values": [base]}) == [f"{base}/a", f"{base}/b"]
    assert describe({"Key": "Path", "Option": "Recursive", "Values": [base]}) == everything
    assert describe({"Key": "Path", "Option": "Recursive", "Values": [base]},
                    {"Key": "tag:team", "Values": ["red"]}) == [f"{base}/c/d"]
    first = ssm.describe_parameters(
        ParameterFilters=[{"Key": "Path", "Option": "Recursive", "Values": [base]}], MaxResults=2
    )
    assert len(first["Parameters"]) == 2 and "NextToken" in first
    m = first["Parameters"][0]
    assert (m["Name"], m["Type"], m["Version"], m["ARN"], m["DataType"]) == (f"{base}/a", "String", 1, arn(f"{base}/a"), "text")
    assert code(lambda: ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Option": "Like", "Values": ["x"]}])) == "InvalidFilterOption"
    assert code(lambda: ssm.describe_parameters(ParameterFilters=[{"Key": "Label", "Values": ["x"]}])) == "InvalidFilterKey"


def test_tags(ssm, base):
    name = f"{base}/tagged"
    ssm.put_parameter(Name=name, Value="v", Type="String", Tags=[{"Key": "team", "Value": "blue"}])
    listed = lambda: ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"]  # noqa: E731
    assert listed() == [{"Key": "team", "Value": "blue"}]
    ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId=name,
                             Tags=[{"Key": "team", "Value": "red"}, {"Key": "env", "Value": "prod"}])
    assert listed() == [{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "red"}]
    ssm.remove_tags_from_resource(ResourceType="Parameter", ResourceId=name, TagKeys=["team"])
    assert listed() == [{"Key": "env", "Value": "prod"}]
    e = error(lambda: ssm.put_parameter(Name=name, Value="v2", Overwrite=True, Tags=[{"Key": "a", "Value": "b"}]))
    assert e["Code"] == "ValidationException" and "tags and overwrite" in e["Message"], e
    assert code(lambda: ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=f"{base}/none")) == "InvalidResourceId"


def test_errors_come_by_type(ssm, base):
    with pytest.raises(ssm.exceptions.ParameterNotFound):
        ssm.get_parameter(Name=f"{base}/nothing")
    ssm.put_parameter(Name=f"{base}/x", Value="v", Type="String")
    with pytest.raises(ssm.exceptions.ParameterAlreadyExists):
        ssm.put_parameter(Name=f"{base}/x", Value="v", Type="String")
    for bad in ["has space", "a/b", f"{base}//double", "awsthing", "/aws/reserved", "/ssm/reserved", "semi;colon"]:
        e = error(lambda: ssm.put_parameter(Name=bad, Value="v", Type="String"))
        assert e["Code"] == "ValidationException", (bad, e)
    e = error(lambda: ssm.put_parameter(Name="awsthing", Value="v", Type="String"))
    assert 'prefixed with "aws" or "ssm"' in e["Message"]
    deep = base + "".join(f"/l{i}" for i in range(15))
    assert code(lambda: ssm.put_parameter(Name=deep, Value="v", Type="String")) == "HierarchyLevelLimitExceededException"
    assert code(lambda: ssm.put_parameter(Name=f"{base}/big", Value="x" * 4097, Type="String")) == "ValidationException"
    assert code(lambda: ssm.put_parameter(Name=f"{base}/adv", Value="v", Type="String", Tier="Advanced")) == "ValidationException"
    e = error(lambda: ssm.put_parameter(Name=f"{base}/num", Value="not-a-number-7", Type="String", AllowedPattern=r"^\d+$"))
    assert e["Code"] == "ParameterPatternMismatchException", e
    assert "not-a-number-7" not in e["Message"]
    assert ssm.put_parameter(Name=f"{base}/num", Value="42", Type="String", AllowedPattern=r"^\d+$")["Version"] == 1
    assert code(lambda: ssm.get_parameters(Names=[f"p{i}" for i in range(11)])) == "ValidationException"


def test_values_survive_a_restart_and_are_sealed_at_rest(launch, tmp_path):
    data = tmp_path / "data"
    g = launch.gantry(data, launch(data))
    ssm = g.client("ssm")
    secret = "secure-" + uuid.uuid4().hex
    plain = "plain-" + uuid.uuid4().hex
    ssm.put_parameter(Name="/durable/secret", Value=secret, Type="SecureString")
    ssm.put_parameter(Name="/durable/plain", Value=plain, Type="String")
    ssm.put_parameter(Name="/durable/plain", Value=plain + "-2", Type="String", Overwrite=True)
    g.process.stop()
    db = data / "state.db"
    assert db.is_file()
    everything = b""
    for f in data.glob("state.db*"):
        raw = f.read_bytes()
        everything += raw
        for v in (secret, plain):
            assert v.encode() not in raw, f"{v} is in {f.name} in plain text"
    # The records are there (so the file read is the right one), their values sealed.
    assert b"/durable/secret" in everything and b"sealed" in everything
    g2 = launch.gantry(data, launch(data))
    ssm2 = g2.client("ssm")
    assert ssm2.get_parameter(Name="/durable/secret", WithDecryption=True)["Parameter"]["Value"] == secret
    assert ssm2.get_parameter(Name="/durable/plain")["Parameter"]["Value"] == plain + "-2"
    assert ssm2.get_parameter(Name="/durable/plain:1")["Parameter"]["Value"] == plain


# ---- IAM ----


def policy(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@pytest.fixture
def user(gantry, unique):
    """``user(policy_json)`` -> an ssm client signed with a new IAM user's key."""
    iam = gantry.client("iam")

    def make(document: str):
        name = unique("ssmuser")
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="ssm", PolicyDocument=document)
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return gantry.client(
            "ssm", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"]
        ), name

    return make


def test_a_user_reads_only_the_parameter_its_policy_names(ssm, user, base):
    mine, theirs = f"{base}/mine", f"{base}/theirs"
    ssm.put_parameter(Name=mine, Value="for me", Type="String")
    ssm.put_parameter(Name=theirs, Value="not for me", Type="String")
    client, name = user(policy({"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": arn(mine)}))
    assert client.get_parameter(Name=mine)["Parameter"]["Value"] == "for me"
    e = error(lambda: client.get_parameter(Name=theirs))
    assert e["Code"] == "AccessDeniedException", e
    assert f"is not authorized to perform: ssm:GetParameter on resource: {arn(theirs)}" in e["Message"]
    assert "not for me" not in e["Message"]
    # Other actions on the allowed parameter are not allowed either.
    assert code(lambda: client.get_parameters(Names=[mine])) == "AccessDeniedException"
    assert code(lambda: client.put_parameter(Name=mine, Value="x", Overwrite=True)) == "AccessDeniedException"
    assert ssm.get_parameter(Name=mine)["Parameter"]["Version"] == 1


def test_resource_tags_decide_conditions(ssm, user, base):
    blue, red = f"{base}/blue", f"{base}/red"
    ssm.put_parameter(Name=blue, Value="b", Type="String", Tags=[{"Key": "team", "Value": "blue"}])
    ssm.put_parameter(Name=red, Value="r", Type="String", Tags=[{"Key": "team", "Value": "red"}])
    client, _ = user(policy({
        "Effect": "Allow", "Action": "ssm:GetParameter", "Resource": "*",
        "Condition": {"StringEquals": {"aws:ResourceTag/team": "blue"}},
    }))
    assert client.get_parameter(Name=blue)["Parameter"]["Value"] == "b"
    assert code(lambda: client.get_parameter(Name=red)) == "AccessDeniedException"


# ---- the AWS CLI ----


def test_cli_get_parameter(aws_cli, base):
    name = f"{base}/cli"
    put = aws_cli("ssm", "put-parameter", "--name", name, "--value", "from-the-cli", "--type", "SecureString")
    assert put["Version"] == 1
    got = aws_cli("ssm", "get-parameter", "--name", name, "--with-decryption")["Parameter"]
    assert (got["Name"], got["Value"], got["Type"]) == (name, "from-the-cli", "SecureString")
    missing = aws_cli.run("ssm", "get-parameter", "--name", f"{base}/none")
    assert missing.returncode != 0
    assert "ParameterNotFound" in missing.stderr
