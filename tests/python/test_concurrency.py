"""Concurrent writers: revisions stay unique and gap-free, idempotent creates stay single.

botocore clients are thread-safe; the threads share the session's client.
"""

from concurrent.futures import ThreadPoolExecutor


def test_concurrent_registrations_get_distinct_revisions(gantry, ecs, unique):
    family = unique("conc")
    n = 40

    def register(_):
        td = ecs.register_task_definition(
            family=family, containerDefinitions=[{"name": "a", "image": "x", "memory": 16}]
        )["taskDefinition"]
        return td["revision"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        revisions = list(pool.map(register, range(n)))
    assert sorted(revisions) == list(range(1, n + 1))
    arns = []
    for page in ecs.get_paginator("list_task_definitions").paginate(familyPrefix=family, PaginationConfig={"PageSize": 7}):
        arns.extend(page["taskDefinitionArns"])
    assert arns == [gantry.task_definition_arn(family, r) for r in range(1, n + 1)]


def test_concurrent_creates_of_one_cluster(gantry, ecs, unique):
    name = unique("conc")

    def create(_):
        return ecs.create_cluster(clusterName=name)["cluster"]["clusterArn"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        arns = set(pool.map(create, range(16)))
    assert arns == {gantry.cluster_arn(name)}
    listed = [a for page in ecs.get_paginator("list_clusters").paginate() for a in page["clusterArns"]]
    assert listed.count(gantry.cluster_arn(name)) == 1
