"""The front door: one port, a table of services, each answered in its own protocol.

ECS speaks AWS JSON 1.1, gantry's own GantryV1 operations AWS JSON 1.0, STS the Query protocol
with XML answers; a request for a service gantry does not serve gets a 400 naming it."""

import subprocess
import urllib.parse
import xml.etree.ElementTree as ET

import boto3
import pytest
from botocore.exceptions import ClientError

STS_NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"


def query(raw, params, *, service="sts", **sign_kwargs):
    body = urllib.parse.urlencode(params).encode()
    headers = raw.sign(
        None, body, service=service, headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, **sign_kwargs
    )
    return raw.send(headers, body)


def xml_error(r):
    root = ET.fromstring(r.body)
    assert root.tag.endswith("ErrorResponse"), r
    err = root.find("{*}Error")
    return {child.tag.split("}")[-1]: child.text for child in err}, root.find("{*}RequestId").text


def test_sts_get_caller_identity_through_boto3(gantry):
    sts = boto3.session.Session().client(
        "sts",
        region_name=gantry.region,
        endpoint_url=gantry.endpoint,
        aws_access_key_id=gantry.access_key_id,
        aws_secret_access_key=gantry.secret_access_key,
    )
    who = sts.get_caller_identity()
    assert who["Account"] == "000000000000"
    assert who["Arn"] == "arn:aws:iam::000000000000:root"
    assert who["UserId"] == "000000000000"
    assert who["ResponseMetadata"]["RequestId"]


def test_sts_through_the_cli_with_only_the_export_line(aws_cli):
    out = aws_cli("sts", "get-caller-identity")
    assert out["Arn"] == "arn:aws:iam::000000000000:root"


def test_sts_from_another_region_is_the_same_global_service(gantry):
    sts = boto3.session.Session().client(
        "sts",
        region_name="eu-west-1",
        endpoint_url=gantry.endpoint,
        aws_access_key_id=gantry.access_key_id,
        aws_secret_access_key=gantry.secret_access_key,
    )
    assert sts.get_caller_identity()["Account"] == "000000000000"


def test_query_errors_are_xml_error_responses(raw):
    r = query(raw, {"Action": "GetCallerIdentity", "Version": "2011-06-15"}, secret_key="x" * 40)
    assert r.status == 403, r
    assert r.headers["content-type"].startswith("text/xml")
    err, rid = xml_error(r)
    assert (err["Type"], err["Code"]) == ("Sender", "SignatureDoesNotMatch")
    assert rid == r.headers["x-amzn-requestid"]

    r = query(raw, {"Action": "GetCallerIdentity", "Version": "2011-06-15"}, access_key="AKGTNOSUCHKEY0000000")
    assert r.status == 403, r
    assert xml_error(r)[0]["Code"] == "InvalidClientTokenId"


def test_query_unknown_action_and_unbuilt_action(raw):
    r = query(raw, {"Action": "FlyToTheMoon", "Version": "2011-06-15"})
    assert r.status == 400, r
    err, _ = xml_error(r)
    assert err["Code"] == "InvalidAction" and "FlyToTheMoon" in err["Message"]
    r = query(raw, {"Action": "AssumeRoleWithSAML", "Version": "2011-06-15"})
    assert r.status == 400, r
    assert "does not serve the STS action AssumeRoleWithSAML" in xml_error(r)[0]["Message"]


def test_query_routes_by_the_signed_service_not_the_action(raw):
    """DescribeAccountLimits is both ELBv2's and CloudFormation's: the scope decides. ELB
    answers it; CloudFormation is not served."""
    r = query(raw, {"Action": "DescribeAccountLimits", "Version": "2015-12-01"}, service="elasticloadbalancing")
    assert r.status == 200, r
    assert b"<Name>application-load-balancers</Name>" in r.body, r.body
    r = query(raw, {"Action": "DescribeAccountLimits", "Version": "2010-05-15"}, service="cloudformation")
    assert r.status == 400, r
    err, _ = xml_error(r)
    assert err["Code"] == "InvalidAction"
    assert "'cloudformation'" in err["Message"], err


def test_unknown_json_service_is_a_400_naming_it(raw):
    r = raw.call("DynamoDB_20120810.ListTables", {}, service="dynamodb")
    assert r.status == 400, r
    assert r.json["__type"] == "UnknownOperationException"
    assert "DynamoDB_20120810" in r.json["message"]


def test_unknown_cbor_service_is_a_cbor_400(raw):
    headers = raw.sign(None, b"", service="monitoring", headers={"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor"}, path="/service/Nope/operation/ListMetrics")
    r = raw.send(headers, b"", path="/service/Nope/operation/ListMetrics")
    assert r.status == 400, r
    assert r.headers["content-type"] == "application/cbor"
    assert r.headers["smithy-protocol"] == "rpc-v2-cbor"
    assert b"__type" in r.body and b"Nope" in r.body


def test_gantry_v1_speaks_json_1_0(raw):
    def call(op, body, service="gantry"):
        headers = raw.sign(f"GantryV1.{op}", body, service=service, headers={"Content-Type": "application/x-amz-json-1.0"})
        return raw.send(headers, body)

    r = call("DescribeSecurityGroups", b"{}")
    assert r.status == 200, r
    assert r.headers["content-type"] == "application/x-amz-json-1.0"
    assert isinstance(r.json["securityGroups"], list)
    r = call("FlyToTheMoon", b"{}")
    assert r.status == 400, r
    assert r.json["__type"] == "UnknownOperationException"
    assert r.headers["x-amzn-errortype"] == "UnknownOperationException"
    assert r.headers["content-type"] == "application/x-amz-json-1.0"
    r = call("DeleteSecurityGroup", b'{"groupId": "sg-doesnotexist"}')
    assert (r.status, r.json["__type"]) == (400, "ResourceNotFoundException"), r
    # Signed for ECS, sent to GantryV1: the signature names the wrong service.
    r = call("DescribeSecurityGroups", b"{}", service="ecs")
    assert (r.status, r.json["__type"]) == (403, "InvalidSignatureException"), r


def test_metrics_name_the_service(gantry, raw):
    import urllib.request

    query(raw, {"Action": "GetCallerIdentity", "Version": "2011-06-15"})
    with urllib.request.urlopen(f"{gantry.endpoint}/metrics", timeout=5) as r:
        text = r.read().decode()
    assert 'gantry_api_requests_total{service="sts",operation="GetCallerIdentity",outcome="ok"}' in text
