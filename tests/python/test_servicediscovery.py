"""Cloud Map (servicediscovery) through boto3 (which speaks RPC v2 CBOR to it), the AWS CLI v1
with exactly the printed export line, and Debian's AWS CLI v2 (AWS JSON 1.1): namespaces,
services, instances, health filters, operations and Cloud Map's errors; and gantry's DNS
server answering for a private DNS namespace (A, SRV, NXDOMAIN, REFUSED for other names: tests
never forward), asked over UDP and TCP with hand-made queries."""

from __future__ import annotations

import json
import os
import random
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import _free_port

AWS_V2 = Path("/usr/bin/aws")


@pytest.fixture(scope="module")
def sd(gantry):
    return gantry.client("servicediscovery")


def code(e: pytest.ExceptionInfo) -> str:
    return e.value.response["Error"]["Code"]


def namespace(sd, name: str, private: bool = True, **kw) -> str:
    if private:
        op = sd.create_private_dns_namespace(Name=name, Vpc="vpc-gantry", **kw)["OperationId"]
    else:
        op = sd.create_http_namespace(Name=name, **kw)["OperationId"]
    o = sd.get_operation(OperationId=op)["Operation"]
    assert o["Status"] == "SUCCESS" and o["Type"] == "CREATE_NAMESPACE", o
    return o["Targets"]["NAMESPACE"]


def test_namespaces_services_and_their_errors(sd, unique):
    name = unique("ns") + ".internal"
    ns = namespace(sd, name, Description="d", Tags=[{"Key": "team", "Value": "a"}])
    got = sd.get_namespace(Id=ns)["Namespace"]
    assert got["Name"] == name and got["Type"] == "DNS_PRIVATE" and got["ServiceCount"] == 0
    assert got["Properties"]["DnsProperties"]["SOA"]["TTL"] == 15
    assert got["Properties"]["DnsProperties"]["HostedZoneId"].startswith("Z")
    assert got["Arn"].endswith(f":namespace/{ns}")
    # boto3 reads CBOR timestamps (tag 1) as datetimes, as from AWS.
    assert got["CreateDate"].year >= 2024
    with pytest.raises(ClientError) as e:
        sd.create_private_dns_namespace(Name=name, Vpc="vpc-gantry")
    assert code(e) == "NamespaceAlreadyExists"
    with pytest.raises(ClientError) as e:
        sd.create_private_dns_namespace(Name="not a name", Vpc="vpc-gantry")
    assert code(e) == "InvalidInput"
    with pytest.raises(ClientError) as e:
        sd.get_namespace(Id="ns-nothere")
    assert code(e) == "NamespaceNotFound"

    http = namespace(sd, unique("http"), private=False)
    listed = sd.list_namespaces(Filters=[{"Name": "TYPE", "Values": ["HTTP"]}])["Namespaces"]
    assert http in [n["Id"] for n in listed] and ns not in [n["Id"] for n in listed]
    with pytest.raises(ClientError) as e:
        sd.create_service(Name="web", NamespaceId=http,
                          DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 10}]})
    assert code(e) == "InvalidInput"

    svc = sd.create_service(Name="web", NamespaceId=ns,
                            DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 10}, {"Type": "SRV", "TTL": 10}]},
                            HealthCheckCustomConfig={})["Service"]
    assert svc["Type"] == "DNS_HTTP" and svc["DnsConfig"]["RoutingPolicy"] == "MULTIVALUE"
    with pytest.raises(ClientError) as e:
        sd.create_service(Name="web", NamespaceId=ns)
    assert code(e) == "ServiceAlreadyExists"
    assert [s["Id"] for s in sd.list_services(
        Filters=[{"Name": "NAMESPACE_ID", "Values": [ns]}])["Services"]] == [svc["Id"]]
    with pytest.raises(ClientError) as e:
        sd.delete_namespace(Id=ns)
    assert code(e) == "ResourceInUse"
    assert sd.list_tags_for_resource(ResourceARN=got["Arn"])["Tags"] == [{"Key": "team", "Value": "a"}]
    sd.tag_resource(ResourceARN=svc["Arn"], Tags=[{"Key": "tier", "Value": "web"}])
    assert sd.list_tags_for_resource(ResourceARN=svc["Arn"])["Tags"] == [{"Key": "tier", "Value": "web"}]

    with pytest.raises(ClientError) as e:
        sd.register_instance(ServiceId=svc["Id"], InstanceId="i1", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.1"})
    assert code(e) == "InvalidInput" and "AWS_INSTANCE_PORT" in str(e.value)
    sd.register_instance(ServiceId=svc["Id"], InstanceId="i1",
                         Attributes={"AWS_INSTANCE_IPV4": "10.0.0.1", "AWS_INSTANCE_PORT": "80"})
    with pytest.raises(ClientError) as e:
        sd.delete_service(Id=svc["Id"])
    assert code(e) == "ResourceInUse"
    op = sd.deregister_instance(ServiceId=svc["Id"], InstanceId="i1")["OperationId"]
    assert sd.get_operation(OperationId=op)["Operation"]["Type"] == "DEREGISTER_INSTANCE"
    with pytest.raises(ClientError) as e:
        sd.deregister_instance(ServiceId=svc["Id"], InstanceId="i1")
    assert code(e) == "InstanceNotFound"
    sd.delete_service(Id=svc["Id"])
    op = sd.delete_namespace(Id=ns)["OperationId"]
    assert sd.get_operation(OperationId=op)["Operation"]["Status"] == "SUCCESS"
    with pytest.raises(ClientError) as e:
        sd.get_operation(OperationId="nothere")
    assert code(e) == "OperationNotFound"


def test_discover_instances_filters_by_health_and_attributes(sd, unique):
    name = unique("app")
    ns = namespace(sd, name, private=False)
    svc = sd.create_service(Name="api", NamespaceId=ns, HealthCheckCustomConfig={})["Service"]["Id"]
    for i, (zone, health) in enumerate([("a", "HEALTHY"), ("a", "UNHEALTHY"), ("b", "HEALTHY")]):
        sd.register_instance(ServiceId=svc, InstanceId=f"i{i}",
                             Attributes={"AWS_INSTANCE_IPV4": f"10.1.0.{i}", "zone": zone,
                                         "AWS_INIT_HEALTH_STATUS": health})
    found = lambda **kw: sorted(i["InstanceId"] for i in sd.discover_instances(  # noqa: E731
        NamespaceName=name, ServiceName="api", **kw)["Instances"])
    assert found() == ["i0", "i2"]
    assert found(HealthStatus="ALL") == ["i0", "i1", "i2"]
    assert found(HealthStatus="UNHEALTHY") == ["i1"]
    assert found(QueryParameters={"zone": "a"}) == ["i0"]
    assert found(QueryParameters={"zone": "a"}, HealthStatus="ALL", OptionalParameters={"zone": "nowhere"}) == ["i0", "i1"]
    rev = sd.discover_instances_revision(NamespaceName=name, ServiceName="api")["InstancesRevision"]
    sd.update_instance_custom_health_status(ServiceId=svc, InstanceId="i0", Status="UNHEALTHY")
    assert sd.discover_instances_revision(NamespaceName=name, ServiceName="api")["InstancesRevision"] > rev
    assert found(QueryParameters={"zone": "a"}, HealthStatus="HEALTHY_OR_ELSE_ALL") == ["i0", "i1"]
    assert sd.get_instances_health_status(ServiceId=svc)["Status"] == {
        "i0": "UNHEALTHY", "i1": "UNHEALTHY", "i2": "HEALTHY"}
    assert sd.get_instance(ServiceId=svc, InstanceId="i2")["Instance"]["Attributes"]["zone"] == "b"
    page = sd.list_instances(ServiceId=svc, MaxResults=2)
    rest = sd.list_instances(ServiceId=svc, NextToken=page["NextToken"])
    assert [i["Id"] for i in page["Instances"] + rest["Instances"]] == ["i0", "i1", "i2"]
    with pytest.raises(ClientError) as e:
        sd.discover_instances(NamespaceName=name, ServiceName="nothere")
    assert code(e) == "ServiceNotFound"
    with pytest.raises(ClientError) as e:
        sd.discover_instances(NamespaceName="nothere", ServiceName="api")
    assert code(e) == "NamespaceNotFound"


def test_the_cli_with_exactly_the_export_line_and_the_cli_v2(gantry, sd, unique):
    """`aws servicediscovery discover-instances`: botocore sends it to `data-<host>` unless host
    prefixes are off, which the export line does."""
    name = unique("cli")
    ns = namespace(sd, name, private=False)
    svc = sd.create_service(Name="db", NamespaceId=ns)["Service"]["Id"]
    sd.register_instance(ServiceId=svc, InstanceId="db-1", Attributes={"AWS_INSTANCE_IPV4": "10.2.0.1"})
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    script = f"{gantry.export_line}\n\"{sys.executable}\" -m awscli servicediscovery discover-instances " \
             f"--namespace-name {name} --service-name db --output json"
    p = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert [i["InstanceId"] for i in out["Instances"]] == ["db-1"], out
    assert out["Instances"][0]["HealthStatus"] == "UNKNOWN"

    if not AWS_V2.is_file():
        pytest.fail(f"{AWS_V2} is missing: apt-get install awscli (scripts/test does)", pytrace=False)
    # The CLI v2 of Debian (2.9) speaks AWS JSON 1.1 to Cloud Map; it predates the setting that
    # turns host prefixes off, so DiscoverInstances through it would go to `data-127.0.0.1`.
    v2 = subprocess.run([str(AWS_V2), "servicediscovery", "list-instances", "--service-id", svc,
                         "--endpoint-url", gantry.endpoint, "--output", "json"],
                        env=gantry.env, capture_output=True, text=True, timeout=60)
    assert v2.returncode == 0, v2.stderr
    assert json.loads(v2.stdout)["Instances"][0]["Attributes"]["AWS_INSTANCE_IPV4"] == "10.2.0.1"
    bad = subprocess.run([str(AWS_V2), "servicediscovery", "get-namespace", "--id", "ns-none",
                          "--endpoint-url", gantry.endpoint], env=gantry.env, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode != 0 and "NamespaceNotFound" in bad.stderr


# --- the DNS server, asked with hand-made queries ---------------------------------------------

TYPES = {"A": 1, "SOA": 6, "MX": 15, "SRV": 33}


def query(name: str, qtype: str) -> tuple[int, bytes]:
    qid = random.randrange(1 << 16)
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return qid, q + b"\0" + struct.pack(">HH", TYPES[qtype], 1)


def read_name(msg: bytes, i: int) -> tuple[str, int]:
    labels, end = [], None
    while True:
        n = msg[i]
        if n & 0xC0 == 0xC0:
            end = end or i + 2
            i = ((n & 0x3F) << 8) | msg[i + 1]
            continue
        if n == 0:
            return ".".join(labels), end or i + 1
        labels.append(msg[i + 1:i + 1 + n].decode())
        i += 1 + n


def parse(msg: bytes) -> dict:
    qid, flags, qd, an, ns, ar = struct.unpack(">HHHHHH", msg[:12])
    i = 12
    for _ in range(qd):
        _, i = read_name(msg, i)
        i += 4
    sections = []
    for count in (an, ns, ar):
        records = []
        for _ in range(count):
            name, i = read_name(msg, i)
            rtype, _, ttl, length = struct.unpack(">HHIH", msg[i:i + 10])
            data = msg[i + 10:i + 10 + length]
            if rtype == 1:
                value = socket.inet_ntoa(data)
            elif rtype == 33:
                prio, weight, port = struct.unpack(">HHH", data[:6])
                value = (prio, weight, port, read_name(msg, i + 16)[0])
            else:
                value = rtype
            records.append((name, rtype, ttl, value))
            i += 10 + length
        sections.append(records)
    return {"id": qid, "rcode": flags & 0xF, "aa": bool(flags & 0x400), "tc": bool(flags & 0x200),
            "answers": sections[0], "authority": sections[1], "additional": sections[2]}


def ask_udp(port: int, name: str, qtype: str, host: str = "127.0.0.1") -> dict:
    qid, q = query(name, qtype)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(q, (host, port))
        r = parse(s.recv(4096))
    assert r["id"] == qid
    return r


def ask_tcp(port: int, name: str, qtype: str) -> dict:
    qid, q = query(name, qtype)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(struct.pack(">H", len(q)) + q)
        n = struct.unpack(">H", s.recv(2))[0]
        data = b""
        while len(data) < n:
            data += s.recv(n - len(data))
    r = parse(data)
    assert r["id"] == qid
    return r


@pytest.fixture(scope="module")
def dns(launch_module):
    """A server of its own whose DNS server listens on a loopback port: (Gantry, port)."""
    return launch_module


@pytest.fixture(scope="module")
def launch_module(tmp_path_factory, _clean_aws_environment):
    from conftest import _gantry_binary, make_gantry, start_server
    base = tmp_path_factory.mktemp("sd-dns")
    port = _free_port()
    p = start_server(_gantry_binary(), base / "data", base, name="dns",
                     args=("--dns-listen", f"127.0.0.1:{port}"))
    try:
        yield make_gantry(_gantry_binary(), base / "data", p, expect_export_line=True), port
    finally:
        p.stop()


def test_the_dns_server_answers_for_private_namespaces(dns):
    g, port = dns
    sd = g.client("servicediscovery")
    ns = namespace(sd, "shop.local")
    svc = sd.create_service(Name="cart", NamespaceId=ns, HealthCheckCustomConfig={},
                            DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 30}, {"Type": "SRV", "TTL": 20}]})["Service"]["Id"]
    for i, health in enumerate(["HEALTHY", "HEALTHY", "UNHEALTHY"]):
        sd.register_instance(ServiceId=svc, InstanceId=f"task{i}", Attributes={
            "AWS_INSTANCE_IPV4": f"10.9.0.{i + 1}", "AWS_INSTANCE_PORT": str(8000 + i),
            "AWS_INIT_HEALTH_STATUS": health})
    a = ask_udp(port, "cart.shop.local", "A")
    assert a["rcode"] == 0 and a["aa"]
    assert sorted(r[3] for r in a["answers"]) == ["10.9.0.1", "10.9.0.2"]
    assert {r[2] for r in a["answers"]} == {30}
    srv = ask_tcp(port, "Cart.Shop.Local", "SRV")
    assert sorted(r[3] for r in srv["answers"]) == [(1, 1, 8000, "task0.cart.shop.local"),
                                                     (1, 1, 8001, "task1.cart.shop.local")]
    assert sorted(r[3] for r in srv["additional"]) == ["10.9.0.1", "10.9.0.2"]
    assert ask_udp(port, "task2.cart.shop.local", "A")["answers"][0][3] == "10.9.0.3"

    # A deregistered instance is gone from the next answer (TTLs are the clients' business).
    sd.deregister_instance(ServiceId=svc, InstanceId="task0")
    assert [r[3] for r in ask_udp(port, "cart.shop.local", "A")["answers"]] == ["10.9.0.2"]
    sd.update_instance_custom_health_status(ServiceId=svc, InstanceId="task1", Status="UNHEALTHY")
    # None healthy: every instance is answered, as Route 53 does.
    assert sorted(r[3] for r in ask_udp(port, "cart.shop.local", "A")["answers"]) == ["10.9.0.2", "10.9.0.3"]

    nx = ask_udp(port, "nothing.shop.local", "A")
    assert nx["rcode"] == 3 and nx["authority"][0][1] == 6
    nodata = ask_udp(port, "cart.shop.local", "MX")
    assert nodata["rcode"] == 0 and not nodata["answers"] and nodata["authority"][0][2] == 15
    assert ask_udp(port, "shop.local", "SOA")["answers"][0][1] == 6
    # Outside every namespace, with forwarding off (as in every test): REFUSED.
    assert ask_udp(port, "example.com", "A")["rcode"] == 5
    # Garbage gets no crash: the server still answers afterwards.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"\x12\x34garbage-that-is-not-dns", ("127.0.0.1", port))
        s.settimeout(5)
        assert s.recv(512)[:2] == b"\x12\x34"
    assert ask_udp(port, "task2.cart.shop.local", "A")["rcode"] == 0
