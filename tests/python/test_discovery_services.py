"""ECS services with `serviceRegistries` on real Docker under `gantry up`: their RUNNING tasks
are registered in a Cloud Map service of a private DNS namespace (awsvpc tasks at their own
address with an A record; bridge tasks at the host's address and their host port with an SRV
record), tasks of another service resolve `web.<namespace>` through gantry's DNS server (which
containers get as theirs) and connect, and tasks that stop leave the answers."""

from __future__ import annotations

import pytest

from test_awslogs import client
from test_servicediscovery import ask_udp, namespace
from test_task_endpoint import sh
from test_walkthrough_tasks import IMAGE, UP_DNS, _wait_for, busybox_image, docker, gantry_up  # noqa: F401

DNS_HOST, DNS_PORT = UP_DNS.rsplit(":", 1)
# The first address busybox's nslookup prints for a name.
FIRST_ADDRESS = "nslookup {name} | sed -n '/^Name:/,$ s/^Address: *//p' | head -n 1"
def http_get(host: str, port: int) -> str:
    """A shell command that GETs / with busybox's nc (its wget crashes in this image)."""
    return f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {host} {port}"


def body(response: str) -> str:
    return response.replace("\r\n", "\n").split("\n\n", 1)[-1].strip()


SITE = "mkdir -p /www && echo \"$(hostname)\" > /www/index.html && exec httpd -f -p 80 -h /www"


def ask(name: str, qtype: str = "A") -> dict:
    return ask_udp(int(DNS_PORT), name, qtype, host=DNS_HOST)


def eni_ip(task: dict) -> str:
    for a in task.get("attachments", []):
        for d in a.get("details", []):
            if d["name"] == "privateIPv4Address":
                return d["value"]
    raise AssertionError(f"no ENI address: {task}")


@pytest.fixture(scope="module")
def corp(gantry_up):
    """A private DNS namespace `corp.local` with an A service `web` and an SRV service
    `webb`: (namespace id, web's ARN, webb's ARN)."""
    sd = client(gantry_up, "servicediscovery")
    ns = namespace(sd, "corp.local")
    web = sd.create_service(Name="web", NamespaceId=ns, DnsConfig={
        "DnsRecords": [{"Type": "A", "TTL": 5}]})["Service"]["Arn"]
    webb = sd.create_service(Name="webb", NamespaceId=ns, DnsConfig={
        "DnsRecords": [{"Type": "SRV", "TTL": 5}]})["Service"]["Arn"]
    return ns, web, webb


def client_task(up, ecs, mode: str) -> dict:
    """A task of another family that sleeps, in the web service's subnet under awsvpc."""
    td = ecs.register_task_definition(family=f"sdclient-{mode}", networkMode=mode, containerDefinitions=[{
        "name": "c", "image": IMAGE, "memory": 32, "command": ["sleep", "120"]}])["taskDefinition"]
    extra = {}
    if mode == "awsvpc":
        extra["networkConfiguration"] = {"awsvpcConfiguration": {"subnets": ["subnet-sd"]}}
    arn = ecs.run_task(cluster="default", taskDefinition=td["taskDefinitionArn"], **extra)["tasks"][0]["taskArn"]

    def running():
        (t,) = ecs.describe_tasks(cluster="default", tasks=[arn])["tasks"]
        return t if t["lastStatus"] == "RUNNING" else None

    return _wait_for(f"the {mode} client did not start", running, 60, up)


def running_tasks(ecs, service: str) -> list[dict]:
    arns = ecs.list_tasks(cluster="default", serviceName=service, desiredStatus="RUNNING")["taskArns"]
    if not arns:
        return []
    return [t for t in ecs.describe_tasks(cluster="default", tasks=arns)["tasks"] if t["lastStatus"] == "RUNNING"]


def test_awsvpc_tasks_are_found_by_name_and_reached(gantry_up, corp):
    up = gantry_up
    ecs, sd = client(up, "ecs"), client(up, "servicediscovery")
    _, web, _ = corp
    td = ecs.register_task_definition(family="sdweb", networkMode="awsvpc", containerDefinitions=[{
        "name": "web", "image": IMAGE, "memory": 32, "portMappings": [{"containerPort": 80}],
        "command": ["sh", "-c", SITE]}])["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster="default", serviceName="sdweb", taskDefinition=td, desiredCount=2,
                       networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-sd"]}},
                       serviceRegistries=[{"registryArn": web}])
    (svc,) = ecs.describe_services(cluster="default", services=["sdweb"])["services"]
    assert svc["serviceRegistries"] == [{"registryArn": web}]

    def registered():
        tasks = running_tasks(ecs, "sdweb")
        found = sd.discover_instances(NamespaceName="corp.local", ServiceName="web")["Instances"]
        ips = sorted(i["Attributes"]["AWS_INSTANCE_IPV4"] for i in found)
        want = sorted(eni_ip(t) for t in tasks)
        return len(tasks) == 2 and ips == want and (tasks, found)

    tasks, found = _wait_for("the service's tasks were not registered", registered, 90, up)
    ids = {t["taskArn"].rsplit("/", 1)[1] for t in tasks}
    assert {i["InstanceId"] for i in found} == ids
    attrs = found[0]["Attributes"]
    assert (attrs["ECS_SERVICE_NAME"], attrs["ECS_CLUSTER_NAME"], attrs["ECS_TASK_DEFINITION_FAMILY"]) == (
        "sdweb", "default", "sdweb")
    assert sorted(r[3] for r in ask("web.corp.local")["answers"]) == sorted(eni_ip(t) for t in tasks)

    # Tasks of other kinds resolve the name through gantry's DNS server and connect.
    names = {t["containers"][0]["runtimeId"] for t in tasks}
    hostnames = {docker("exec", n, "hostname").stdout.strip() for n in names}
    for mode in ("bridge", "awsvpc"):
        c = client_task(up, ecs, mode)
        looked = sh(c, "nslookup web.corp.local")
        assert looked.returncode == 0, f"{mode}: {looked.stdout}{looked.stderr}"
        for t in tasks:
            assert eni_ip(t) in looked.stdout, (mode, looked.stdout)
        if mode == "awsvpc":
            # Debian's static busybox resolves only in nslookup (static glibc has no NSS), so
            # the task connects to the address its own nslookup found. (A bridge task does not
            # reach awsvpc subnets: Docker isolates its bridge from theirs.)
            got = sh(c, http_get(f"$({FIRST_ADDRESS.format(name='web.corp.local')})", 80))
            assert got.returncode == 0 and body(got.stdout) in hostnames, (got.stdout, got.stderr)
        ecs.stop_task(cluster="default", task=c["taskArn"])

    # Scaled in: the stopped task leaves the answers.
    ecs.update_service(cluster="default", service="sdweb", desiredCount=1)
    _wait_for("the stopped task stayed in the DNS answers",
              lambda: len(ask("web.corp.local")["answers"]) == 1, 60, up)
    (left,) = _wait_for("one task left", lambda: len(t := running_tasks(ecs, "sdweb")) == 1 and t, 60, up)
    assert [r[3] for r in ask("web.corp.local")["answers"]] == [eni_ip(left)]
    ecs.delete_service(cluster="default", service="sdweb", force=True)
    _wait_for("the deleted service's tasks were not deregistered",
              lambda: not sd.list_instances(ServiceId=web.rsplit("/", 1)[1])["Instances"], 60, up)


def test_bridge_tasks_are_srv_records_at_the_hosts_address(gantry_up, corp):
    up = gantry_up
    ecs, sd = client(up, "ecs"), client(up, "servicediscovery")
    _, web, webb = corp
    td = ecs.register_task_definition(family="sdwebb", containerDefinitions=[{
        "name": "web", "image": IMAGE, "memory": 32, "portMappings": [{"containerPort": 80, "hostPort": 0}],
        "command": ["sh", "-c", SITE]}])["taskDefinition"]["taskDefinitionArn"]
    # Without a port, an SRV record has nothing to say; an A record needs awsvpc.
    for regs in ([{"registryArn": webb}], [{"registryArn": web, "containerName": "web", "containerPort": 80}]):
        with pytest.raises(Exception) as e:
            ecs.create_service(cluster="default", serviceName="sdwebb", taskDefinition=td, desiredCount=1,
                               serviceRegistries=regs)
        assert "InvalidParameterException" in str(e.value), e.value
    ecs.create_service(cluster="default", serviceName="sdwebb", taskDefinition=td, desiredCount=1,
                       serviceRegistries=[{"registryArn": webb, "containerName": "web", "containerPort": 80}])

    def registered():
        tasks = running_tasks(ecs, "sdwebb")
        srv = ask("webb.corp.local", "SRV")
        return len(tasks) == 1 and len(srv["answers"]) == 1 and (tasks[0], srv)

    task, srv = _wait_for("the bridge task was not registered", registered, 90, up)
    host_port = task["containers"][0]["networkBindings"][0]["hostPort"]
    (_, _, _, (_, _, port, target)), = srv["answers"]
    assert port == host_port and target == f"{task['taskArn'].rsplit('/', 1)[1]}.webb.corp.local"
    (address,) = [r[3] for r in srv["additional"]]
    # A bridge task of another service connects to the address and port the SRV record names.
    c = client_task(up, ecs, "bridge")
    looked = sh(c, "nslookup -type=SRV webb.corp.local")
    assert str(host_port) in looked.stdout, looked.stdout + looked.stderr
    got = sh(c, http_get(address, port))
    assert got.returncode == 0 and body(got.stdout), got.stdout + got.stderr
    ecs.stop_task(cluster="default", task=c["taskArn"])
    ecs.delete_service(cluster="default", service="sdwebb", force=True)
    _wait_for("the bridge task stayed in the answers",
              lambda: not ask("webb.corp.local", "SRV")["answers"], 60, up)


def test_update_service_moves_the_service_to_another_registry(gantry_up, corp):
    up = gantry_up
    ecs, sd = client(up, "ecs"), client(up, "servicediscovery")
    ns, _, _ = corp
    first, second = (sd.create_service(Name=n, NamespaceId=ns, DnsConfig={
        "DnsRecords": [{"Type": "A", "TTL": 5}]})["Service"]["Arn"] for n in ("one", "two"))
    td = ecs.register_task_definition(family="sdmove", networkMode="awsvpc", containerDefinitions=[{
        "name": "web", "image": IMAGE, "memory": 32, "command": ["sleep", "300"]}])["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster="default", serviceName="sdmove", taskDefinition=td, desiredCount=1,
                       networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-sd"]}},
                       serviceRegistries=[{"registryArn": first}])
    _wait_for("registered in the first", lambda: len(ask("one.corp.local")["answers"]) == 1, 90, up)
    ecs.update_service(cluster="default", service="sdmove", serviceRegistries=[{"registryArn": second}])
    _wait_for("the new task in the second registry, none left in the first",
              lambda: len(ask("two.corp.local")["answers"]) == 1 and not ask("one.corp.local")["answers"], 120, up)
    (t,) = running_tasks(ecs, "sdmove")
    assert [r[3] for r in ask("two.corp.local")["answers"]] == [eni_ip(t)]
    ecs.delete_service(cluster="default", service="sdmove", force=True)
