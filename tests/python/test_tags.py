"""TagResource, UntagResource, ListTagsForResource on clusters and task definitions."""

import pytest
from botocore.exceptions import ClientError


def error_of(excinfo):
    return excinfo.value.response["Error"]["Code"], excinfo.value.response["Error"]["Message"]


def tags_of(ecs, arn):
    return {t["key"]: t["value"] for t in ecs.list_tags_for_resource(resourceArn=arn)["tags"]}


def test_cluster_tags_round_trip(ecs, unique):
    arn = ecs.create_cluster(clusterName=unique("tg"), tags=[{"key": "a", "value": "1"}])["cluster"]["clusterArn"]
    assert tags_of(ecs, arn) == {"a": "1"}

    resp = ecs.tag_resource(resourceArn=arn, tags=[{"key": "b", "value": "2"}, {"key": "a", "value": "one"}])
    assert set(resp) == {"ResponseMetadata"}
    assert tags_of(ecs, arn) == {"a": "one", "b": "2"}

    ecs.untag_resource(resourceArn=arn, tagKeys=["a", "not-there"])
    assert tags_of(ecs, arn) == {"b": "2"}

    # DescribeClusters shows the same tags.
    c = ecs.describe_clusters(clusters=[arn], include=["TAGS"])["clusters"][0]
    assert c["tags"] == [{"key": "b", "value": "2"}]


def test_task_definition_tags_round_trip(ecs, unique):
    family = unique("tg")
    td = ecs.register_task_definition(
        family=family,
        containerDefinitions=[{"name": "a", "image": "x", "memory": 32}],
        tags=[{"key": "owner", "value": "me"}],
    )
    arn = td["taskDefinition"]["taskDefinitionArn"]
    assert tags_of(ecs, arn) == {"owner": "me"}
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "tier", "value": "gold"}])
    assert tags_of(ecs, arn) == {"owner": "me", "tier": "gold"}
    ecs.untag_resource(resourceArn=arn, tagKeys=["owner"])
    assert tags_of(ecs, arn) == {"tier": "gold"}
    d = ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
    assert d["tags"] == [{"key": "tier", "value": "gold"}]


def test_tag_missing_cluster(ecs, gantry, unique):
    arn = gantry.cluster_arn(unique("missing"))
    for call in (
        lambda: ecs.tag_resource(resourceArn=arn, tags=[{"key": "a", "value": "b"}]),
        lambda: ecs.untag_resource(resourceArn=arn, tagKeys=["a"]),
        lambda: ecs.list_tags_for_resource(resourceArn=arn),
    ):
        with pytest.raises(ClientError) as ei:
            call()
        assert error_of(ei)[0] == "ClusterNotFoundException"


def test_tag_missing_task_definition(ecs, gantry, unique):
    arn = gantry.task_definition_arn(unique("missing"), 1)
    with pytest.raises(ClientError) as ei:
        ecs.list_tags_for_resource(resourceArn=arn)
    assert error_of(ei)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as ei:
        ecs.tag_resource(resourceArn=arn, tags=[{"key": "a", "value": "b"}])
    assert error_of(ei)[0] == "ResourceNotFoundException"


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:ecs:eu-west-1:000000000000:cluster/x",  # another region
        "arn:aws:ecs:us-east-1:111111111111:cluster/x",  # another account
        "arn:aws:ecs:us-east-1:000000000000:capacity-provider/x",  # not taggable here
        "not-an-arn",
    ],
)
def test_tag_bad_arn_is_invalid_parameter(ecs, arn):
    with pytest.raises(ClientError) as ei:
        ecs.list_tags_for_resource(resourceArn=arn)
    code, msg = error_of(ei)
    assert code == "InvalidParameterException"
    assert "resourceArn" in msg


def test_tag_validation(ecs, unique):
    arn = ecs.create_cluster(clusterName=unique("tg"))["cluster"]["clusterArn"]
    with pytest.raises(ClientError) as ei:
        ecs.tag_resource(resourceArn=arn, tags=[{"key": "aws:reserved", "value": "x"}])
    code, msg = error_of(ei)
    assert code == "InvalidParameterException" and "aws:" in msg
    with pytest.raises(ClientError) as ei:
        ecs.tag_resource(resourceArn=arn, tags=[{"key": "k" * 129, "value": "x"}])
    assert error_of(ei)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as ei:
        ecs.tag_resource(resourceArn=arn, tags=[{"key": f"k{i}", "value": "v"} for i in range(51)])
    assert error_of(ei)[0] == "InvalidParameterException"
    # The refused calls changed nothing.
    assert tags_of(ecs, arn) == {}


def test_tasks_services_and_instances_take_tags_too(ecs, unique):
    cluster = unique("tagc")
    ecs.create_cluster(clusterName=cluster)
    ci = ecs.register_container_instance(
        cluster=cluster,
        totalResources=[{"name": "CPU", "type": "INTEGER", "integerValue": 1024},
                        {"name": "MEMORY", "type": "INTEGER", "integerValue": 1024}],
    )["containerInstance"]["containerInstanceArn"]
    ecs.tag_resource(resourceArn=ci, tags=[{"key": "rack", "value": "r1"}])
    assert ecs.list_tags_for_resource(resourceArn=ci)["tags"] == [{"key": "rack", "value": "r1"}]
    family = unique("tagf")
    ecs.register_task_definition(family=family, containerDefinitions=[{"name": "c", "image": "x", "memory": 16}])
    svc = ecs.create_service(cluster=cluster, serviceName=unique("tags"), taskDefinition=family, desiredCount=0)["service"]
    ecs.tag_resource(resourceArn=svc["serviceArn"], tags=[{"key": "team", "value": "web"}])
    assert ecs.list_tags_for_resource(resourceArn=svc["serviceArn"])["tags"] == [{"key": "team", "value": "web"}]
    ecs.untag_resource(resourceArn=svc["serviceArn"], tagKeys=["team"])
    assert ecs.list_tags_for_resource(resourceArn=svc["serviceArn"])["tags"] == []
