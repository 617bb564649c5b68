"""RunTask's clientToken makes a request idempotent, with a capacity provider strategy too:
the providers' shares are committed in one transaction, and a retry gets the same tasks.

The tasks land on two real agent processes, each standing for one capacity provider; they run
the hollow ("simulated") runtime, since what is tested here is the control plane's commit."""

import subprocess
import time

import pytest


@pytest.fixture
def two_pools(gantry, ecs, unique, tmp_path):
    cluster = unique("cp")
    ecs.create_cluster(clusterName=cluster)
    providers = [unique("pool-a"), unique("pool-b")]
    for p in providers:
        ecs.create_capacity_provider(name=p)
    ecs.put_cluster_capacity_providers(
        cluster=cluster, capacityProviders=providers, defaultCapacityProviderStrategy=[]
    )
    token = subprocess.run(
        [str(gantry.binary), "join-token", "--data-dir", str(gantry.data_dir)],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    agents = []
    for i, p in enumerate(providers):
        agents.append(subprocess.Popen(
            [str(gantry.binary), "agent", "--runtime", "simulated", "--server", gantry.endpoint,
             "--cluster", cluster, "--join-token", token, "--capacity-provider", p,
             "--data-dir", str(tmp_path / f"agent-{i}"), "--cpu", "4096", "--memory", "8192"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))
    try:
        deadline = time.monotonic() + 30
        while len(ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]) < 2:
            assert time.monotonic() < deadline, "the agents did not register"
            time.sleep(0.2)
        yield cluster, providers
    finally:
        for a in agents:
            a.kill()
            a.wait()


def test_client_token_with_a_capacity_provider_strategy(ecs, unique, two_pools):
    cluster, (a, b) = two_pools
    ecs.register_task_definition(
        family="idem", containerDefinitions=[{"name": "c", "image": "scratch", "memory": 16}]
    )
    strategy = [{"capacityProvider": a, "weight": 1}, {"capacityProvider": b, "weight": 1}]
    token = unique("tok")
    first = ecs.run_task(cluster=cluster, taskDefinition="idem", count=4,
                         capacityProviderStrategy=strategy, clientToken=token)
    arns = sorted(t["taskArn"] for t in first["tasks"])
    assert len(arns) == 4, first["failures"]
    assert sorted(t["capacityProviderName"] for t in first["tasks"]) == sorted([a, a, b, b])

    again = ecs.run_task(cluster=cluster, taskDefinition="idem", count=4,
                         capacityProviderStrategy=strategy, clientToken=token)
    assert sorted(t["taskArn"] for t in again["tasks"]) == arns
    listed = ecs.list_tasks(cluster=cluster)["taskArns"]
    assert sorted(listed) == arns, "the retry started nothing new"

    other = ecs.run_task(cluster=cluster, taskDefinition="idem", count=2,
                         capacityProviderStrategy=strategy, clientToken=unique("tok"))
    assert len(other["tasks"]) == 2
    assert not set(t["taskArn"] for t in other["tasks"]) & set(arns)
