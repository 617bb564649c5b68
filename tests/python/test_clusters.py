"""Clusters through boto3: CreateCluster, DescribeClusters, ListClusters, UpdateCluster,
UpdateClusterSettings, DeleteCluster."""

import pytest
from botocore.exceptions import ClientError

ALL_INCLUDES = ["TAGS", "SETTINGS", "CONFIGURATIONS", "STATISTICS"]
STATISTIC_NAMES = {
    "runningEC2TasksCount",
    "runningFargateTasksCount",
    "pendingEC2TasksCount",
    "pendingFargateTasksCount",
    "activeEC2ServiceCount",
    "activeFargateServiceCount",
    "drainingEC2ServiceCount",
    "drainingFargateServiceCount",
}


def error_of(excinfo):
    return excinfo.value.response["Error"]["Code"], excinfo.value.response["Error"]["Message"]


def settings_dict(cluster):
    return {s["name"]: s["value"] for s in cluster["settings"]}


def all_cluster_arns(ecs):
    arns = []
    for page in ecs.get_paginator("list_clusters").paginate():
        arns.extend(page["clusterArns"])
    return arns


def test_create_cluster_returns_the_cluster(ecs, gantry, unique):
    name = unique("cl")
    resp = ecs.create_cluster(
        clusterName=name,
        tags=[{"key": "team", "value": "infra"}, {"key": "env", "value": "test"}],
        settings=[{"name": "containerInsights", "value": "enabled"}],
        configuration={"executeCommandConfiguration": {"logging": "DEFAULT"}},
    )
    c = resp["cluster"]
    assert c["clusterName"] == name
    assert c["clusterArn"] == gantry.cluster_arn(name)
    assert c["clusterArn"] == f"arn:aws:ecs:us-east-1:000000000000:cluster/{name}"
    assert c["status"] == "ACTIVE"
    assert c["registeredContainerInstancesCount"] == 0
    assert c["runningTasksCount"] == 0
    assert c["pendingTasksCount"] == 0
    assert c["activeServicesCount"] == 0
    assert c["tags"] == [{"key": "team", "value": "infra"}, {"key": "env", "value": "test"}]
    assert settings_dict(c) == {"containerInsights": "enabled"}
    assert c["configuration"] == {"executeCommandConfiguration": {"logging": "DEFAULT"}}
    assert c["capacityProviders"] == []
    assert c["defaultCapacityProviderStrategy"] == []


def test_create_cluster_defaults_container_insights_from_account_setting(ecs, unique):
    c = ecs.create_cluster(clusterName=unique("cl"))["cluster"]
    assert settings_dict(c) == {"containerInsights": "disabled"}
    assert c.get("tags", []) == []


def test_create_existing_cluster_returns_it_unchanged(ecs, unique):
    name = unique("cl")
    first = ecs.create_cluster(clusterName=name, tags=[{"key": "k", "value": "1"}])["cluster"]
    again = ecs.create_cluster(clusterName=name, tags=[{"key": "k", "value": "2"}])["cluster"]
    assert again["clusterArn"] == first["clusterArn"]
    assert again["tags"] == [{"key": "k", "value": "1"}]
    arns = all_cluster_arns(ecs)
    assert arns.count(first["clusterArn"]) == 1


def test_create_cluster_without_name_creates_default(ecs, gantry):
    c = ecs.create_cluster()["cluster"]
    assert c["clusterName"] == "default"
    assert c["clusterArn"] == gantry.cluster_arn("default")
    # DescribeClusters without `clusters` describes `default`.
    d = ecs.describe_clusters()
    assert [x["clusterName"] for x in d["clusters"]] == ["default"]
    assert d["failures"] == []


def test_describe_clusters_include_variants(ecs, unique):
    name = unique("cl")
    ecs.create_cluster(
        clusterName=name,
        tags=[{"key": "a", "value": "b"}],
        configuration={"executeCommandConfiguration": {"logging": "NONE"}},
    )
    plain = ecs.describe_clusters(clusters=[name])
    assert plain["failures"] == []
    (c,) = plain["clusters"]
    assert c["clusterName"] == name and c["status"] == "ACTIVE"
    for absent in ("tags", "settings", "configuration"):
        assert absent not in c, f"{absent} shown without include"
    assert c.get("statistics", []) == []

    full = ecs.describe_clusters(clusters=[name], include=ALL_INCLUDES)
    (c,) = full["clusters"]
    assert c["tags"] == [{"key": "a", "value": "b"}]
    assert settings_dict(c) == {"containerInsights": "disabled"}
    assert c["configuration"] == {"executeCommandConfiguration": {"logging": "NONE"}}
    stats = {kv["name"]: kv["value"] for kv in c["statistics"]}
    assert set(stats) == STATISTIC_NAMES
    assert set(stats.values()) == {"0"}

    only_tags = ecs.describe_clusters(clusters=[name], include=["TAGS"])["clusters"][0]
    assert only_tags["tags"] == [{"key": "a", "value": "b"}]
    assert "settings" not in only_tags


def test_describe_clusters_by_arn_and_missing(ecs, gantry, unique):
    name = unique("cl")
    arn = ecs.create_cluster(clusterName=name)["cluster"]["clusterArn"]
    missing = unique("nope")
    missing_arn = gantry.cluster_arn(unique("nope"))
    resp = ecs.describe_clusters(clusters=[arn, missing, missing_arn])
    assert [c["clusterArn"] for c in resp["clusters"]] == [arn]
    assert resp["failures"] == [
        {"arn": gantry.cluster_arn(missing), "reason": "MISSING"},
        {"arn": missing_arn, "reason": "MISSING"},
    ]


def test_list_clusters_shows_active_clusters(ecs, unique):
    names = [unique("cl") for _ in range(3)]
    arns = [ecs.create_cluster(clusterName=n)["cluster"]["clusterArn"] for n in names]
    first_page = ecs.list_clusters()
    assert len(first_page["clusterArns"]) <= 100  # the default page size
    listed = all_cluster_arns(ecs)
    for a in arns:
        assert listed.count(a) == 1
    assert len(set(listed)) == len(listed)


def test_update_cluster_settings_and_configuration(ecs, unique):
    name = unique("cl")
    ecs.create_cluster(clusterName=name)
    resp = ecs.update_cluster(
        cluster=name,
        settings=[{"name": "containerInsights", "value": "enhanced"}],
        configuration={"executeCommandConfiguration": {"logging": "OVERRIDE",
                                                       "logConfiguration": {"cloudWatchLogGroupName": "lg"}}},
    )
    c = resp["cluster"]
    assert c["clusterName"] == name
    assert settings_dict(c) == {"containerInsights": "enhanced"}
    assert c["configuration"]["executeCommandConfiguration"]["logging"] == "OVERRIDE"
    assert c["configuration"]["executeCommandConfiguration"]["logConfiguration"] == {
        "cloudWatchLogGroupName": "lg"
    }
    d = ecs.describe_clusters(clusters=[name], include=["SETTINGS", "CONFIGURATIONS"])["clusters"][0]
    assert settings_dict(d) == {"containerInsights": "enhanced"}
    assert d["configuration"]["executeCommandConfiguration"]["logging"] == "OVERRIDE"


def test_update_cluster_settings(ecs, gantry, unique):
    name = unique("cl")
    ecs.create_cluster(clusterName=name)
    resp = ecs.update_cluster_settings(
        cluster=gantry.cluster_arn(name),
        settings=[{"name": "containerInsights", "value": "enabled"}],
    )
    c = resp["cluster"]
    assert c["clusterArn"] == gantry.cluster_arn(name)
    assert settings_dict(c) == {"containerInsights": "enabled"}
    d = ecs.describe_clusters(clusters=[name], include=["SETTINGS"])["clusters"][0]
    assert settings_dict(d) == {"containerInsights": "enabled"}


def test_delete_cluster_makes_it_inactive(ecs, gantry, unique):
    name = unique("cl")
    arn = ecs.create_cluster(clusterName=name)["cluster"]["clusterArn"]
    resp = ecs.delete_cluster(cluster=name)
    assert resp["cluster"]["clusterArn"] == arn
    assert resp["cluster"]["status"] == "INACTIVE"

    d = ecs.describe_clusters(clusters=[name])
    assert d["failures"] == []
    assert [(c["clusterArn"], c["status"]) for c in d["clusters"]] == [(arn, "INACTIVE")]
    assert arn not in all_cluster_arns(ecs)

    for call in (
        lambda: ecs.delete_cluster(cluster=name),
        lambda: ecs.update_cluster(cluster=name, settings=[{"name": "containerInsights", "value": "enabled"}]),
        lambda: ecs.update_cluster_settings(cluster=name, settings=[{"name": "containerInsights", "value": "enabled"}]),
    ):
        with pytest.raises(ClientError) as ei:
            call()
        assert error_of(ei)[0] == "ClusterNotFoundException"


def test_recreate_deleted_cluster(ecs, unique):
    name = unique("cl")
    ecs.create_cluster(clusterName=name, tags=[{"key": "gen", "value": "1"}])
    ecs.delete_cluster(cluster=name)
    c = ecs.create_cluster(clusterName=name)["cluster"]
    assert c["status"] == "ACTIVE"
    assert c.get("tags", []) == []
    d = ecs.describe_clusters(clusters=[name])["clusters"][0]
    assert d["status"] == "ACTIVE"
    assert c["clusterArn"] in all_cluster_arns(ecs)


def test_delete_by_arn(ecs, gantry, unique):
    name = unique("cl")
    ecs.create_cluster(clusterName=name)
    c = ecs.delete_cluster(cluster=gantry.cluster_arn(name))["cluster"]
    assert c["status"] == "INACTIVE"


@pytest.mark.parametrize(
    "call",
    [
        lambda ecs, n: ecs.delete_cluster(cluster=n),
        lambda ecs, n: ecs.update_cluster(cluster=n, settings=[{"name": "containerInsights", "value": "enabled"}]),
        lambda ecs, n: ecs.update_cluster_settings(cluster=n, settings=[{"name": "containerInsights", "value": "enabled"}]),
    ],
    ids=["delete", "update", "update_settings"],
)
def test_missing_cluster_is_cluster_not_found(ecs, unique, call):
    with pytest.raises(ClientError) as ei:
        call(ecs, unique("missing"))
    code, _ = error_of(ei)
    assert code == "ClusterNotFoundException"
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_invalid_cluster_name(ecs):
    with pytest.raises(ClientError) as ei:
        ecs.create_cluster(clusterName="no spaces allowed")
    code, msg = error_of(ei)
    assert code == "InvalidParameterException"
    assert "clusterName" in msg


def test_invalid_container_insights_value(ecs, unique):
    with pytest.raises(ClientError) as ei:
        ecs.create_cluster(clusterName=unique("cl"), settings=[{"name": "containerInsights", "value": "maybe"}])
    code, msg = error_of(ei)
    assert code == "InvalidParameterException"
    assert "settings" in msg


def test_reserved_tag_prefix_is_refused(ecs, unique):
    with pytest.raises(ClientError) as ei:
        ecs.create_cluster(clusterName=unique("cl"), tags=[{"key": "aws:owner", "value": "x"}])
    code, msg = error_of(ei)
    assert code == "InvalidParameterException"
    assert "aws:" in msg


def test_clusters_take_capacity_providers(ecs, unique):
    c = ecs.create_cluster(clusterName=unique("cl"), capacityProviders=["FARGATE", "FARGATE_SPOT"],
                           defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}])["cluster"]
    assert c["capacityProviders"] == ["FARGATE", "FARGATE_SPOT"]
    assert c["defaultCapacityProviderStrategy"][0]["capacityProvider"] == "FARGATE"
    with pytest.raises(ClientError) as ei:
        ecs.create_cluster(clusterName=unique("cl"), capacityProviders=["no-such-provider"])
    assert error_of(ei)[0] == "InvalidParameterException"


@pytest.mark.parametrize("kwargs", [{"maxResults": 101}, {"maxResults": 0}, {"nextToken": "!!not-a-token!!"}])
def test_list_clusters_bad_paging_parameters(ecs, kwargs):
    with pytest.raises(ClientError) as ei:
        ecs.list_clusters(**kwargs)
    code, msg = error_of(ei)
    assert code == "InvalidParameterException"
    assert ("maxResults" if "maxResults" in kwargs else "nextToken") in msg


def test_describe_more_than_100_clusters_is_refused(ecs):
    with pytest.raises(ClientError) as ei:
        ecs.describe_clusters(clusters=[f"c{i}" for i in range(101)])
    code, msg = error_of(ei)
    assert code == "InvalidParameterException"
    assert "clusters" in msg
