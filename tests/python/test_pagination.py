"""boto3's paginators over gantry's nextToken pagination: every item exactly once, in order."""

import pytest


def paginate(ecs, operation, result_key, page_size, **kwargs):
    pages = list(ecs.get_paginator(operation).paginate(PaginationConfig={"PageSize": page_size}, **kwargs))
    items = [x for p in pages for x in p[result_key]]
    for p in pages[:-1]:
        assert p.get("nextToken"), "a page before the last has no nextToken"
        assert len(p[result_key]) == page_size
    assert not pages[-1].get("nextToken")
    return pages, items


def manual(ecs, method, result_key, **kwargs):
    """The same listing with raw nextToken handling."""
    items, token = [], None
    while True:
        resp = getattr(ecs, method)(**kwargs, **({"nextToken": token} if token else {}))
        items.extend(resp[result_key])
        token = resp.get("nextToken")
        if not token:
            return items


def test_list_clusters_paginator(ecs, gantry, unique):
    base = unique("pg")
    names = [f"{base}-{i:02d}" for i in range(7)]
    for n in names:
        ecs.create_cluster(clusterName=n)
    pages, arns = paginate(ecs, "list_clusters", "clusterArns", 2)
    assert len(pages) >= 4
    assert len(arns) == len(set(arns)), "a cluster came back twice"
    mine = [a for a in arns if a.startswith(gantry.cluster_arn(base))]
    assert mine == [gantry.cluster_arn(n) for n in names]
    assert sorted(arns) == sorted(manual(ecs, "list_clusters", "clusterArns", maxResults=3))


def test_list_clusters_paginator_skips_deleted(ecs, gantry, unique):
    base = unique("pgd")
    names = [f"{base}-{i}" for i in range(5)]
    for n in names:
        ecs.create_cluster(clusterName=n)
    ecs.delete_cluster(cluster=names[1])
    ecs.delete_cluster(cluster=names[3])
    _, arns = paginate(ecs, "list_clusters", "clusterArns", 1)
    mine = [a for a in arns if a.startswith(gantry.cluster_arn(base))]
    assert mine == [gantry.cluster_arn(names[i]) for i in (0, 2, 4)]


def test_pages_resume_after_the_last_item_is_deleted(ecs, gantry, unique):
    """The token names the last item; deleting it between pages must not lose or repeat items."""
    base = unique("pgr")
    names = [f"{base}-{i}" for i in range(4)]
    for n in names:
        ecs.create_cluster(clusterName=n)
    # Walk the whole listing one item a page, deleting each of ours as soon as it is returned.
    seen, token = [], None
    while True:
        resp = ecs.list_clusters(maxResults=1, **({"nextToken": token} if token else {}))
        for arn in resp["clusterArns"]:
            seen.append(arn)
            if arn.startswith(gantry.cluster_arn(base)):
                ecs.delete_cluster(cluster=arn)
        token = resp.get("nextToken")
        if not token:
            break
    mine = [a for a in seen if a.startswith(gantry.cluster_arn(base))]
    assert mine == [gantry.cluster_arn(n) for n in names]
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize("sort", ["ASC", "DESC"])
def test_list_task_definitions_paginator(ecs, gantry, unique, sort):
    family = unique("pgt")
    for _ in range(12):  # revisions 10..12 check numeric (not string) order across pages
        ecs.register_task_definition(family=family, containerDefinitions=[{"name": "a", "image": "x", "memory": 16}])
    pages, arns = paginate(ecs, "list_task_definitions", "taskDefinitionArns", 5, familyPrefix=family, sort=sort)
    assert len(pages) == 3
    want = [gantry.task_definition_arn(family, r) for r in range(1, 13)]
    assert arns == (want if sort == "ASC" else want[::-1])


def test_list_task_definitions_paginator_across_families(ecs, gantry, unique):
    base = unique("pgx")
    fams = [f"{base}-{c}" for c in "abc"]
    for f in fams:
        for _ in range(2):
            ecs.register_task_definition(family=f, containerDefinitions=[{"name": "a", "image": "x", "memory": 16}])
    _, arns = paginate(ecs, "list_task_definitions", "taskDefinitionArns", 4)
    assert len(arns) == len(set(arns))
    mine = [a for a in arns if a.startswith(gantry.arn(f"task-definition/{base}-"))]
    assert mine == [gantry.task_definition_arn(f, r) for f in fams for r in (1, 2)]
    _, desc = paginate(ecs, "list_task_definitions", "taskDefinitionArns", 4, sort="DESC")
    assert desc == arns[::-1]


def test_list_task_definition_families_paginator(ecs, unique):
    base = unique("pgf")
    fams = [f"{base}-{i:02d}" for i in range(7)]
    for f in fams:
        ecs.register_task_definition(family=f, containerDefinitions=[{"name": "a", "image": "x", "memory": 16}])
    pages, got = paginate(ecs, "list_task_definition_families", "families", 3, familyPrefix=base)
    assert len(pages) == 3
    assert got == fams
    _, everything = paginate(ecs, "list_task_definition_families", "families", 5)
    assert len(everything) == len(set(everything))
    assert [f for f in everything if f.startswith(base)] == fams


@pytest.mark.parametrize("page_size", [1, 3, 10])
def test_list_account_settings_paginator(ecs, page_size):
    pages, settings = paginate(ecs, "list_account_settings", "settings", page_size, effectiveSettings=True)
    names = [s["name"] for s in settings]
    assert len(names) == len(set(names)), names
    assert len(pages) > 1
    all_names = manual(ecs, "list_account_settings", "settings", effectiveSettings=True, maxResults=10)
    assert names == [s["name"] for s in all_names]
    assert {
        "serviceLongArnFormat",
        "taskLongArnFormat",
        "containerInstanceLongArnFormat",
        "awsvpcTrunking",
        "containerInsights",
        "fargateFIPSMode",
        "tagResourceAuthorization",
        "fargateTaskRetirementWaitPeriod",
        "guardDutyActivate",
        "defaultLogDriverMode",
    } <= set(names)
