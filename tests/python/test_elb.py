"""Elastic Load Balancing (v2) through boto3 and the AWS CLI: load balancers, target groups,
listeners and targets with ELB's shapes and errors, and the data plane in front of real
containers (busybox httpd): round robin across healthy targets, X-Forwarded-* headers, a killed
target leaving the rotation through its health checks, draining on deregistration, fixed
responses, and a network load balancer forwarding TCP. The server's ELB second lasts 100 ms
(GANTRY_ELB_SECOND), so a 5-second health check interval is half a second."""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import _free_port
from test_walkthrough_tasks import IMAGE, busybox_image, docker  # noqa: F401

# A page naming the container, and a CGI script echoing what the proxy added.
SITE = (
    "mkdir -p /www/cgi-bin /www/api && echo {name} > /www/index.html && echo api-{name} > /www/api/index.html && "
    "printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\n"
    "echo \"xff=$HTTP_X_FORWARDED_FOR proto=$HTTP_X_FORWARDED_PROTO port=$HTTP_X_FORWARDED_PORT\"\\n' "
    "> /www/cgi-bin/echo && chmod +x /www/cgi-bin/echo && exec httpd -f -p 80 -h /www"
)


@pytest.fixture(scope="module")
def elb(gantry):
    return gantry.client("elbv2")


def code(e: pytest.ExceptionInfo) -> str:
    return e.value.response["Error"]["Code"]


@pytest.fixture(scope="module")
def webs(busybox_image):
    """Three httpd containers on loopback host ports: [(name, container id, port)]."""
    started = []
    try:
        for i in range(3):
            name = f"web-{i}"
            cid = docker("run", "-d", "--rm", "-p", "127.0.0.1::80", IMAGE, "sh", "-c",
                         SITE.format(name=name)).stdout.strip()
            port = int(docker("port", cid, "80/tcp").stdout.strip().splitlines()[0].rsplit(":", 1)[1])
            started.append((name, cid, port))
        yield started
    finally:
        for _, cid, _ in started:
            docker("rm", "-f", cid, check=False)


def wait_for(what, check, timeout=60.0, interval=0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"{what} (last seen: {last!r})", pytrace=False)


def states(elb, tg: str) -> dict:
    out = elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
    return {d["Target"]["Port"]: d["TargetHealth"] for d in out}


def get(url: str, host: str | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode().strip()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode().strip()
    except OSError as e:
        # Refused, say, before a new listener's socket is open (listeners open asynchronously).
        return 0, str(e)


def group(elb, unique, protocol="HTTP", **kw) -> str:
    return elb.create_target_group(
        Name=unique("tg")[:32], Protocol=protocol, Port=80, TargetType="ip", VpcId="vpc-gantry",
        HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2,
        UnhealthyThresholdCount=2, **kw)["TargetGroups"][0]["TargetGroupArn"]


def test_shapes_and_errors(elb, unique):
    name = unique("lb")[:32]
    lb = elb.create_load_balancer(Name=name, Subnets=["subnet-gantry"])["LoadBalancers"][0]
    assert lb["LoadBalancerArn"].startswith("arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/")
    assert (lb["Type"], lb["Scheme"], lb["State"]["Code"]) == ("application", "internet-facing", "active")
    assert lb["DNSName"] == "127.0.0.1"
    # The same create again answers the same balancer; other settings are refused.
    again = elb.create_load_balancer(Name=name, Subnets=["subnet-gantry"])["LoadBalancers"][0]
    assert again["LoadBalancerArn"] == lb["LoadBalancerArn"]
    with pytest.raises(ClientError) as e:
        elb.create_load_balancer(Name=name, Subnets=["subnet-gantry"], Scheme="internal")
    assert code(e) == "DuplicateLoadBalancerName"
    with pytest.raises(ClientError) as e:
        elb.describe_load_balancers(Names=["no-such-lb"])
    assert code(e) == "LoadBalancerNotFound"
    tg = group(elb, unique, HealthCheckPath="/index.html", Matcher={"HttpCode": "200-299"})
    g = elb.describe_target_groups(TargetGroupArns=[tg])["TargetGroups"][0]
    assert (g["HealthCheckPath"], g["Matcher"]["HttpCode"], g["TargetType"]) == ("/index.html", "200-299", "ip")
    assert g["LoadBalancerArns"] == []
    with pytest.raises(ClientError) as e:
        group(elb, unique, Matcher={"HttpCode": "600"})
    assert code(e) == "ValidationError"
    port = _free_port()
    listener = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                                   DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])["Listeners"][0]
    assert listener["DefaultActions"][0]["TargetGroupArn"] == tg
    with pytest.raises(ClientError) as e:
        elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    assert code(e) == "DuplicateListener"
    assert elb.describe_target_groups(LoadBalancerArn=lb["LoadBalancerArn"])["TargetGroups"][0]["TargetGroupArn"] == tg
    with pytest.raises(ClientError) as e:
        elb.delete_target_group(TargetGroupArn=tg)
    assert code(e) == "ResourceInUse"
    attrs = {a["Key"]: a["Value"] for a in elb.modify_target_group_attributes(
        TargetGroupArn=tg, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "5"}])["Attributes"]}
    assert attrs["deregistration_delay.timeout_seconds"] == "5"
    assert attrs["load_balancing.algorithm.type"] == "round_robin"
    with pytest.raises(ClientError) as e:
        elb.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[{"Key": "nope", "Value": "1"}])
    assert code(e) == "ValidationError"
    elb.add_tags(ResourceArns=[lb["LoadBalancerArn"]], Tags=[{"Key": "team", "Value": "web"}])
    tags = elb.describe_tags(ResourceArns=[lb["LoadBalancerArn"]])["TagDescriptions"][0]["Tags"]
    assert tags == [{"Key": "team", "Value": "web"}]
    elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    assert elb.describe_target_groups(TargetGroupArns=[tg])["TargetGroups"][0]["LoadBalancerArns"] == []
    elb.delete_target_group(TargetGroupArn=tg)


def test_requests_go_round_robin_to_healthy_targets_and_a_killed_one_leaves(elb, unique, webs, aws_cli):
    lb = elb.create_load_balancer(Name=unique("web")[:32], Subnets=["subnet-gantry"])["LoadBalancers"][0]
    tg = group(elb, unique)
    elb.modify_target_group_attributes(
        TargetGroupArn=tg, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "20"}])
    port = _free_port()
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    # Not yet used by a listener? It is now; registered targets start initial.
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": p} for _, _, p in webs])
    first = states(elb, tg)
    assert {s["State"] for s in first.values()} <= {"initial", "healthy"}
    wait_for("every target healthy",
             lambda: all(s["State"] == "healthy" for s in states(elb, tg).values()) and len(states(elb, tg)) == 3)
    url = f"http://{lb['DNSName']}:{port}/"
    seen = [get(url) for _ in range(30)]
    assert all(s == 200 for s, _ in seen), seen
    counts = {name: sum(1 for _, b in seen if b == name) for name, _, _ in webs}
    assert all(n == 10 for n in counts.values()), counts
    status, echo = get(f"{url}cgi-bin/echo")
    assert status == 200 and echo == f"xff=127.0.0.1 proto=http port={port}", echo

    # The AWS CLI sees the same.
    out = aws_cli("elbv2", "describe-target-health", "--target-group-arn", tg)
    assert {d["TargetHealth"]["State"] for d in out["TargetHealthDescriptions"]} == {"healthy"}

    # A killed target fails its checks and leaves the rotation.
    dead_name, dead_id, dead_port = webs[0]
    docker("rm", "-f", dead_id)
    down = wait_for("the killed target unhealthy", lambda: states(elb, tg)[dead_port]["State"] == "unhealthy"
                    and states(elb, tg)[dead_port])
    assert down["Reason"] == "Target.FailedHealthChecks", down
    answers = [get(url) for _ in range(20)]
    assert all(s == 200 for s, _ in answers), answers
    assert dead_name not in {b for _, b in answers}

    # A deregistered target drains for the delay (20 of the server's short seconds), then goes.
    _, _, leaving = webs[1]
    elb.deregister_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": leaving}])
    draining = states(elb, tg)[leaving]
    assert (draining["State"], draining["Reason"]) == ("draining", "Target.DeregistrationInProgress")
    assert {b for _, b in (get(url) for _ in range(6))} == {webs[2][0]}
    wait_for("the drained target gone", lambda: leaving not in states(elb, tg))
    with pytest.raises(ClientError) as e:
        elb.deregister_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": leaving}])
    assert code(e) == "InvalidTarget"


def test_fixed_responses_and_a_network_load_balancer_forwarding_tcp(elb, unique, webs):
    alb = elb.create_load_balancer(Name=unique("fixed")[:32], Subnets=["subnet-gantry"])["LoadBalancers"][0]
    port = _free_port()
    elb.create_listener(LoadBalancerArn=alb["LoadBalancerArn"], Protocol="HTTP", Port=port, DefaultActions=[{
        "Type": "fixed-response",
        "FixedResponseConfig": {"StatusCode": "418", "ContentType": "text/plain", "MessageBody": "teapot"}}])
    assert wait_for("the fixed response", lambda: get(f"http://127.0.0.1:{port}/x") == (418, "teapot") or None)

    nlb = elb.create_load_balancer(Name=unique("net")[:32], Type="network",
                                   Subnets=["subnet-gantry"])["LoadBalancers"][0]
    assert nlb["LoadBalancerArn"].split(":")[5].startswith("loadbalancer/net/")
    tg = group(elb, unique, protocol="TCP")
    with pytest.raises(ClientError) as e:
        elb.create_listener(LoadBalancerArn=alb["LoadBalancerArn"], Protocol="HTTP", Port=_free_port(),
                            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    assert code(e) == "InvalidConfigurationRequest"
    live = webs[2]
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": live[2]}])
    nport = _free_port()
    elb.create_listener(LoadBalancerArn=nlb["LoadBalancerArn"], Protocol="TCP", Port=nport,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    wait_for("the TCP target healthy", lambda: states(elb, tg)[live[2]]["State"] == "healthy")
    with socket.create_connection(("127.0.0.1", nport), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        answer = b""
        while chunk := s.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.") and answer.rstrip().endswith(live[0].encode()), answer


def test_rules_send_paths_and_hosts_elsewhere(elb, unique, webs):
    """Run after the test above: webs[1] and webs[2] are up (webs[0] was killed)."""
    lb = elb.create_load_balancer(Name=unique("rules")[:32], Subnets=["subnet-gantry"])["LoadBalancers"][0]
    web_tg, api_tg = group(elb, unique), group(elb, unique)
    elb.register_targets(TargetGroupArn=web_tg, Targets=[{"Id": "127.0.0.1", "Port": webs[1][2]}])
    elb.register_targets(TargetGroupArn=api_tg, Targets=[{"Id": "127.0.0.1", "Port": webs[2][2]}])
    port = _free_port()
    listener = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                                   DefaultActions=[{"Type": "forward", "TargetGroupArn": web_tg}])["Listeners"][0]["ListenerArn"]
    api = elb.create_rule(ListenerArn=listener, Priority=10,
                          Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/api/*"]}}],
                          Actions=[{"Type": "forward", "TargetGroupArn": api_tg}])["Rules"][0]
    assert api["Priority"] == "10" and api["Conditions"][0]["Values"] == ["/api/*"]
    with pytest.raises(ClientError) as e:
        elb.create_rule(ListenerArn=listener, Priority=10, Conditions=[{"Field": "path-pattern", "Values": ["/x"]}],
                        Actions=[{"Type": "forward", "TargetGroupArn": api_tg}])
    assert code(e) == "PriorityInUse"
    elb.create_rule(ListenerArn=listener, Priority=5,
                    Conditions=[{"Field": "host-header", "HostHeaderConfig": {"Values": ["admin.*"]}}],
                    Actions=[{"Type": "fixed-response", "FixedResponseConfig": {
                        "StatusCode": "403", "ContentType": "text/plain", "MessageBody": "no admin here"}}])
    rules = elb.describe_rules(ListenerArn=listener)["Rules"]
    assert [(r["Priority"], r["IsDefault"]) for r in rules] == [("5", False), ("10", False), ("default", True)]
    for tg in (web_tg, api_tg):
        wait_for("the rule's targets healthy", lambda tg=tg: [s["State"] for s in states(elb, tg).values()] == ["healthy"])
    url = f"http://127.0.0.1:{port}/"
    assert get(url) == (200, webs[1][0])
    assert get(f"{url}api/") == (200, f"api-{webs[2][0]}")
    assert get(url, host="admin.example.com") == (403, "no admin here")
    # Used by a rule, the API group is in use; without the rule, /api/ goes to the default.
    with pytest.raises(ClientError) as e:
        elb.delete_target_group(TargetGroupArn=api_tg)
    assert code(e) == "ResourceInUse"
    elb.delete_rule(RuleArn=api["RuleArn"])
    assert get(f"{url}api/") == (200, f"api-{webs[1][0]}")
    with pytest.raises(ClientError) as e:
        elb.delete_rule(RuleArn=rules[-1]["RuleArn"])
    assert code(e) == "OperationNotPermitted"


def test_sticky_groups_hold_a_client_to_its_target(elb, unique, webs):
    """After the tests above: webs[1] and webs[2] are up. With lb_cookie stickiness on, a client
    that sends back the AWSALB cookie stays on one target; one that does not goes round."""
    lb = elb.create_load_balancer(Name=unique("sticky")[:32], Subnets=["subnet-gantry"])["LoadBalancers"][0]
    tg = group(elb, unique)
    elb.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[
        {"Key": "stickiness.enabled", "Value": "true"}, {"Key": "stickiness.lb_cookie.duration_seconds", "Value": "60"}])
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": w[2]} for w in webs[1:]])
    port = _free_port()
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    wait_for("both targets healthy", lambda: [s["State"] for s in states(elb, tg).values()] == ["healthy"] * 2)
    url = f"http://127.0.0.1:{port}/"
    with urllib.request.urlopen(url, timeout=10) as r:
        first = r.read().decode().strip()
        cookies = r.headers.get_all("Set-Cookie")
    assert any(c.startswith("AWSALB=") and "Max-Age=60" in c for c in cookies), cookies
    token = next(c for c in cookies if c.startswith("AWSALB=")).split(";")[0]
    held = []
    for _ in range(10):
        req = urllib.request.Request(url, headers={"Cookie": f"other=1; {token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            held.append(r.read().decode().strip())
    assert held == [first] * 10, held
    assert {get(url)[1] for _ in range(10)} == {webs[1][0], webs[2][0]}


def nlb_get(port: int, source: str) -> str:
    """The page a TCP connection from `source` (a loopback address) gets through an NLB."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        answer = b""
        while chunk := s.recv(4096):
            answer += chunk
    return answer.decode().rstrip().rsplit("\n", 1)[-1].strip()


def test_source_ip_stickiness_and_slow_start(elb, unique, webs):
    """After the tests above: webs[1] and webs[2] are up. A network load balancer's group with
    `source_ip` stickiness sends each client address to one target; the attributes follow ELB's
    rules (no cookie stickiness or slow start on TCP groups, no source_ip on HTTP ones); an HTTP
    group with slow start still serves from every target."""
    tcp, http = group(elb, unique, protocol="TCP"), group(elb, unique)
    for tg, key, value in [(tcp, "stickiness.type", "lb_cookie"), (tcp, "slow_start.duration_seconds", "30"),
                           (http, "stickiness.type", "source_ip")]:
        with pytest.raises(ClientError) as e:
            elb.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[{"Key": key, "Value": value}])
        assert code(e) == "ValidationError", (key, value)
    attrs = {a["Key"]: a["Value"] for a in elb.describe_target_group_attributes(TargetGroupArn=tcp)["Attributes"]}
    assert attrs["stickiness.type"] == "source_ip"
    elb.modify_target_group_attributes(TargetGroupArn=tcp, Attributes=[{"Key": "stickiness.enabled", "Value": "true"}])
    elb.register_targets(TargetGroupArn=tcp, Targets=[{"Id": "127.0.0.1", "Port": w[2]} for w in webs[1:]])
    nlb = elb.create_load_balancer(Name=unique("src")[:32], Type="network", Subnets=["subnet-gantry"])["LoadBalancers"][0]
    port = _free_port()
    elb.create_listener(LoadBalancerArn=nlb["LoadBalancerArn"], Protocol="TCP", Port=port,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": tcp}])
    wait_for("both TCP targets healthy", lambda: [s["State"] for s in states(elb, tcp).values()] == ["healthy"] * 2)
    wait_for("the NLB listening", lambda: get(f"http://127.0.0.1:{port}/")[0] == 200 or None)
    seen = {}
    for i in range(2, 22):
        source = f"127.0.0.{i}"
        pages = {nlb_get(port, source) for _ in range(4)}
        assert len(pages) == 1, (source, pages)
        seen[source] = pages.pop()
    # Twenty addresses spread over both targets, each held to one.
    assert set(seen.values()) == {webs[1][0], webs[2][0]}, seen

    elb.modify_target_group_attributes(TargetGroupArn=http, Attributes=[
        {"Key": "slow_start.duration_seconds", "Value": "30"}])
    elb.register_targets(TargetGroupArn=http, Targets=[{"Id": "127.0.0.1", "Port": w[2]} for w in webs[1:]])
    alb = elb.create_load_balancer(Name=unique("slow")[:32], Subnets=["subnet-gantry"])["LoadBalancers"][0]
    aport = _free_port()
    elb.create_listener(LoadBalancerArn=alb["LoadBalancerArn"], Protocol="HTTP", Port=aport,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": http}])
    wait_for("both HTTP targets healthy", lambda: [s["State"] for s in states(elb, http).values()] == ["healthy"] * 2)
    # 30 ELB seconds are 3 s here: after them, both targets serve.
    wait_for("both targets serving after the slow start",
             lambda: {get(f"http://127.0.0.1:{aport}/")[1] for _ in range(20)} == {webs[1][0], webs[2][0]}, 30)


def make_certificate(tmp_path, cn: str = "web.example.test"):
    """A self-signed RSA certificate and its key (openssl), as PEM files."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "2", "-subj", f"/CN={cn}",
                    "-addext", f"subjectAltName=DNS:{cn},DNS:www.{cn}"], check=True, capture_output=True)
    return cert, key


def curl(url: str, *flags: str) -> tuple[str, str]:
    """(HTTP version, body) of a GET through curl, certificate unchecked."""
    p = subprocess.run(["curl", "-sk", "--max-time", "10", "-w", "\\n%{http_version}", *flags, url],
                       capture_output=True, text=True, timeout=30)
    body, _, version = p.stdout.rpartition("\n")
    return version, body.strip()


def test_https_listeners_serve_an_imported_certificate_over_http2_and_http1(gantry, elb, unique, webs, aws_cli, tmp_path):
    """After the tests above: webs[1] is up. A certificate imported into ACM (boto3 and the
    CLI) serves an HTTPS listener: HTTP/2 for clients that ask for it in ALPN, HTTP/1.1 for
    others, X-Forwarded-Proto https; ELB's and ACM's errors for what is missing or wrong."""
    acm = gantry.client("acm")
    cert, key = make_certificate(tmp_path)
    arn = acm.import_certificate(Certificate=cert.read_bytes(), PrivateKey=key.read_bytes(),
                                 Tags=[{"Key": "app", "Value": "web"}])["CertificateArn"]
    assert arn.startswith(f"arn:aws:acm:{gantry.region}:{gantry.account_id}:certificate/")
    d = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert (d["DomainName"], d["Status"], d["Type"], d["KeyAlgorithm"]) == (
        "web.example.test", "ISSUED", "IMPORTED", "RSA_2048"), d
    assert d["SubjectAlternativeNames"] == ["web.example.test", "www.web.example.test"]
    assert d["NotAfter"] > d["NotBefore"]
    assert acm.get_certificate(CertificateArn=arn)["Certificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert arn in [c["CertificateArn"] for c in acm.list_certificates()["CertificateSummaryList"]]
    assert acm.list_tags_for_certificate(CertificateArn=arn)["Tags"] == [{"Key": "app", "Value": "web"}]
    _, other_key = make_certificate(tmp_path / "other", cn="other.example.test")
    with pytest.raises(ClientError) as e:
        acm.import_certificate(Certificate=cert.read_bytes(), PrivateKey=other_key.read_bytes())
    assert code(e) == "ValidationException" and "does not match" in str(e.value)
    cli = aws_cli("acm", "import-certificate", "--certificate", f"fileb://{cert}", "--private-key", f"fileb://{key}")
    assert aws_cli("acm", "describe-certificate", "--certificate-arn", cli["CertificateArn"])[
        "Certificate"]["DomainName"] == "web.example.test"

    tg = group(elb, unique)
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": webs[1][2]}])
    lb = elb.create_load_balancer(Name=unique("tls")[:32], Subnets=["subnet-gantry"])["LoadBalancers"][0]
    forward = [{"Type": "forward", "TargetGroupArn": tg}]
    with pytest.raises(ClientError) as e:
        elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTPS", Port=_free_port(),
                            DefaultActions=forward)
    assert code(e) == "ValidationError"
    with pytest.raises(ClientError) as e:
        elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTPS", Port=_free_port(),
                            Certificates=[{"CertificateArn": arn + "x"}], DefaultActions=forward)
    assert code(e) == "CertificateNotFound"
    port = _free_port()
    (l,) = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTPS", Port=port,
                               Certificates=[{"CertificateArn": arn}], DefaultActions=forward)["Listeners"]
    assert (l["Protocol"], l["SslPolicy"], l["Certificates"]) == ("HTTPS", "ELBSecurityPolicy-2016-08",
                                                                  [{"CertificateArn": arn}])
    wait_for("the target healthy", lambda: states(elb, tg)[webs[1][2]]["State"] == "healthy")
    url = f"https://127.0.0.1:{port}/"
    assert wait_for("HTTP/2 through the HTTPS listener",
                    lambda: curl(url, "--http2") == ("2", webs[1][0]) or None, 30)
    assert curl(url, "--http1.1") == ("1.1", webs[1][0])
    version, echoed = curl(url + "cgi-bin/echo", "--http2")
    assert version == "2" and f"proto=https port={port}" in echoed, echoed
    # The listener serves the imported certificate: a client trusting only it, asking for its
    # name, completes the handshake.
    ctx = ssl.create_default_context(cafile=str(cert))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw_sock:
        with ctx.wrap_socket(raw_sock, server_hostname="web.example.test") as s:
            assert s.getpeercert()["subject"] == ((("commonName", "web.example.test"),),)
    # More certificates, chosen by SNI (AddListenerCertificates), and a re-imported default
    # reaching the running listener.
    api_cert, api_key = make_certificate(tmp_path / "api", cn="api.example.test")
    api = acm.import_certificate(Certificate=api_cert.read_bytes(), PrivateKey=api_key.read_bytes())["CertificateArn"]
    elb.add_listener_certificates(ListenerArn=l["ListenerArn"], Certificates=[{"CertificateArn": api}])
    listed = elb.describe_listener_certificates(ListenerArn=l["ListenerArn"])["Certificates"]
    assert sorted((c["CertificateArn"], c["IsDefault"]) for c in listed) == sorted([(arn, True), (api, False)])

    def served(name: str, trust) -> str:
        ctx = ssl.create_default_context(cafile=str(trust))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw_sock:
            with ctx.wrap_socket(raw_sock, server_hostname=name) as s:
                return dict(x[0] for x in s.getpeercert()["subject"])["commonName"]

    assert served("api.example.test", api_cert) == "api.example.test"
    assert served("web.example.test", cert) == "web.example.test"
    with pytest.raises(ClientError) as e:
        elb.remove_listener_certificates(ListenerArn=l["ListenerArn"], Certificates=[{"CertificateArn": arn}])
    assert code(e) == "ValidationError"
    new_cert, new_key = make_certificate(tmp_path / "renewed")
    acm.import_certificate(CertificateArn=arn, Certificate=new_cert.read_bytes(), PrivateKey=new_key.read_bytes())
    assert served("web.example.test", new_cert) == "web.example.test"
    elb.remove_listener_certificates(ListenerArn=l["ListenerArn"], Certificates=[{"CertificateArn": api}])
    assert [c["CertificateArn"] for c in elb.describe_listener_certificates(
        ListenerArn=l["ListenerArn"])["Certificates"]] == [arn]
