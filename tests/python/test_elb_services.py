"""ECS services behind gantry's load balancers, on real Docker under `gantry up`: tasks are
registered once RUNNING and count healthy only when their targets are; a task whose target
fails its checks goes unhealthy, leaves the rotation and is replaced, in that order; a rolling
deployment under steady load drops no request (old tasks are deregistered and drain before they
get SIGTERM). ELB's seconds last 100 ms here (GANTRY_ELB_SECOND)."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request

import pytest

from conftest import _free_port
from test_awslogs import client
from test_walkthrough_tasks import IMAGE, _wait_for, busybox_image, docker, gantry_up  # noqa: F401

# httpd in the background (so that killing it leaves the container up), serving the
# container's hostname and the revision.
SITE = ("mkdir -p /www && echo \"$(hostname) {rev}\" > /www/index.html && httpd -p 80 -h /www "
        "&& exec sleep 3600")


# The steady load of the rolling deployment: about 200 requests/s, as the issue asks.
RATE, RATE_THREADS = 200, 8


def register(ecs, rev: str) -> str:
    return ecs.register_task_definition(family="lbweb", containerDefinitions=[{
        "name": "web", "image": IMAGE, "memory": 32, "essential": True,
        "portMappings": [{"containerPort": 80, "hostPort": 0}],
        "command": ["sh", "-c", SITE.format(rev=rev)]}])["taskDefinition"]["taskDefinitionArn"]


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode().strip()
    except urllib.error.HTTPError as e:
        return e.code, ""
    except OSError as e:
        return 0, str(e)


@pytest.fixture(scope="module")
def web(gantry_up):
    """A load balancer, a target group and a listener, and a service of three tasks behind
    them: (url, target group ARN)."""
    up = gantry_up
    elb, ecs = client(up, "elbv2"), client(up, "ecs")
    lb = elb.create_load_balancer(Name="svc", Subnets=["subnet-gantry"])["LoadBalancers"][0]
    tg = elb.create_target_group(
        Name="svc", Protocol="HTTP", Port=80, TargetType="ip", VpcId="vpc-gantry",
        HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2,
        UnhealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
    elb.modify_target_group_attributes(
        TargetGroupArn=tg, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "10"}])
    port = _free_port()
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    td = register(ecs, "r1")
    ecs.create_service(cluster="default", serviceName="lbweb", taskDefinition=td, desiredCount=3,
                       loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 80}])
    yield f"http://{lb['DNSName']}:{port}/", tg
    # The service goes first (its tasks drain, then stop), so that nothing replaces them.
    ecs.delete_service(cluster="default", service="lbweb", force=True)
    _wait_for("the service's tasks stopped",
              lambda: not ecs.list_tasks(cluster="default", serviceName="lbweb", desiredStatus="RUNNING")["taskArns"],
              60, up)


def healthy_ports(elb, tg: str) -> set[int]:
    d = elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
    return {x["Target"]["Port"] for x in d if x["TargetHealth"]["State"] == "healthy"}


def steady(ecs) -> dict:
    (s,) = ecs.describe_services(cluster="default", services=["lbweb"])["services"]
    return s


def test_tasks_register_once_running_and_share_the_requests(gantry_up, web):
    url, tg = web
    elb, ecs = client(gantry_up, "elbv2"), client(gantry_up, "ecs")
    _wait_for("three healthy targets", lambda: len(healthy_ports(elb, tg)) == 3, 90, gantry_up)
    s = steady(ecs)
    assert s["loadBalancers"] == [{"targetGroupArn": tg, "containerName": "web", "containerPort": 80}]
    messages = [e["message"] for e in s["events"]]
    assert any(m == f"(service lbweb) registered 1 targets in (target-group {tg})" for m in messages), messages
    # Each target is a task's host port on loopback (bridge mode).
    tasks = ecs.describe_tasks(cluster="default", tasks=ecs.list_tasks(cluster="default", serviceName="lbweb")["taskArns"])["tasks"]
    bound = {t["containers"][0]["networkBindings"][0]["hostPort"] for t in tasks}
    assert healthy_ports(elb, tg) == bound
    answers = [get(url) for _ in range(30)]
    assert all(s == 200 for s, _ in answers), answers
    assert len({b for _, b in answers}) == 3, answers


def test_a_task_failing_its_target_checks_goes_unhealthy_leaves_and_is_replaced(gantry_up, web):
    url, tg = web
    elb, ecs = client(gantry_up, "elbv2"), client(gantry_up, "ecs")
    _wait_for("three healthy targets", lambda: len(healthy_ports(elb, tg)) == 3, 90, gantry_up)
    arns = ecs.list_tasks(cluster="default", serviceName="lbweb")["taskArns"]
    victim = ecs.describe_tasks(cluster="default", tasks=arns[:1])["tasks"][0]
    port = victim["containers"][0]["networkBindings"][0]["hostPort"]
    docker("exec", victim["containers"][0]["runtimeId"], "killall", "httpd")
    seen: list[str] = []

    def state() -> str:
        d = elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
        now = next((x["TargetHealth"]["State"] for x in d if x["Target"]["Port"] == port), "gone")
        if not seen or seen[-1] != now:
            seen.append(now)
        return now

    _wait_for("the victim's target gone", lambda: state() == "gone", 90, gantry_up, interval=0.05)
    # Unhealthy first, then out of the group (draining, then gone): never straight to gone.
    assert seen[0] == "healthy" and "unhealthy" in seen, seen
    assert seen.index("unhealthy") < len(seen) - 1, seen
    (t,) = ecs.describe_tasks(cluster="default", tasks=[victim["taskArn"]])["tasks"]
    _wait_for("the victim stopped", lambda: ecs.describe_tasks(cluster="default", tasks=[victim["taskArn"]])["tasks"][0]["lastStatus"] == "STOPPED", 60, gantry_up)
    (t,) = ecs.describe_tasks(cluster="default", tasks=[victim["taskArn"]])["tasks"]
    assert t["stoppedReason"] == f"Task failed ELB health checks in (target-group {tg})", t["stoppedReason"]
    _wait_for("a replacement healthy", lambda: len(healthy_ports(elb, tg)) == 3 and port not in healthy_ports(elb, tg),
              90, gantry_up)
    answers = [get(url) for _ in range(12)]
    assert all(s == 200 for s, _ in answers), answers


def test_a_rolling_deployment_under_load_drops_no_request(gantry_up, web):
    url, tg = web
    elb, ecs = client(gantry_up, "elbv2"), client(gantry_up, "ecs")
    _wait_for("three healthy targets", lambda: len(healthy_ports(elb, tg)) == 3, 90, gantry_up)
    results: list[tuple[int, str]] = []
    stop = threading.Event()

    def load():
        # Open loop: each of RATE_THREADS paces itself to RATE / RATE_THREADS requests a second,
        # so the load stays about RATE for the whole update-service whatever the answers take.
        period, due = RATE_THREADS / RATE, time.monotonic()
        while not stop.is_set():
            results.append(get(url))
            due += period
            time.sleep(max(0.0, due - time.monotonic()))

    threads = [threading.Thread(target=load) for _ in range(RATE_THREADS)]
    started = time.monotonic()
    for th in threads:
        th.start()
    try:
        ecs.update_service(cluster="default", service="lbweb", taskDefinition=register(ecs, "r2"))

        def rolled() -> bool:
            s = steady(ecs)
            return (len(s["deployments"]) == 1 and s["runningCount"] == 3
                    and len(healthy_ports(elb, tg)) == 3
                    and all(b.endswith(" r2") for _, b in results[-10:]))

        _wait_for("the deployment done and serving r2", rolled, 180, gantry_up, interval=0.5)
    finally:
        stop.set()
        for th in threads:
            th.join()
    rate = len(results) / (time.monotonic() - started)
    print(f"rolling deployment: {len(results)} requests at {rate:.0f} requests/s")
    failed = [r for r in results if r[0] != 200]
    assert not failed, f"{len(failed)} of {len(results)} requests failed: {failed[:5]}"
    revisions = {b.split()[-1] for _, b in results}
    assert revisions == {"r1", "r2"}, revisions
    assert len(results) > 100, len(results)


def test_update_service_moves_the_service_to_another_target_group(gantry_up):
    """UpdateService with new loadBalancers, as on ECS: a new deployment whose tasks register in
    the new group; the old tasks leave the old group (draining) as they are replaced."""
    up = gantry_up
    elb, ecs = client(up, "elbv2"), client(up, "ecs")
    groups = []
    for name in ("move-a", "move-b"):
        groups.append(elb.create_target_group(
            Name=name, Protocol="HTTP", Port=80, TargetType="ip", VpcId="vpc-gantry",
            HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2,
            UnhealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"])
        elb.modify_target_group_attributes(TargetGroupArn=groups[-1], Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": "5"}])
    a, b = groups
    lb = elb.create_load_balancer(Name="move", Subnets=["subnet-gantry"])["LoadBalancers"][0]
    for g in (a, b):
        elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=_free_port(),
                            DefaultActions=[{"Type": "forward", "TargetGroupArn": g}])
    td = register(ecs, "move")
    lbs = lambda g: [{"targetGroupArn": g, "containerName": "web", "containerPort": 80}]  # noqa: E731
    ecs.create_service(cluster="default", serviceName="mover", taskDefinition=td, desiredCount=1,
                       loadBalancers=lbs(a))
    _wait_for("the task healthy in the first group", lambda: len(healthy_ports(elb, a)) == 1, 90, up)
    with pytest.raises(Exception) as e:
        ecs.update_service(cluster="default", service="mover", loadBalancers=[
            {"targetGroupArn": b, "containerName": "nothere", "containerPort": 80}])
    assert "InvalidParameterException" in str(e.value)
    s = ecs.update_service(cluster="default", service="mover", loadBalancers=lbs(b))["service"]
    assert s["loadBalancers"] == lbs(b)
    assert len(s["deployments"]) == 2, s["deployments"]
    _wait_for("the new task healthy in the second group, the first group empty",
              lambda: len(healthy_ports(elb, b)) == 1
              and not elb.describe_target_health(TargetGroupArn=a)["TargetHealthDescriptions"], 120, up)
    running = lambda: ecs.list_tasks(cluster="default", serviceName="mover", desiredStatus="RUNNING")["taskArns"]  # noqa: E731
    arns = _wait_for("the old task stopped", lambda: len(a := running()) == 1 and a, 60, up)
    (left,) = ecs.describe_tasks(cluster="default", tasks=arns)["tasks"]
    (target,) = elb.describe_target_health(TargetGroupArn=b)["TargetHealthDescriptions"]
    assert target["Target"]["Port"] == left["containers"][0]["networkBindings"][0]["hostPort"]
    ecs.delete_service(cluster="default", service="mover", force=True)
