"""Access control through real clients: IAM users, groups, roles and policies enforced on ECS,
STS sessions, and SimulatePrincipalPolicy agreeing with the live answer on every row.

Each row of the matrix makes a fresh user with its own key, gives it policies with boto3's iam
client, then calls ECS (or STS) as that user and asks the simulator the same question.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

ACCOUNT = "000000000000"


def doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action, resource="*", **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action, resource="*", **extra) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


TRUST_ECS_TASKS = doc({"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"})


@pytest.fixture(scope="module")
def iam(gantry):
    return gantry.client("iam")


@dataclass
class Person:
    name: str
    arn: str
    key_id: str
    secret: str
    clients: Callable[..., Any]

    def ecs(self):
        return self.clients("ecs")

    def client(self, service: str, **kw):
        return self.clients(service, **kw)


@pytest.fixture
def person(gantry, iam, unique):
    """``person(policies=[doc, ...], groups=[name, ...])`` -> a new user with one access key."""

    def make(policies=(), groups=(), managed=()) -> Person:
        name = unique("u")
        user = iam.create_user(UserName=name)["User"]
        for i, d in enumerate(policies):
            iam.put_user_policy(UserName=name, PolicyName=f"p{i}", PolicyDocument=d)
        for arn in managed:
            iam.attach_user_policy(UserName=name, PolicyArn=arn)
        for g in groups:
            iam.add_user_to_group(GroupName=g, UserName=name)
        key = iam.create_access_key(UserName=name)["AccessKey"]

        def clients(service, **kw):
            return gantry.client(
                service,
                aws_access_key_id=key["AccessKeyId"],
                aws_secret_access_key=key["SecretAccessKey"],
                **kw,
            )

        return Person(name, user["Arn"], key["AccessKeyId"], key["SecretAccessKey"], clients)

    return make


def denied(call: Callable[[], Any], code="AccessDeniedException") -> str:
    with pytest.raises(ClientError) as ei:
        call()
    err = ei.value.response["Error"]
    assert err["Code"] == code, err
    return err["Message"]


def simulate(iam, arn: str, action: str, resource: str = "*", context: Optional[dict] = None) -> str:
    entries = [
        {"ContextKeyName": k, "ContextKeyValues": v if isinstance(v, list) else [v], "ContextKeyType": "string"}
        for k, v in (context or {}).items()
    ]
    r = iam.simulate_principal_policy(
        PolicySourceArn=arn, ActionNames=[action], ResourceArns=[resource], ContextEntries=entries
    )
    (res,) = r["EvaluationResults"]
    assert (res["EvalActionName"], res["EvalResourceName"]) == (action, resource)
    return res["EvalDecision"]


def agree(iam, who: Person, action, resource, live: Callable[[], Any], context=None, expect="allowed"):
    """The live call and the simulator give the same answer, and it is `expect`."""
    decision = simulate(iam, who.arn, action, resource, context)
    assert decision == expect, (action, resource, decision)
    if expect == "allowed":
        try:
            live()
        except ClientError as e:
            # Allowed calls may still fail for other reasons (RunTask on a cluster without
            # instances); they must not be refused.
            assert e.response["Error"]["Code"] not in ("AccessDeniedException", "AccessDenied"), e
    else:
        msg = denied(live)
        assert f"User: {who.arn} is not authorized to perform: {action} on resource: {resource}" in msg, msg
        if expect == "explicitDeny":
            assert msg.endswith("with an explicit deny in an identity-based policy"), msg
        else:
            assert msg.endswith(f"because no identity-based policy allows the {action} action"), msg


@pytest.fixture(scope="module")
def clusters(ecs):
    """Two clusters, `prod-*` tagged team=blue and `dev-*` tagged team=red, and a task definition."""
    import uuid

    suffix = uuid.uuid4().hex[:8]
    prod = ecs.create_cluster(clusterName=f"prod-{suffix}", tags=[{"key": "team", "value": "blue"}])["cluster"]
    dev = ecs.create_cluster(clusterName=f"dev-{suffix}", tags=[{"key": "team", "value": "red"}])["cluster"]
    td = ecs.register_task_definition(
        family=f"iam-{suffix}",
        containerDefinitions=[{"name": "c", "image": "busybox", "memory": 32, "command": ["true"]}],
    )["taskDefinition"]
    return {"prod": prod["clusterArn"], "dev": dev["clusterArn"], "td": td["taskDefinitionArn"]}


# ---- the matrix ---------------------------------------------------------------------------


def test_a_new_user_is_denied_everything(iam, person):
    p = person()
    agree(iam, p, "ecs:ListClusters", "*", lambda: p.ecs().list_clusters(), expect="implicitDeny")


def test_allow_by_wildcard_action(iam, person, clusters):
    p = person(policies=[doc(allow("ecs:List*"))])
    agree(iam, p, "ecs:ListClusters", "*", lambda: p.ecs().list_clusters())
    agree(iam, p, "ecs:DescribeClusters", clusters["prod"],
          lambda: p.ecs().describe_clusters(clusters=[clusters["prod"]]), expect="implicitDeny")


def test_explicit_deny_beats_allow(iam, person, clusters):
    p = person(policies=[doc(allow("ecs:*")), doc(deny("ecs:DeleteCluster"))])
    agree(iam, p, "ecs:DescribeClusters", clusters["dev"],
          lambda: p.ecs().describe_clusters(clusters=[clusters["dev"]]))
    agree(iam, p, "ecs:DeleteCluster", clusters["dev"],
          lambda: p.ecs().delete_cluster(cluster=clusters["dev"]), expect="explicitDeny")


def test_not_action(iam, person, clusters):
    p = person(policies=[doc({"Effect": "Allow", "NotAction": "ecs:Delete*", "Resource": "*"})])
    agree(iam, p, "ecs:ListClusters", "*", lambda: p.ecs().list_clusters())
    agree(iam, p, "ecs:DeleteCluster", clusters["dev"],
          lambda: p.ecs().delete_cluster(cluster=clusters["dev"]), expect="implicitDeny")


def test_resource_scoped_to_one_cluster_by_arn_and_by_ecs_cluster(iam, person, clusters):
    prod, dev, td = clusters["prod"], clusters["dev"], clusters["td"]
    p = person(policies=[doc(
        allow("ecs:DescribeClusters", prod),
        allow("ecs:RunTask", td, Condition={"ArnEquals": {"ecs:cluster": prod}}),
    )])
    agree(iam, p, "ecs:DescribeClusters", prod, lambda: p.ecs().describe_clusters(clusters=[prod]))
    agree(iam, p, "ecs:DescribeClusters", dev, lambda: p.ecs().describe_clusters(clusters=[dev]),
          expect="implicitDeny")
    # RunTask's resource is the task definition; the cluster comes as the ecs:cluster key. The
    # clusters have no instances, so an allowed RunTask answers with a failure, not a denial.
    agree(iam, p, "ecs:RunTask", td, lambda: p.ecs().run_task(cluster=prod, taskDefinition=td),
          context={"ecs:cluster": prod})
    agree(iam, p, "ecs:RunTask", td, lambda: p.ecs().run_task(cluster=dev, taskDefinition=td),
          context={"ecs:cluster": dev}, expect="implicitDeny")
    # Without the key, the simulator says which one it lacked.
    r = iam.simulate_principal_policy(PolicySourceArn=p.arn, ActionNames=["ecs:RunTask"], ResourceArns=[td])
    (res,) = r["EvaluationResults"]
    assert (res["EvalDecision"], res["MissingContextValues"]) == ("implicitDeny", ["ecs:cluster"])


def test_tag_conditions_on_resources_and_requests(iam, person, clusters, unique):
    prod, dev = clusters["prod"], clusters["dev"]
    p = person(policies=[doc(
        allow("ecs:DescribeClusters", Condition={"StringEquals": {"aws:ResourceTag/team": "blue"}}),
        allow("ecs:CreateCluster", Condition={"StringEquals": {"aws:RequestTag/team": "blue"},
                                              "ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}}),
    )])
    agree(iam, p, "ecs:DescribeClusters", prod, lambda: p.ecs().describe_clusters(clusters=[prod]),
          context={"aws:ResourceTag/team": "blue"})
    agree(iam, p, "ecs:DescribeClusters", dev, lambda: p.ecs().describe_clusters(clusters=[dev]),
          context={"aws:ResourceTag/team": "red"}, expect="implicitDeny")
    blue, red = unique("blue"), unique("red")
    blue_arn = f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/{blue}"
    red_arn = f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/{red}"
    agree(iam, p, "ecs:CreateCluster", blue_arn,
          lambda: p.ecs().create_cluster(clusterName=blue, tags=[{"key": "team", "value": "blue"}]),
          context={"aws:RequestTag/team": "blue", "aws:TagKeys": ["team"]})
    agree(iam, p, "ecs:CreateCluster", red_arn,
          lambda: p.ecs().create_cluster(clusterName=red, tags=[{"key": "team", "value": "red"}]),
          context={"aws:RequestTag/team": "red", "aws:TagKeys": ["team"]}, expect="implicitDeny")


def test_group_policy(iam, person, unique):
    group = unique("g")
    iam.create_group(GroupName=group)
    iam.put_group_policy(GroupName=group, PolicyName="list", PolicyDocument=doc(allow("ecs:ListClusters")))
    p = person(groups=[group])
    agree(iam, p, "ecs:ListClusters", "*", lambda: p.ecs().list_clusters())
    iam.remove_user_from_group(GroupName=group, UserName=p.name)
    agree(iam, p, "ecs:ListClusters", "*", lambda: p.ecs().list_clusters(), expect="implicitDeny")
    # A managed policy attached to the group reaches its members too.
    iam.attach_group_policy(GroupName=group, PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    iam.add_user_to_group(GroupName=group, UserName=p.name)
    agree(iam, p, "ecs:ListClusters", "*", lambda: p.ecs().list_clusters())
    agree(iam, p, "ecs:CreateCluster", f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/x",
          lambda: p.ecs().create_cluster(clusterName="x"), expect="implicitDeny")


def test_policy_variable_lets_users_manage_only_their_own_keys(iam, person):
    own = doc(allow(["iam:ListAccessKeys", "iam:CreateAccessKey"], f"arn:aws:iam::{ACCOUNT}:user/${{aws:username}}"))
    p, q = person(policies=[own]), person()
    keys = p.client("iam").list_access_keys()["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in keys] == [p.key_id]
    msg = denied(lambda: p.client("iam").list_access_keys(UserName=q.name), code="AccessDenied")
    assert f"on resource: {q.arn}" in msg


def test_an_inactive_key_is_refused_by_every_protocol(iam, person):
    p = person(policies=[doc(allow("ecs:ListClusters"))])
    p.ecs().list_clusters()
    iam.update_access_key(UserName=p.name, AccessKeyId=p.key_id, Status="Inactive")
    with pytest.raises(ClientError) as ei:
        p.ecs().list_clusters()
    assert ei.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as ei:
        p.client("sts").get_caller_identity()
    assert ei.value.response["Error"]["Code"] == "InvalidClientTokenId"
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    iam.update_access_key(UserName=p.name, AccessKeyId=p.key_id, Status="Active")
    p.ecs().list_clusters()


def make_role(iam, unique, trust: str, *policies: str, **kw) -> dict:
    name = unique("r")
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust, **kw)["Role"]
    for i, d in enumerate(policies):
        iam.put_role_policy(RoleName=name, PolicyName=f"p{i}", PolicyDocument=d)
    return role


def session_client(gantry, creds: dict, service: str, **kw):
    return gantry.client(
        service,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        **kw,
    )


def test_assume_role_is_refused_by_a_trust_policy_and_allowed_by_it(gantry, iam, person, unique):
    alice, bob = person(), person()
    trust = doc({"Effect": "Allow", "Principal": {"AWS": alice.arn}, "Action": "sts:AssumeRole"})
    role = make_role(iam, unique, trust, doc(allow("ecs:ListClusters")))
    msg = denied(lambda: bob.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="s1"), code="AccessDenied")
    assert f"User: {bob.arn} is not authorized to perform: sts:AssumeRole on resource: {role['Arn']}" in msg
    r = alice.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="work", DurationSeconds=900)
    creds = r["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and creds["SessionToken"]
    session_arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/{role['RoleName']}/work"
    assert r["AssumedRoleUser"]["Arn"] == session_arn
    ident = session_client(gantry, creds, "sts").get_caller_identity()
    assert ident["Arn"] == session_arn and ident["UserId"] == f"{role['RoleId']}:work"
    ecs = session_client(gantry, creds, "ecs")
    ecs.list_clusters()
    msg = denied(lambda: ecs.describe_clusters())
    assert f"User: {session_arn} is not authorized to perform: ecs:DescribeClusters" in msg
    # The simulator answers for the role as its sessions are answered.
    assert simulate(iam, role["Arn"], "ecs:ListClusters") == "allowed"
    assert simulate(iam, role["Arn"], "ecs:DescribeClusters") == "implicitDeny"
    # A session assuming another role (role chaining) gets at most an hour.
    trust_role = doc({"Effect": "Allow", "Principal": {"AWS": role["Arn"]}, "Action": "sts:AssumeRole"})
    second = make_role(iam, unique, trust_role, MaxSessionDuration=7200)
    sts = session_client(gantry, creds, "sts")
    with pytest.raises(ClientError) as ei:
        sts.assume_role(RoleArn=second["Arn"], RoleSessionName="chain", DurationSeconds=7200)
    assert ei.value.response["Error"]["Code"] == "ValidationError"
    chained = sts.assume_role(RoleArn=second["Arn"], RoleSessionName="chain")["AssumedRoleUser"]["Arn"]
    assert chained == f"arn:aws:sts::{ACCOUNT}:assumed-role/{second['RoleName']}/chain"
    # A session longer than the role allows is refused.
    with pytest.raises(ClientError) as ei:
        alice.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="long", DurationSeconds=7200)
    assert ei.value.response["Error"]["Code"] == "ValidationError"


def test_a_trust_policy_naming_the_account_leaves_it_to_identity_policies(iam, person, unique):
    trust = doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"})
    role = make_role(iam, unique, trust)
    without = person()
    assert simulate(iam, without.arn, "sts:AssumeRole", role["Arn"]) == "implicitDeny"
    denied(lambda: without.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="s1"), code="AccessDenied")
    with_policy = person(policies=[doc(allow("sts:AssumeRole", role["Arn"]))])
    assert simulate(iam, with_policy.arn, "sts:AssumeRole", role["Arn"]) == "allowed"
    with_policy.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="s1")


def test_an_expired_session_is_refused_by_every_protocol(gantry, iam, person, unique):
    alice = person()
    trust = doc({"Effect": "Allow", "Principal": {"AWS": alice.arn}, "Action": "sts:AssumeRole"})
    role = make_role(iam, unique, trust, doc(allow("ecs:ListClusters")))
    # botocore checks DurationSeconds >= 900 itself; the server under test grants one second.
    sts = alice.client("sts", config=Config(parameter_validation=False, retries={"max_attempts": 1}))
    creds = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="short", DurationSeconds=1)["Credentials"]
    time.sleep(2.1)
    with pytest.raises(ClientError) as ei:
        session_client(gantry, creds, "ecs").list_clusters()
    assert ei.value.response["Error"]["Code"] == "ExpiredTokenException"
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as ei:
        session_client(gantry, creds, "sts").get_caller_identity()
    assert ei.value.response["Error"]["Code"] == "ExpiredToken"
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_a_wrong_or_missing_session_token_is_unrecognized(gantry, iam, person, unique):
    alice = person()
    trust = doc({"Effect": "Allow", "Principal": {"AWS": alice.arn}, "Action": "sts:AssumeRole"})
    role = make_role(iam, unique, trust, doc(allow("ecs:ListClusters")))
    creds = alice.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="s1")["Credentials"]
    for token in ["not-the-token", None]:
        c = dict(creds, SessionToken=token)
        client = gantry.client("ecs", aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                               aws_session_token=token)
        with pytest.raises(ClientError) as ei:
            client.list_clusters()
        assert ei.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_get_session_token_acts_as_the_user(gantry, person):
    p = person(policies=[doc(allow("ecs:ListClusters"))])
    creds = p.client("sts").get_session_token(DurationSeconds=900)["Credentials"]
    assert session_client(gantry, creds, "sts").get_caller_identity()["Arn"] == p.arn
    session_client(gantry, creds, "ecs").list_clusters()
    denied(lambda: session_client(gantry, creds, "ecs").describe_clusters())
    denied(lambda: session_client(gantry, creds, "sts").get_session_token(), code="AccessDenied")


def test_pass_role(gantry, iam, person, unique):
    task_role = make_role(iam, unique, TRUST_ECS_TASKS)
    untrusting = make_role(iam, unique, doc({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}))
    register = doc(allow("ecs:RegisterTaskDefinition"))
    p = person(policies=[register])

    def reg(who: Person, role_arn: str):
        return who.ecs().register_task_definition(
            family=unique("pass"), taskRoleArn=role_arn,
            containerDefinitions=[{"name": "c", "image": "busybox", "memory": 32}],
        )

    agree(iam, p, "iam:PassRole", task_role["Arn"], lambda: reg(p, task_role["Arn"]), expect="implicitDeny")
    q = person(policies=[register, doc(allow("iam:PassRole", task_role["Arn"],
                                            Condition={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}))])
    agree(iam, q, "iam:PassRole", task_role["Arn"], lambda: reg(q, task_role["Arn"]),
          context={"iam:PassedToService": "ecs-tasks.amazonaws.com"})
    # Even the root cannot pass a role that does not trust ECS's tasks, or that does not exist.
    for arn in [untrusting["Arn"], f"arn:aws:iam::{ACCOUNT}:role/no-such-role"]:
        msg = denied(lambda: gantry.client().register_task_definition(
            family=unique("pass"), taskRoleArn=arn,
            containerDefinitions=[{"name": "c", "image": "busybox", "memory": 32}]), code="ClientException")
        assert "ECS was unable to assume the role" in msg


def test_root_is_never_restricted_and_get_caller_identity_needs_no_permission(gantry, person):
    ident = gantry.client("sts").get_caller_identity()
    assert ident["Arn"] == f"arn:aws:iam::{ACCOUNT}:root"
    p = person(policies=[doc(deny("*"))])
    assert p.client("sts").get_caller_identity()["Arn"] == p.arn


# ---- IAM's own API ------------------------------------------------------------------------


def test_iam_errors_come_in_iams_shapes(iam, unique):
    name = unique("e")
    iam.create_user(UserName=name)
    with pytest.raises(iam.exceptions.EntityAlreadyExistsException):
        iam.create_user(UserName=name.upper())
    with pytest.raises(iam.exceptions.NoSuchEntityException) as ei:
        iam.get_user(UserName=unique("nobody"))
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(iam.exceptions.MalformedPolicyDocumentException) as ei:
        iam.put_user_policy(UserName=name, PolicyName="bad",
                            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "RunTask", "Resource": "*"}]}))
    assert "vendor" in ei.value.response["Error"]["Message"]
    with pytest.raises(iam.exceptions.MalformedPolicyDocumentException):
        iam.create_policy(PolicyName=unique("p"), PolicyDocument="{not json")
    iam.create_access_key(UserName=name)
    iam.create_access_key(UserName=name)
    with pytest.raises(iam.exceptions.LimitExceededException):
        iam.create_access_key(UserName=name)
    with pytest.raises(iam.exceptions.DeleteConflictException) as ei:
        iam.delete_user(UserName=name)
    assert "access keys" in ei.value.response["Error"]["Message"]
    for k in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
        iam.delete_access_key(UserName=name, AccessKeyId=k["AccessKeyId"])
    iam.delete_user(UserName=name)
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_user(UserName=name)


def test_managed_policies_with_versions_and_attachments(iam, person, unique):
    name = unique("mp")
    arn = iam.create_policy(PolicyName=name, PolicyDocument=doc(allow("ecs:ListClusters")),
                            Description="list")["Policy"]["Arn"]
    assert arn == f"arn:aws:iam::{ACCOUNT}:policy/{name}"
    p = person(managed=[arn])
    p.ecs().list_clusters()
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 1
    v2 = iam.create_policy_version(PolicyArn=arn, PolicyDocument=doc(allow("ecs:DescribeClusters")), SetAsDefault=True)
    assert v2["PolicyVersion"]["VersionId"] == "v2"
    denied(lambda: p.ecs().list_clusters())
    got = iam.get_policy_version(PolicyArn=arn, VersionId="v2")["PolicyVersion"]
    assert got["IsDefaultVersion"] and got["Document"]["Statement"][0]["Action"] == "ecs:DescribeClusters"
    assert [v["VersionId"] for v in iam.list_policy_versions(PolicyArn=arn)["Versions"]] == ["v2", "v1"]
    with pytest.raises(iam.exceptions.DeleteConflictException):
        iam.delete_policy_version(PolicyArn=arn, VersionId="v2")
    iam.set_default_policy_version(PolicyArn=arn, VersionId="v1")
    p.ecs().list_clusters()
    iam.delete_policy_version(PolicyArn=arn, VersionId="v2")
    attached = iam.list_attached_user_policies(UserName=p.name)["AttachedPolicies"]
    assert attached == [{"PolicyName": name, "PolicyArn": arn}]
    with pytest.raises(iam.exceptions.DeleteConflictException):
        iam.delete_policy(PolicyArn=arn)
    iam.detach_user_policy(UserName=p.name, PolicyArn=arn)
    iam.delete_policy(PolicyArn=arn)
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_policy(PolicyArn=arn)


def test_aws_managed_policies_are_there_read_only(iam, person):
    arns = {p["Arn"] for p in iam.list_policies(Scope="AWS")["Policies"]}
    for name in ["AdministratorAccess", "ReadOnlyAccess", "AmazonECS_FullAccess",
                 "service-role/AmazonECSTaskExecutionRolePolicy", "AmazonEC2ContainerRegistryReadOnly",
                 "CloudWatchLogsFullAccess", "SecretsManagerReadWrite", "AmazonSSMReadOnlyAccess"]:
        assert f"arn:aws:iam::aws:policy/{name}" in arns
    ex = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
    v = iam.get_policy(PolicyArn=ex)["Policy"]["DefaultVersionId"]
    d = iam.get_policy_version(PolicyArn=ex, VersionId=v)["PolicyVersion"]["Document"]
    assert "logs:PutLogEvents" in d["Statement"][0]["Action"]
    with pytest.raises(ClientError) as ei:
        iam.create_policy_version(PolicyArn=ex, PolicyDocument=doc(allow("*")))
    assert ei.value.response["Error"]["Code"] == "UnmodifiableEntity"
    admin = person(managed=["arn:aws:iam::aws:policy/AdministratorAccess"])
    admin.ecs().create_cluster(clusterName="admin-made")
    full = person(managed=["arn:aws:iam::aws:policy/AmazonECS_FullAccess"])
    full.ecs().describe_clusters()


def test_roles_groups_tags_and_pages(iam, unique):
    role = unique("role")
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=TRUST_ECS_TASKS, Description="d",
                    MaxSessionDuration=7200, Tags=[{"Key": "team", "Value": "blue"}])
    got = iam.get_role(RoleName=role)["Role"]
    assert got["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"] == "ecs-tasks.amazonaws.com"
    assert (got["MaxSessionDuration"], got["Tags"]) == (7200, [{"Key": "team", "Value": "blue"}])
    iam.tag_role(RoleName=role, Tags=[{"Key": "env", "Value": "prod"}])
    iam.untag_role(RoleName=role, TagKeys=["team"])
    assert iam.list_role_tags(RoleName=role)["Tags"] == [{"Key": "env", "Value": "prod"}]
    with pytest.raises(iam.exceptions.MalformedPolicyDocumentException):
        iam.update_assume_role_policy(RoleName=role, PolicyDocument=doc(allow("sts:AssumeRole")))
    iam.attach_role_policy(RoleName=role, PolicyArn="arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy")
    with pytest.raises(iam.exceptions.DeleteConflictException):
        iam.delete_role(RoleName=role)
    iam.detach_role_policy(RoleName=role, PolicyArn="arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy")
    iam.delete_role(RoleName=role)

    prefix = unique("pg")
    for i in range(5):
        iam.create_user(UserName=f"{prefix}-{i}", Path="/paged/")
    names, marker = [], None
    while True:
        kw = {"Marker": marker} if marker else {}
        r = iam.list_users(PathPrefix="/paged/", MaxItems=2, **kw)
        names += [u["UserName"] for u in r["Users"]]
        if not r["IsTruncated"]:
            break
        marker = r["Marker"]
    assert [n for n in names if n.startswith(prefix)] == [f"{prefix}-{i}" for i in range(5)]
    group = unique("grp")
    iam.create_group(GroupName=group)
    iam.add_user_to_group(GroupName=group, UserName=f"{prefix}-0")
    assert [u["UserName"] for u in iam.get_group(GroupName=group)["Users"]] == [f"{prefix}-0"]
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName=f"{prefix}-0")["Groups"]] == [group]
    with pytest.raises(iam.exceptions.DeleteConflictException):
        iam.delete_group(GroupName=group)


def test_identities_survive_a_restart(launch, tmp_path):
    data = tmp_path / "data"
    g = launch.gantry(data, launch(data))
    iam = g.client("iam")
    iam.create_user(UserName="durable")
    iam.put_user_policy(UserName="durable", PolicyName="list", PolicyDocument=doc(allow("ecs:ListClusters")))
    key = iam.create_access_key(UserName="durable")["AccessKey"]
    g.process.stop()
    g2 = launch.gantry(data, launch(data))
    ecs = g2.client(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
    ecs.list_clusters()
    denied(lambda: ecs.describe_clusters())
    assert g2.client("iam").get_user(UserName="durable")["User"]["UserName"] == "durable"


def test_run_task_by_family_is_authorized_on_the_revision_it_runs(iam, person, clusters):
    family = clusters["td"].rsplit("/", 1)[1].split(":")[0]
    p = person(policies=[doc(allow("ecs:RunTask", f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/{family}:*"))])
    with pytest.raises(ClientError) as ei:
        p.ecs().run_task(cluster=clusters["prod"], taskDefinition=family)
    # Allowed: it fails only because the cluster has no instances.
    assert ei.value.response["Error"]["Code"] == "InvalidParameterException", ei.value.response


def test_a_role_may_be_passed_by_its_short_name(gantry, iam, unique):
    role = make_role(iam, unique, TRUST_ECS_TASKS)
    gantry.client().register_task_definition(
        family=unique("short"), taskRoleArn=role["RoleName"],
        containerDefinitions=[{"name": "c", "image": "busybox", "memory": 32}],
    )


def test_permissions_boundaries_are_refused_not_ignored(iam, unique):
    with pytest.raises(ClientError) as ei:
        iam.create_user(UserName=unique("b"), PermissionsBoundary="arn:aws:iam::aws:policy/ReadOnlyAccess")
    assert ei.value.response["Error"]["Code"] == "InvalidInput"
    with pytest.raises(ClientError) as ei:
        iam.create_role(RoleName=unique("b"), AssumeRolePolicyDocument=TRUST_ECS_TASKS,
                        PermissionsBoundary="arn:aws:iam::aws:policy/ReadOnlyAccess")
    assert ei.value.response["Error"]["Code"] == "InvalidInput"


def test_register_task_definition_is_authorized_on_the_revision_it_creates(iam, person, unique):
    fam = unique("fam")
    p = person(policies=[doc(allow("ecs:RegisterTaskDefinition", f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/{fam}:*"))])
    defs = [{"name": "c", "image": "busybox", "memory": 32}]
    for revision in (1, 2):
        td = p.ecs().register_task_definition(family=fam, containerDefinitions=defs)["taskDefinition"]
        assert td["revision"] == revision
    other = unique("other")
    msg = denied(lambda: p.ecs().register_task_definition(family=other, containerDefinitions=defs))
    assert f"task-definition/{other}:1" in msg
