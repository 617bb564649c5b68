"""Waiter-relevant response shapes.

The ECS waiters botocore ships (services_stable, tasks_running, ...) poll operations gantry does
not implement yet; they must fail at once with the service's error rather than spin. The
shapes they match on -- `failures[].reason == "MISSING"`, `<resources>[].status` -- are checked
with waiters of the same form over DescribeClusters and DescribeTaskDefinition.
"""


import pytest
from botocore.exceptions import WaiterError
from botocore.waiter import WaiterModel, create_waiter_with_client

FAST = {"Delay": 1, "MaxAttempts": 2}

CUSTOM_WAITERS = WaiterModel(
    {
        "version": 2,
        "waiters": {
            "ClustersActive": {
                "operation": "DescribeClusters",
                "delay": 1,
                "maxAttempts": 2,
                "acceptors": [
                    {"matcher": "pathAny", "argument": "failures[].reason", "expected": "MISSING", "state": "failure"},
                    {"matcher": "pathAll", "argument": "clusters[].status", "expected": "ACTIVE", "state": "success"},
                ],
            },
            "ClustersInactive": {
                "operation": "DescribeClusters",
                "delay": 1,
                "maxAttempts": 2,
                "acceptors": [
                    {"matcher": "pathAny", "argument": "failures[].reason", "expected": "MISSING", "state": "failure"},
                    {"matcher": "pathAll", "argument": "clusters[].status", "expected": "INACTIVE", "state": "success"},
                ],
            },
            "TaskDefinitionInactive": {
                "operation": "DescribeTaskDefinition",
                "delay": 1,
                "maxAttempts": 2,
                "acceptors": [
                    {"matcher": "path", "argument": "taskDefinition.status", "expected": "INACTIVE", "state": "success"},
                    {"matcher": "error", "expected": "ClientException", "state": "failure"},
                ],
            },
        },
    }
)


def waiter(name, ecs):
    return create_waiter_with_client(name, CUSTOM_WAITERS, ecs)


def test_clusters_active_waiter_succeeds_at_once(ecs, unique):
    names = [unique("w"), unique("w")]
    for n in names:
        ecs.create_cluster(clusterName=n)
    # The first poll succeeds: with a 60 s delay configured, a second poll would be unmissable.
    waiter("ClustersActive", ecs).wait(clusters=names, WaiterConfig={"Delay": 60, "MaxAttempts": 1})


def test_clusters_waiter_fails_on_missing(ecs, unique):
    name = unique("w")
    ecs.create_cluster(clusterName=name)
    with pytest.raises(WaiterError) as ei:
        waiter("ClustersActive", ecs).wait(clusters=[name, unique("missing")])
    assert "failure" in str(ei.value)
    assert ei.value.last_response["failures"][0]["reason"] == "MISSING"


def test_clusters_inactive_waiter_after_delete(ecs, unique):
    name = unique("w")
    ecs.create_cluster(clusterName=name)
    ecs.delete_cluster(cluster=name)
    waiter("ClustersInactive", ecs).wait(clusters=[name])


def test_task_definition_waiter(ecs, unique):
    family = unique("w")
    ecs.register_task_definition(family=family, containerDefinitions=[{"name": "a", "image": "x", "memory": 16}])
    ecs.deregister_task_definition(taskDefinition=f"{family}:1")
    waiter("TaskDefinitionInactive", ecs).wait(taskDefinition=f"{family}:1")
    with pytest.raises(WaiterError) as ei:
        waiter("TaskDefinitionInactive", ecs).wait(taskDefinition=f"{family}:2")
    assert ei.value.last_response["Error"]["Code"] == "ClientException"


@pytest.mark.parametrize("name", ["services_stable", "services_inactive"])
def test_service_waiters_fail_on_missing_services(ecs, unique, name):
    cluster = unique("ws")
    ecs.create_cluster(clusterName=cluster)
    with pytest.raises(WaiterError) as ei:
        ecs.get_waiter(name).wait(WaiterConfig=FAST, cluster=cluster, services=["nope"])
    assert "terminal failure" in str(ei.value), str(ei.value)
    assert ei.value.last_response["failures"][0]["reason"] == "MISSING"


@pytest.mark.parametrize("name", ["tasks_running", "tasks_stopped"])
def test_task_waiters_fail_fast_on_missing_tasks(ecs, unique, name):
    cluster = unique("wt")
    ecs.create_cluster(clusterName=cluster)
    with pytest.raises(WaiterError) as ei:
        ecs.get_waiter(name).wait(WaiterConfig=FAST, cluster=cluster, tasks=["0123456789abcdef0123456789abcdef"])
    assert ei.value.last_response["failures"][0]["reason"] == "MISSING"
