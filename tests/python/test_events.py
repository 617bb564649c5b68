"""ECS's events, in EventBridge's envelope, from `gantry events` (the server's event stream):
task state changes as a task runs and stops, the container instance's registration, a
service's steady state and its deployment's completion; the stream refuses unsigned callers."""

from __future__ import annotations

import json
import subprocess
import threading
import urllib.error
import urllib.request

from conftest import _server_env
from test_walkthrough_tasks import IMAGE, _wait_for, busybox_image, docker, gantry_up  # noqa: F401


def cli(up, *args: str) -> list[str]:
    return [str(up.binary), "events", "--data-dir", str(up.data_dir), "--listen", up.listen, *args]


def test_events_tell_of_tasks_instances_services_and_deployments(gantry_up):
    up = gantry_up
    ecs = up.client()
    proc = subprocess.Popen(cli(up, "-f", "--json", "--cluster", "default"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_server_env(), stdin=subprocess.DEVNULL)
    events: list[dict] = []
    threading.Thread(target=lambda: events.extend(json.loads(x) for x in iter(proc.stdout.readline, "")),
                     daemon=True).start()
    try:
        ecs.register_task_definition(family="evented", containerDefinitions=[{
            "name": "app", "image": IMAGE, "memory": 32, "command": ["sh", "-c", "sleep 1"]}])
        arn = ecs.run_task(cluster="default", taskDefinition="evented")["tasks"][0]["taskArn"]

        def states():
            got = [(e["detail"]["lastStatus"], e["detail"]["desiredStatus"]) for e in events
                   if e["detail-type"] == "ECS Task State Change" and e["resources"] == [arn]]
            return ("STOPPED", "STOPPED") in got and got

        got = _wait_for("no STOPPED task state change", states, 60, up)
        assert got[0][0] in ("PROVISIONING", "PENDING") and ("RUNNING", "RUNNING") in got, got
        e = next(e for e in events if e["resources"] == [arn])
        assert (e["version"], e["source"], e["account"], e["region"]) == ("0", "aws.ecs", "000000000000", "us-east-1")
        assert e["detail"]["taskArn"] == arn and e["detail"]["clusterArn"].endswith(":cluster/default")
        assert e["time"].endswith("Z") and len(e["id"]) == 36 and e["detail"]["createdAt"].endswith("Z")

        ecs.register_task_definition(family="evented-svc", containerDefinitions=[{
            "name": "app", "image": IMAGE, "memory": 32, "command": ["sleep", "120"]}])
        svc = ecs.create_service(cluster="default", serviceName="evented", taskDefinition="evented-svc",
                                 desiredCount=1)["service"]["serviceArn"]

        def service_events():
            names = {e["detail"].get("eventName") for e in events if e["resources"] == [svc]}
            return {"SERVICE_STEADY_STATE", "SERVICE_DEPLOYMENT_COMPLETED"} <= names and names

        _wait_for("no steady state or completed deployment", service_events, 90, up)
        ecs.update_service(cluster="default", service="evented", desiredCount=0)
        ecs.delete_service(cluster="default", service="evented", force=True)
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    # Without -f: the recent events, then it ends; filtered by detail-type.
    p = subprocess.run(cli(up, "--detail-type", "ECS Container Instance State Change"), capture_output=True,
                       text=True, timeout=30, env=_server_env())
    assert p.returncode == 0, p.stderr
    assert up.instance_arn in p.stdout and "ACTIVE" in p.stdout, p.stdout

    # Unsigned: refused in gantry's error shape.
    try:
        urllib.request.urlopen(f"http://{up.listen}/gantry/v1/events", timeout=10)
        raise AssertionError("an unsigned event stream was served")
    except urllib.error.HTTPError as err:
        assert err.code == 403 and json.loads(err.read())["__type"] == "MissingAuthenticationTokenException"
