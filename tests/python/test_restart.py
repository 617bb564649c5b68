"""Servers of their own (not the session's): state survives a restart, and the admin key is
created once per data directory."""

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError


def test_state_survives_restart(launch, tmp_path):
    data = tmp_path / "data"
    first = launch(data)
    g = launch.gantry(data, first, expect_export_line=True)
    ecs = g.client()
    user = "arn:aws:iam::000000000000:user/restart"

    ecs.create_cluster(clusterName="keep", tags=[{"key": "a", "value": "1"}],
                       settings=[{"name": "containerInsights", "value": "enabled"}])
    ecs.create_cluster(clusterName="drop")
    ecs.delete_cluster(cluster="drop")
    for _ in range(2):
        ecs.register_task_definition(family="app", containerDefinitions=[{"name": "a", "image": "x", "memory": 16}],
                                     tags=[{"key": "t", "value": "v"}])
    ecs.register_task_definition(family="gone", containerDefinitions=[{"name": "a", "image": "x", "memory": 16}])
    ecs.register_task_definition(family="gone", containerDefinitions=[{"name": "a", "image": "x", "memory": 16}])
    ecs.deregister_task_definition(taskDefinition="gone:1")
    ecs.deregister_task_definition(taskDefinition="gone:2")
    ecs.delete_task_definitions(taskDefinitions=["gone:1", "gone:2"])
    ecs.deregister_task_definition(taskDefinition="app:1")
    ecs.put_account_setting(name="awsvpcTrunking", value="enabled", principalArn=user)
    ecs.put_account_setting(name="fargateFIPSMode", value="enabled", principalArn=user)
    ecs.delete_account_setting(name="fargateFIPSMode", principalArn=user)

    assert first.stop() == 0, first.stderr()
    assert "shutting down" in first.stderr()

    second = launch(data)
    assert "export " not in second.stdout(), "the export line is printed only when the key is created"
    g2 = launch.gantry(data, second)
    assert (g2.access_key_id, g2.secret_access_key) == (g.access_key_id, g.secret_access_key)
    ecs = g2.client()

    d = ecs.describe_clusters(clusters=["keep", "drop"], include=["TAGS", "SETTINGS"])
    by_name = {c["clusterName"]: c for c in d["clusters"]}
    assert by_name["keep"]["status"] == "ACTIVE"
    assert by_name["keep"]["tags"] == [{"key": "a", "value": "1"}]
    assert by_name["keep"]["settings"] == [{"name": "containerInsights", "value": "enabled"}]
    assert by_name["drop"]["status"] == "INACTIVE"
    assert ecs.list_clusters()["clusterArns"] == [g2.cluster_arn("keep")]

    assert ecs.list_task_definitions(familyPrefix="app")["taskDefinitionArns"] == [g2.task_definition_arn("app", 2)]
    assert ecs.list_task_definitions(familyPrefix="app", status="INACTIVE")["taskDefinitionArns"] == [
        g2.task_definition_arn("app", 1)
    ]
    assert ecs.describe_task_definition(taskDefinition="app:2", include=["TAGS"])["tags"] == [{"key": "t", "value": "v"}]
    assert ecs.list_task_definitions(familyPrefix="gone", status="DELETE_IN_PROGRESS")["taskDefinitionArns"] == [
        g2.task_definition_arn("gone", 1),
        g2.task_definition_arn("gone", 2),
    ]
    # Revisions are never reused, across restarts too.
    assert ecs.register_task_definition(family="gone", containerDefinitions=[
        {"name": "a", "image": "x", "memory": 16}])["taskDefinition"]["revision"] == 3
    assert ecs.register_task_definition(family="app", containerDefinitions=[
        {"name": "a", "image": "x", "memory": 16}])["taskDefinition"]["revision"] == 3

    settings = ecs.list_account_settings(principalArn=user)["settings"]
    assert [(s["name"], s["value"]) for s in settings] == [("awsvpcTrunking", "enabled")]


def test_credentials_before_first_start(launch, tmp_path):
    """`gantry credentials` creates the key; the server then uses it (and prints no line)."""
    data = tmp_path / "data"
    creds = launch.credentials(data)
    assert creds["accessKeyId"] and creds["secretAccessKey"]
    assert creds["endpoint"] == "http://127.0.0.1:8100"
    assert launch.credentials(data) == creds

    p = launch(data)
    assert "export " not in p.stdout()
    ecs = boto3.session.Session().client(
        "ecs",
        region_name="us-east-1",
        endpoint_url=f"http://127.0.0.1:{p.port}",
        aws_access_key_id=creds["accessKeyId"],
        aws_secret_access_key=creds["secretAccessKey"],
        config=Config(retries={"max_attempts": 1}),
    )
    assert ecs.list_clusters()["clusterArns"] == []


def test_keys_differ_between_data_directories(launch, tmp_path, gantry):
    """Another installation's key is not accepted by the session server."""
    other = launch.credentials(tmp_path / "other")
    assert other["accessKeyId"] != gantry.access_key_id
    ecs = gantry.client(aws_access_key_id=other["accessKeyId"], aws_secret_access_key=other["secretAccessKey"])
    with pytest.raises(ClientError) as ei:
        ecs.list_clusters()
    assert ei.value.response["Error"]["Code"] == "UnrecognizedClientException"
