"""Task definitions through boto3: RegisterTaskDefinition, DescribeTaskDefinition,
ListTaskDefinitions, ListTaskDefinitionFamilies, DeregisterTaskDefinition, DeleteTaskDefinitions,
and the validation RegisterTaskDefinition applies."""

import datetime

import pytest
from botocore.exceptions import ClientError

WEB_CONTAINER = {"name": "web", "image": "nginx", "memory": 100, "cpu": 99}


def webserver(family):
    """The README's web server task definition."""
    return dict(
        family=family,
        containerDefinitions=[dict(WEB_CONTAINER)],
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        memory="512",
        cpu="256",
    )


def simple(family, **extra):
    return dict(family=family, containerDefinitions=[{"name": "app", "image": "busybox", "memory": 32}], **extra)


def error_of(excinfo):
    return excinfo.value.response["Error"]["Code"], excinfo.value.response["Error"]["Message"]


def test_register_webserver(ecs, gantry, unique):
    family = unique("web")
    before = datetime.datetime.now(datetime.timezone.utc)
    resp = ecs.register_task_definition(**webserver(family), tags=[{"key": "app", "value": "web"}])
    td = resp["taskDefinition"]
    assert td["family"] == family
    assert td["revision"] == 1
    assert td["taskDefinitionArn"] == gantry.task_definition_arn(family, 1)
    assert td["taskDefinitionArn"] == f"arn:aws:ecs:us-east-1:000000000000:task-definition/{family}:1"
    assert td["status"] == "ACTIVE"
    assert td["networkMode"] == "awsvpc"
    assert td["cpu"] == "256"
    assert td["memory"] == "512"
    assert td["requiresCompatibilities"] == ["FARGATE"]
    assert td["compatibilities"] == ["EC2", "FARGATE"]
    assert td["registeredBy"] == "arn:aws:iam::000000000000:root"
    registered = td["registeredAt"]
    assert isinstance(registered, datetime.datetime)
    assert abs((registered - before).total_seconds()) < 60
    (c,) = td["containerDefinitions"]
    assert c["name"] == "web"
    assert c["image"] == "nginx"
    assert c["memory"] == 100
    assert c["cpu"] == 99
    assert c["essential"] is True
    assert c["portMappings"] == []
    assert c["environment"] == []
    assert c["mountPoints"] == []
    assert c["volumesFrom"] == []
    assert td["volumes"] == []
    assert td["placementConstraints"] == []
    assert resp["tags"] == [{"key": "app", "value": "web"}]


def test_task_sizes_are_normalised(ecs, unique):
    td = ecs.register_task_definition(
        **{**webserver(unique("web")), "cpu": "0.25 vCPU", "memory": "0.5GB"}
    )["taskDefinition"]
    assert (td["cpu"], td["memory"]) == ("256", "512")


def test_revisions_count_up_and_describe_resolves(ecs, gantry, unique):
    family = unique("rev")
    arns = [
        ecs.register_task_definition(**simple(family, tags=[{"key": "n", "value": str(i)}]))["taskDefinition"]["taskDefinitionArn"]
        for i in range(1, 4)
    ]
    assert arns == [gantry.task_definition_arn(family, i) for i in (1, 2, 3)]

    latest = ecs.describe_task_definition(taskDefinition=family)
    assert latest["taskDefinition"]["revision"] == 3
    assert "tags" not in latest or latest["tags"] in (None, [])

    by_rev = ecs.describe_task_definition(taskDefinition=f"{family}:2", include=["TAGS"])
    assert by_rev["taskDefinition"]["revision"] == 2
    assert by_rev["tags"] == [{"key": "n", "value": "2"}]

    by_arn = ecs.describe_task_definition(taskDefinition=arns[0], include=["TAGS"])
    assert by_arn["taskDefinition"]["taskDefinitionArn"] == arns[0]
    assert by_arn["taskDefinition"]["containerDefinitions"][0]["image"] == "busybox"
    assert by_arn["tags"] == [{"key": "n", "value": "1"}]


@pytest.mark.parametrize("ident", ["nosuchfamily-xyz", "nosuchfamily-xyz:1", "arn:aws:ecs:us-east-1:000000000000:task-definition/nosuchfamily-xyz:7"])
def test_describe_missing_task_definition_is_client_exception(ecs, ident):
    with pytest.raises(ClientError) as ei:
        ecs.describe_task_definition(taskDefinition=ident)
    assert error_of(ei)[0] == "ClientException"
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_describe_bad_revision_is_client_exception(ecs, unique):
    family = unique("bad")
    ecs.register_task_definition(**simple(family))
    for ident in (f"{family}:zero", f"{family}:0"):
        with pytest.raises(ClientError) as ei:
            ecs.describe_task_definition(taskDefinition=ident)
        assert error_of(ei)[0] == "ClientException"


def test_deregister_and_delete_lifecycle(ecs, gantry, unique):
    family = unique("life")
    for _ in range(3):
        ecs.register_task_definition(**simple(family))

    # Deregistration needs a revision.
    with pytest.raises(ClientError) as ei:
        ecs.deregister_task_definition(taskDefinition=family)
    code, msg = error_of(ei)
    assert code == "ClientException"
    assert "revision" in msg

    td = ecs.deregister_task_definition(taskDefinition=f"{family}:3")["taskDefinition"]
    assert td["status"] == "INACTIVE"
    assert td["revision"] == 3
    assert isinstance(td["deregisteredAt"], datetime.datetime)
    # Deregistering again is harmless and answers the same revision.
    again = ecs.deregister_task_definition(taskDefinition=gantry.task_definition_arn(family, 3))
    assert again["taskDefinition"]["status"] == "INACTIVE"

    # Without a revision, describe resolves to the latest ACTIVE revision; an INACTIVE
    # revision stays describable by number.
    assert ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]["revision"] == 2
    assert ecs.describe_task_definition(taskDefinition=f"{family}:3")["taskDefinition"]["status"] == "INACTIVE"

    active = ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"]
    assert active == [gantry.task_definition_arn(family, r) for r in (1, 2)]
    inactive = ecs.list_task_definitions(familyPrefix=family, status="INACTIVE")["taskDefinitionArns"]
    assert inactive == [gantry.task_definition_arn(family, 3)]

    # Only INACTIVE revisions can be deleted; an ACTIVE one is a failure entry.
    resp = ecs.delete_task_definitions(taskDefinitions=[f"{family}:3", f"{family}:1"])
    assert [t["taskDefinitionArn"] for t in resp["taskDefinitions"]] == [gantry.task_definition_arn(family, 3)]
    assert resp["taskDefinitions"][0]["status"] == "DELETE_IN_PROGRESS"
    assert isinstance(resp["taskDefinitions"][0]["deleteRequestedAt"], datetime.datetime)
    assert len(resp["failures"]) == 1
    f = resp["failures"][0]
    assert f["arn"] == gantry.task_definition_arn(family, 1)
    assert "ACTIVE" in f["reason"]

    # A missing revision is a failure too.
    resp = ecs.delete_task_definitions(taskDefinitions=[f"{family}:99"])
    assert resp["taskDefinitions"] == []
    assert resp["failures"][0]["arn"] == gantry.task_definition_arn(family, 99)

    deleting = ecs.list_task_definitions(familyPrefix=family, status="DELETE_IN_PROGRESS")["taskDefinitionArns"]
    assert deleting == [gantry.task_definition_arn(family, 3)]
    assert ecs.list_task_definitions(familyPrefix=family, status="INACTIVE")["taskDefinitionArns"] == []
    d = ecs.describe_task_definition(taskDefinition=f"{family}:3")["taskDefinition"]
    assert d["status"] == "DELETE_IN_PROGRESS"

    # Revisions are never reused, even after a delete.
    nxt = ecs.register_task_definition(**simple(family))["taskDefinition"]
    assert nxt["revision"] == 4


def test_revision_not_reused_after_deleting_every_revision(ecs, unique):
    family = unique("gone")
    ecs.register_task_definition(**simple(family))
    ecs.register_task_definition(**simple(family))
    for r in (1, 2):
        ecs.deregister_task_definition(taskDefinition=f"{family}:{r}")
    # No ACTIVE revision left: the family alone names nothing.
    with pytest.raises(ClientError) as ei:
        ecs.describe_task_definition(taskDefinition=family)
    assert error_of(ei)[0] == "ClientException"
    resp = ecs.delete_task_definitions(taskDefinitions=[f"{family}:1", f"{family}:2"])
    assert resp["failures"] == []
    assert sorted(t["revision"] for t in resp["taskDefinitions"]) == [1, 2]
    assert ecs.register_task_definition(**simple(family))["taskDefinition"]["revision"] == 3


def test_delete_task_definitions_needs_revisions(ecs, unique):
    family = unique("norev")
    ecs.register_task_definition(**simple(family))
    with pytest.raises(ClientError) as ei:
        ecs.delete_task_definitions(taskDefinitions=[family])
    assert error_of(ei)[0] == "ClientException"


def test_delete_task_definitions_count_limits(ecs, unique):
    family = unique("many")
    with pytest.raises(ClientError) as ei:
        ecs.delete_task_definitions(taskDefinitions=[f"{family}:{i}" for i in range(1, 12)])
    code, msg = error_of(ei)
    assert code == "InvalidParameterException"
    assert "taskDefinitions" in msg


def test_list_task_definitions_filters_and_sort(ecs, gantry, unique):
    fam_a = unique("lst")
    fam_b = fam_a + "-more"  # shares fam_a as a prefix: familyPrefix must match whole names
    for _ in range(3):
        ecs.register_task_definition(**simple(fam_a))
    ecs.register_task_definition(**simple(fam_b))

    asc = ecs.list_task_definitions(familyPrefix=fam_a)["taskDefinitionArns"]
    assert asc == [gantry.task_definition_arn(fam_a, r) for r in (1, 2, 3)]
    desc = ecs.list_task_definitions(familyPrefix=fam_a, sort="DESC")["taskDefinitionArns"]
    assert desc == list(reversed(asc))
    explicit = ecs.list_task_definitions(familyPrefix=fam_a, status="ACTIVE", sort="ASC")["taskDefinitionArns"]
    assert explicit == asc
    assert ecs.list_task_definitions(familyPrefix=fam_b)["taskDefinitionArns"] == [gantry.task_definition_arn(fam_b, 1)]

    everything = ecs.list_task_definitions(maxResults=100)
    arns = everything["taskDefinitionArns"]
    assert len(arns) == len(set(arns))


def test_list_task_definition_families(ecs, unique):
    base = unique("famx")
    names = [f"{base}-a", f"{base}-b", f"{base}-c"]
    for n in names:
        ecs.register_task_definition(**simple(n))
    ecs.deregister_task_definition(taskDefinition=f"{base}-c:1")

    got = ecs.list_task_definition_families(familyPrefix=base)["families"]
    assert got == names  # status defaults to ALL
    assert ecs.list_task_definition_families(familyPrefix=base, status="ALL")["families"] == names
    assert ecs.list_task_definition_families(familyPrefix=base, status="ACTIVE")["families"] == names[:2]
    assert ecs.list_task_definition_families(familyPrefix=base, status="INACTIVE")["families"] == names[2:]
    assert ecs.list_task_definition_families(familyPrefix=f"{base}-b")["families"] == [f"{base}-b"]
    assert ecs.list_task_definition_families(familyPrefix=unique("none"))["families"] == []


def test_list_task_definitions_bad_parameters(ecs):
    with pytest.raises(ClientError) as ei:
        ecs.list_task_definitions(maxResults=101)
    assert error_of(ei)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as ei:
        ecs.list_task_definitions(status="BOGUS")
    code, msg = error_of(ei)
    assert code == "InvalidParameterException"
    assert "status" in msg


# ---------------------------------------------------------------------------------------------
# Validation: each violation answers the right error type and names the field.


def _c(**kw):
    c = {"name": "a", "image": "x", "memory": 64}
    c.update(kw)
    return c


VALIDATION_CASES = [
    # (id, request, error type, text the message must contain)
    ("bad-family", dict(family="bad name", containerDefinitions=[_c()]), "ClientException", "family"),
    ("no-containers", dict(family="F", containerDefinitions=[]), "ClientException", "containerDefinitions"),
    ("eleven-containers", dict(family="F", containerDefinitions=[_c(name=f"c{i}") for i in range(11)]),
     "ClientException", "containerDefinitions"),
    ("duplicate-names", dict(family="F", containerDefinitions=[_c(), _c()]), "ClientException", "name"),
    ("no-memory", dict(family="F", containerDefinitions=[{"name": "a", "image": "x"}]), "ClientException", "memory"),
    ("tiny-memory", dict(family="F", containerDefinitions=[_c(memory=4)]), "ClientException", "memory"),
    ("reservation-over-memory", dict(family="F", containerDefinitions=[_c(memory=10, memoryReservation=20)]),
     "ClientException", "memoryReservation"),
    ("no-image", dict(family="F", containerDefinitions=[{"name": "a", "memory": 64}]), "ClientException", "image"),
    ("container-over-task-memory", dict(family="F", memory="512", containerDefinitions=[_c(memory=1024)]),
     "ClientException", "memory"),
    ("unknown-network-mode", dict(family="F", networkMode="bogus", containerDefinitions=[_c()]),
     "InvalidParameterException", "networkMode"),
    ("fargate-needs-awsvpc", dict(family="F", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
                                  containerDefinitions=[{"name": "a", "image": "x"}]), "ClientException", "networkMode"),
    ("fargate-needs-cpu", dict(family="F", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", memory="512",
                               containerDefinitions=[{"name": "a", "image": "x"}]), "ClientException", "cpu"),
    ("fargate-size", dict(family="F", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256",
                          memory="4096", containerDefinitions=[{"name": "a", "image": "x"}]), "ClientException", "cpu"),
    ("bad-task-cpu", dict(family="F", cpu="lots", containerDefinitions=[_c()]), "ClientException", "cpu"),
    ("awsvpc-host-port", dict(family="F", networkMode="awsvpc",
                              containerDefinitions=[_c(portMappings=[{"containerPort": 80, "hostPort": 81}])]),
     "ClientException", "hostPort"),
    ("duplicate-host-port", dict(family="F", containerDefinitions=[_c(portMappings=[
        {"containerPort": 80, "hostPort": 8080}, {"containerPort": 81, "hostPort": 8080}])]), "ClientException", "hostPort"),
    ("none-mode-ports", dict(family="F", networkMode="none", containerDefinitions=[_c(portMappings=[{"containerPort": 80}])]),
     "ClientException", "portMappings"),
    ("depends-on-unknown", dict(family="F", containerDefinitions=[_c(dependsOn=[{"containerName": "b", "condition": "START"}])]),
     "ClientException", "dependsOn"),
    ("depends-on-cycle", dict(family="F", containerDefinitions=[
        _c(name="a", dependsOn=[{"containerName": "b", "condition": "START"}]),
        _c(name="b", dependsOn=[{"containerName": "a", "condition": "START"}])]), "ClientException", "dependsOn"),
    ("no-essential", dict(family="F", containerDefinitions=[_c(essential=False)]), "ClientException", "essential"),
    ("unknown-volume", dict(family="F", containerDefinitions=[_c(mountPoints=[{"sourceVolume": "v", "containerPath": "/d"}])]),
     "ClientException", "sourceVolume"),
    ("health-interval", dict(family="F", containerDefinitions=[_c(healthCheck={"command": ["CMD", "true"], "interval": 1})]),
     "ClientException", "interval"),
    ("reserved-tag", dict(family="F", tags=[{"key": "aws:x", "value": "1"}], containerDefinitions=[_c()]),
     "InvalidParameterException", "aws:"),
]


@pytest.mark.parametrize("request_, code, field", [c[1:] for c in VALIDATION_CASES], ids=[c[0] for c in VALIDATION_CASES])
def test_register_validation(ecs, unique, request_, code, field):
    req = dict(request_)
    req["family"] = req["family"] if req["family"] != "F" else unique("val")
    with pytest.raises(ClientError) as ei:
        ecs.register_task_definition(**req)
    got_code, msg = error_of(ei)
    assert (got_code, field in msg) == (code, True), f"{got_code}: {msg}"
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    if req["family"] != "bad name":
        # Nothing was registered.
        assert ecs.list_task_definitions(familyPrefix=req["family"], status="ACTIVE")["taskDefinitionArns"] == []


def test_distinct_instance_constraint_is_refused_naming_it(ecs, unique):
    with pytest.raises(ClientError) as ei:
        ecs.register_task_definition(
            family=unique("dist"),
            containerDefinitions=[_c()],
            placementConstraints=[{"type": "distinctInstance"}],
        )
    code, msg = error_of(ei)
    # ECS answers "ClientException: ... constraint.type 'distinctInstance' is not supported."
    # (see aws/aws-cdk#25905): a task-definition rule, although the model's
    # TaskDefinitionPlacementConstraintType enum lists only memberOf.
    assert code == "ClientException", f"{code}: {msg}"
    assert "distinctInstance" in msg


def test_member_of_constraint_is_accepted(ecs, unique):
    td = ecs.register_task_definition(
        family=unique("memb"),
        containerDefinitions=[_c()],
        placementConstraints=[{"type": "memberOf", "expression": "attribute:ecs.instance-type =~ t3.*"}],
    )["taskDefinition"]
    assert td["placementConstraints"] == [{"type": "memberOf", "expression": "attribute:ecs.instance-type =~ t3.*"}]


def test_rich_container_definition_round_trips(ecs, unique):
    family = unique("rich")
    td = ecs.register_task_definition(
        family=family,
        networkMode="bridge",
        volumes=[{"name": "data", "host": {"sourcePath": "/srv/data"}}],
        containerDefinitions=[
            {
                "name": "app",
                "image": "busybox:1.36",
                "memoryReservation": 64,
                "command": ["sh", "-c", "sleep 1"],
                "environment": [{"name": "MODE", "value": "test"}],
                "portMappings": [{"containerPort": 8080, "hostPort": 0}],
                "mountPoints": [{"sourceVolume": "data", "containerPath": "/data", "readOnly": True}],
                "healthCheck": {"command": ["CMD-SHELL", "true"]},
                "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}],
            },
            {"name": "init", "image": "busybox", "memory": 16, "essential": False},
        ],
    )["taskDefinition"]
    app, init = td["containerDefinitions"]
    assert app["memoryReservation"] == 64
    assert "memory" not in app
    assert app["command"] == ["sh", "-c", "sleep 1"]
    assert app["environment"] == [{"name": "MODE", "value": "test"}]
    assert app["portMappings"] == [{"containerPort": 8080, "hostPort": 0, "protocol": "tcp"}]
    assert app["mountPoints"] == [{"sourceVolume": "data", "containerPath": "/data", "readOnly": True}]
    assert app["healthCheck"]["command"] == ["CMD-SHELL", "true"]
    assert (app["healthCheck"]["interval"], app["healthCheck"]["timeout"], app["healthCheck"]["retries"]) == (30, 5, 3)
    assert app["dependsOn"] == [{"containerName": "init", "condition": "SUCCESS"}]
    assert app["essential"] is True and app["cpu"] == 0
    assert init["essential"] is False
    assert td["volumes"] == [{"name": "data", "host": {"sourcePath": "/srv/data"}}]
    assert td["networkMode"] == "bridge"
    assert td["compatibilities"] == ["EC2", "EXTERNAL"]
    d = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
    assert d["containerDefinitions"] == td["containerDefinitions"]


def test_awsvpc_fills_host_port(ecs, unique):
    td = ecs.register_task_definition(
        family=unique("vpc"),
        networkMode="awsvpc",
        containerDefinitions=[_c(portMappings=[{"containerPort": 443, "protocol": "tcp"}])],
    )["taskDefinition"]
    assert td["containerDefinitions"][0]["portMappings"] == [{"containerPort": 443, "hostPort": 443, "protocol": "tcp"}]
