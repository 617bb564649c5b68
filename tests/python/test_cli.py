"""The AWS CLI (v1) against gantry, configured only by the environment the server's export
line gives (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, AWS_ENDPOINT_URL, with
AWS_DISABLE_HOST_PREFIX_INJECTION): every service client reaches gantry through AWS_ENDPOINT_URL alone.
"""

import json
import subprocess
import sys

WEBSERVER = {
    "family": "webserver",
    "containerDefinitions": [{"name": "web", "image": "nginx", "memory": 100, "cpu": 99}],
    "requiresCompatibilities": ["FARGATE"],
    "networkMode": "awsvpc",
    "memory": "512",
    "cpu": "256",
}


def check_webserver(td, family="webserver"):
    assert td["family"] == family
    assert td["status"] == "ACTIVE"
    assert td["networkMode"] == "awsvpc"
    assert (td["cpu"], td["memory"]) == ("256", "512")
    assert td["requiresCompatibilities"] == ["FARGATE"]
    assert "FARGATE" in td["compatibilities"]
    (c,) = td["containerDefinitions"]
    assert (c["name"], c["image"], c["memory"], c["cpu"], c["essential"]) == ("web", "nginx", 100, 99, True)


def test_readme_walkthrough(aws_cli, gantry, tmp_path):
    """README.md's five-minute walk-through, command by command."""
    cluster = aws_cli("ecs", "create-cluster", "--cluster-name", "demo")["cluster"]
    assert cluster["clusterName"] == "demo"
    assert cluster["status"] == "ACTIVE"
    assert cluster["clusterArn"] == "arn:aws:ecs:us-east-1:000000000000:cluster/demo"

    listed = aws_cli("ecs", "list-clusters")["clusterArns"]
    assert listed.count(cluster["clusterArn"]) == 1

    (tmp_path / "webserver.json").write_text(
        '{"family": "webserver",\n'
        ' "containerDefinitions": [{"name": "web", "image": "nginx", "memory": 100, "cpu": 99}],\n'
        ' "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc", "memory": "512", "cpu": "256"}\n'
    )
    td = aws_cli("ecs", "register-task-definition", "--cli-input-json", "file://webserver.json",
                 cwd=tmp_path)["taskDefinition"]
    check_webserver(td)
    rev = td["revision"]
    assert td["taskDefinitionArn"] == gantry.task_definition_arn("webserver", rev)

    arns = aws_cli("ecs", "list-task-definitions")["taskDefinitionArns"]
    assert arns.count(td["taskDefinitionArn"]) == 1
    assert "webserver" in aws_cli("ecs", "list-task-definition-families")["families"]

    # webserver:1 is the README's definition (whichever test registered it first: the raw-wire
    # seed with string numbers normalises to the same thing).
    first = aws_cli("ecs", "describe-task-definition", "--task-definition", "webserver:1")["taskDefinition"]
    check_webserver(first)
    assert first["revision"] == 1
    assert first["taskDefinitionArn"] == gantry.task_definition_arn("webserver", 1)

    described = aws_cli("ecs", "describe-clusters", "--clusters", "demo", "--include", "SETTINGS", "TAGS")
    assert described["failures"] == []
    (c,) = described["clusters"]
    assert (c["clusterName"], c["status"]) == ("demo", "ACTIVE")
    assert c["settings"] == [{"name": "containerInsights", "value": "disabled"}]
    assert c.get("tags", []) == []

    # "Registering again creates webserver:2": the next revision, as --cli-input-json text.
    td2 = aws_cli("ecs", "register-task-definition", "--cli-input-json", json.dumps(WEBSERVER))["taskDefinition"]
    check_webserver(td2)
    assert td2["revision"] == rev + 1
    latest = aws_cli("ecs", "describe-task-definition", "--task-definition", "webserver")["taskDefinition"]
    assert latest["revision"] == rev + 1
    by_family = aws_cli("ecs", "list-task-definitions", "--family-prefix", "webserver")["taskDefinitionArns"]
    assert by_family[-2:] == [td["taskDefinitionArn"], td2["taskDefinitionArn"]]
    assert by_family == [gantry.task_definition_arn("webserver", r) for r in range(1, rev + 2)]


def test_readme_refused_definition(aws_cli):
    """README.md: a definition that breaks ECS's rules is a ClientException naming the field."""
    r = aws_cli.run(
        "ecs", "register-task-definition", "--family", "bad", "--requires-compatibilities", "FARGATE",
        "--network-mode", "bridge", "--cpu", "256", "--memory", "512",
        "--container-definitions", '[{"name":"web","image":"nginx"}]',
    )
    assert r.returncode != 0
    assert "An error occurred (ClientException) when calling the RegisterTaskDefinition operation" in r.stderr
    assert "Invalid 'networkMode': Fargate only supports network mode 'awsvpc'." in r.stderr


def test_readme_boto3_from_environment(gantry, tmp_path):
    """README.md: boto3.client("ecs") configured by the exported variables alone."""
    code = 'import boto3, json; ecs = boto3.client("ecs"); print(json.dumps(ecs.list_clusters()["clusterArns"]))'
    env = dict(gantry.env)
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                       cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert isinstance(json.loads(p.stdout), list)


def test_cli_cluster_commands(aws_cli, gantry, unique):
    name = unique("cli")
    created = aws_cli(
        "ecs", "create-cluster", "--cluster-name", name,
        "--tags", "key=team,value=cli",
        "--settings", "name=containerInsights,value=enabled",
    )["cluster"]
    assert created["clusterArn"] == gantry.cluster_arn(name)
    assert created["tags"] == [{"key": "team", "value": "cli"}]

    missing = unique("missing")
    d = aws_cli("ecs", "describe-clusters", "--clusters", name, missing, "--include", "TAGS", "SETTINGS")
    (c,) = d["clusters"]
    assert c["tags"] == [{"key": "team", "value": "cli"}]
    assert c["settings"] == [{"name": "containerInsights", "value": "enabled"}]
    assert d["failures"] == [{"arn": gantry.cluster_arn(missing), "reason": "MISSING"}]

    # The CLI follows nextToken itself; a page size of 1 must still list every cluster once.
    paged = aws_cli("ecs", "list-clusters", "--page-size", "1")["clusterArns"]
    assert paged.count(gantry.cluster_arn(name)) == 1
    assert len(paged) == len(set(paged))
    assert sorted(paged) == sorted(aws_cli("ecs", "list-clusters")["clusterArns"])
    # --max-items truncates and hands back a CLI NextToken.
    limited = aws_cli("ecs", "list-clusters", "--max-items", "1")
    assert len(limited["clusterArns"]) == 1
    assert limited.get("NextToken")

    deleted = aws_cli("ecs", "delete-cluster", "--cluster", name)["cluster"]
    assert deleted["status"] == "INACTIVE"
    assert gantry.cluster_arn(name) not in aws_cli("ecs", "list-clusters")["clusterArns"]


def test_cli_task_definition_commands(aws_cli, gantry, unique, tmp_path):
    base = unique("clitd")
    family = f"{base}-app"
    containers = json.dumps([{"name": "app", "image": "busybox", "memory": 32, "essential": True}])
    r1 = aws_cli("ecs", "register-task-definition", "--family", family,
                 "--container-definitions", containers, "--tags", "key=k,value=v")
    assert r1["taskDefinition"]["revision"] == 1
    assert r1["tags"] == [{"key": "k", "value": "v"}]
    spec = tmp_path / "td.json"
    spec.write_text(json.dumps({"family": family, "containerDefinitions": json.loads(containers)}))
    r2 = aws_cli("ecs", "register-task-definition", "--cli-input-json", f"file://{spec}")
    assert r2["taskDefinition"]["revision"] == 2

    other = f"{base}-other"
    aws_cli("ecs", "register-task-definition", "--family", other, "--container-definitions", containers)

    d = aws_cli("ecs", "describe-task-definition", "--task-definition", f"{family}:1", "--include", "TAGS")
    assert d["taskDefinition"]["containerDefinitions"][0]["image"] == "busybox"
    assert d["tags"] == [{"key": "k", "value": "v"}]

    asc = aws_cli("ecs", "list-task-definitions", "--family-prefix", family)["taskDefinitionArns"]
    assert asc == [gantry.task_definition_arn(family, 1), gantry.task_definition_arn(family, 2)]
    desc = aws_cli("ecs", "list-task-definitions", "--family-prefix", family, "--sort", "DESC")["taskDefinitionArns"]
    assert desc == asc[::-1]
    paged = aws_cli("ecs", "list-task-definitions", "--family-prefix", family, "--page-size", "1")["taskDefinitionArns"]
    assert paged == asc

    fams = aws_cli("ecs", "list-task-definition-families", "--family-prefix", base)["families"]
    assert fams == [family, other]

    dereg = aws_cli("ecs", "deregister-task-definition", "--task-definition", f"{other}:1")
    assert dereg["taskDefinition"]["status"] == "INACTIVE"
    active = aws_cli("ecs", "list-task-definition-families", "--family-prefix", base, "--status", "ACTIVE")["families"]
    assert active == [family]
    inactive = aws_cli("ecs", "list-task-definition-families", "--family-prefix", base, "--status", "INACTIVE")["families"]
    assert inactive == [other]


def test_cli_reports_service_errors(aws_cli, unique):
    r = aws_cli.run("ecs", "describe-task-definition", "--task-definition", unique("nothere"))
    assert r.returncode != 0
    assert "ClientException" in r.stderr
    r = aws_cli.run("ecs", "delete-cluster", "--cluster", unique("nothere"))
    assert r.returncode != 0
    assert "ClusterNotFoundException" in r.stderr


def test_cli_with_explicit_endpoint_url(aws_cli, gantry):
    env = {k: v for k, v in gantry.env.items() if k != "AWS_ENDPOINT_URL"}
    out = aws_cli("ecs", "list-task-definition-families", "--endpoint-url", gantry.endpoint, env=env)
    assert isinstance(out["families"], list)


def test_cli_wrong_secret_is_refused(aws_cli, gantry):
    env = dict(gantry.env, AWS_SECRET_ACCESS_KEY="x" * 40)
    r = aws_cli.run("ecs", "list-clusters", env=env)
    assert r.returncode != 0
    assert "InvalidSignatureException" in r.stderr
