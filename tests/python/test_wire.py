"""The raw wire: hand-written bodies signed with botocore's SigV4Auth, and the authentication
errors an AWS front-end answers."""

import datetime
import json

import pytest
from botocore.exceptions import ClientError

SEED_STRING_NUMBERS = (
    '{"family": "webserver", "containerDefinitions": [{"name": "web", "image": "nginx", '
    '"memory": "100", "cpu": "99"}], "requiresCompatibilities": ["FARGATE"], '
    '"networkMode": "awsvpc", "memory": "512", "cpu": "256"}'
)
SEED_TRAILING_COMMAS = (
    '{"family": "webserver", "containerDefinitions": [{"name": "web", "image": "nginx", '
    '"memory": "100", "cpu": "99",}], "requiresCompatibilities": ["FARGATE"], '
    '"networkMode": "awsvpc", "memory": "512", "cpu": "256",}'
)


def assert_error(resp, status, error_type, *fragments):
    assert resp.status == status, resp
    body = resp.json
    assert body["__type"] == error_type, body
    assert isinstance(body.get("message"), str) and body["message"], body
    for f in fragments:
        assert f in body["message"], body
    assert resp.headers.get("x-amzn-errortype", error_type) == error_type
    return body


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


# --- bodies --------------------------------------------------------------------------------


def test_seed_with_string_numbers_is_accepted_and_normalised(raw, gantry):
    r = raw.call("RegisterTaskDefinition", SEED_STRING_NUMBERS)
    assert r.status == 200, r
    assert r.headers["content-type"] == "application/x-amz-json-1.1"
    td = r.json["taskDefinition"]
    (c,) = td["containerDefinitions"]
    # Integers on the way out, not strings.
    assert c["memory"] == 100 and type(c["memory"]) is int
    assert c["cpu"] == 99 and type(c["cpu"]) is int
    assert '"memory":100' in r.body.decode().replace(" ", "")
    assert td["family"] == "webserver"
    assert (td["cpu"], td["memory"]) == ("256", "512")
    assert td["taskDefinitionArn"] == gantry.task_definition_arn("webserver", td["revision"])
    assert isinstance(td["registeredAt"], (int, float))

    # Stored normalised: DescribeTaskDefinition answers integers too.
    d = raw.call("DescribeTaskDefinition", {"taskDefinition": td["taskDefinitionArn"]})
    assert d.status == 200, d
    c2 = d.json["taskDefinition"]["containerDefinitions"][0]
    assert (c2["memory"], c2["cpu"]) == (100, 99)


def test_string_numbers_parse_through_botocore(raw, ecs):
    """botocore parses the raw-registered definition like any other."""
    r = raw.call("RegisterTaskDefinition", SEED_STRING_NUMBERS)
    assert r.status == 200, r
    arn = r.json["taskDefinition"]["taskDefinitionArn"]
    td = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    assert td["containerDefinitions"][0]["memory"] == 100
    assert td["containerDefinitions"][0]["cpu"] == 99


def test_numeric_strings_everywhere_an_integer_goes(raw, unique):
    family = unique("num")
    body = {
        "family": family,
        "networkMode": "bridge",
        "containerDefinitions": [
            {
                "name": "app",
                "image": "x",
                "memory": "64",
                "memoryReservation": "32",
                "cpu": "10",
                "stopTimeout": "10",
                "startTimeout": "5",
                "portMappings": [{"containerPort": "80", "hostPort": "8080"}],
                "healthCheck": {"command": ["CMD", "true"], "interval": "30", "timeout": "5",
                                "retries": "3", "startPeriod": "0"},
                "ulimits": [{"name": "nofile", "softLimit": "1024", "hardLimit": "2048"}],
            }
        ],
    }
    r = raw.call("RegisterTaskDefinition", body)
    assert r.status == 200, r
    c = r.json["taskDefinition"]["containerDefinitions"][0]
    assert (c["memory"], c["memoryReservation"], c["cpu"]) == (64, 32, 10)
    assert (c["stopTimeout"], c["startTimeout"]) == (10, 5)
    assert c["portMappings"] == [{"containerPort": 80, "hostPort": 8080, "protocol": "tcp"}]
    hc = c["healthCheck"]
    assert (hc["interval"], hc["timeout"], hc["retries"], hc["startPeriod"]) == (30, 5, 3, 0)
    assert c["ulimits"] == [{"name": "nofile", "softLimit": 1024, "hardLimit": 2048}]
    # And in a list operation's maxResults.
    raw.call("RegisterTaskDefinition", body)
    page = raw.call("ListTaskDefinitions", {"familyPrefix": family, "maxResults": "1"})
    assert page.status == 200, page
    assert len(page.json["taskDefinitionArns"]) == 1 and page.json["nextToken"]


def test_trailing_commas_are_serialization_exception(raw, unique):
    family = unique("tc")
    r = raw.call("RegisterTaskDefinition", SEED_TRAILING_COMMAS.replace("webserver", family))
    assert_error(r, 400, "SerializationException")
    # Nothing was registered.
    lst = raw.call("ListTaskDefinitions", {"familyPrefix": family})
    assert lst.json["taskDefinitionArns"] == []


def test_single_trailing_comma_is_serialization_exception(raw):
    r = raw.call("CreateCluster", '{"clusterName": "x",}')
    assert_error(r, 400, "SerializationException")


@pytest.mark.parametrize(
    "body",
    [
        SEED_STRING_NUMBERS.replace('"memory": "100"', '"memory": "lots"'),
        SEED_STRING_NUMBERS.replace('"cpu": "99"', '"cpu": "9 9"'),
        SEED_STRING_NUMBERS.replace('"memory": "100"', '"memory": 1.5'),
        SEED_STRING_NUMBERS.replace('"memory": "100"', '"memory": true'),
    ],
    ids=["lots", "space", "fraction", "bool"],
)
def test_non_numeric_integer_member_is_serialization_exception(raw, body):
    r = raw.call("RegisterTaskDefinition", body)
    b = assert_error(r, 400, "SerializationException")
    assert "containerDefinitions[0]" in b["message"]


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"x"', b"{", b"\xff\xfe", b'{"clusterName": 5}'])
def test_malformed_bodies_are_serialization_exception(raw, body):
    r = raw.call("CreateCluster", body)
    assert_error(r, 400, "SerializationException")


@pytest.mark.parametrize(
    "suffix",
    [" trailing", "}", ",", '{"clusterName": "other"}', "]"],
    ids=["word", "extra-brace", "trailing-comma", "second-document", "bracket"],
)
def test_trailing_characters_after_the_document_are_serialization_exception(raw, gantry, unique, suffix):
    """A body is one JSON document: anything but whitespace after it makes it invalid JSON,
    and the request must not take effect."""
    name = unique("trail")
    r = raw.call("CreateCluster", '{"clusterName": "%s"}%s' % (name, suffix))
    assert_error(r, 400, "SerializationException")
    d = raw.call("DescribeClusters", {"clusters": [name]})
    assert d.json["failures"] == [{"arn": gantry.cluster_arn(name), "reason": "MISSING"}]


def test_trailing_whitespace_after_the_document_is_fine(raw, unique):
    name = unique("ws")
    r = raw.call("CreateCluster", '{"clusterName": "%s"}  \r\n\t ' % name)
    assert r.status == 200, r
    assert r.json["cluster"]["clusterName"] == name


def test_utf8_body_round_trips(raw, ecs, unique):
    name = unique("utf")
    value = "caf\u00e9 \u2713 \U0001f433"
    body = ('{"clusterName": "%s", "tags": [{"key": "note", "value": "%s"}]}' % (name, value)).encode("utf-8")
    r = raw.call("CreateCluster", body)
    assert r.status == 200, r
    assert r.json["cluster"]["tags"] == [{"key": "note", "value": value}]
    tags = ecs.list_tags_for_resource(resourceArn=r.json["cluster"]["clusterArn"])["tags"]
    assert tags == [{"key": "note", "value": value}]


def test_empty_body_is_an_empty_request(raw):
    r = raw.call("ListClusters", b"")
    assert r.status == 200, r
    assert isinstance(r.json["clusterArns"], list)


def test_missing_required_member_is_invalid_parameter(raw):
    r = raw.call("RegisterTaskDefinition", {"containerDefinitions": []})
    assert_error(r, 400, "InvalidParameterException", "family")


def test_unknown_enum_names_the_field_path(raw, unique):
    body = {
        "family": unique("en"),
        "containerDefinitions": [
            {"name": "a", "image": "x", "memory": 32, "portMappings": [{"containerPort": 80, "protocol": "sctp"}]}
        ],
    }
    r = raw.call("RegisterTaskDefinition", body)
    assert_error(r, 400, "InvalidParameterException", "sctp", "containerDefinitions[0].portMappings[0].protocol")


def test_numeric_string_in_list_clusters_max_results(raw):
    r = raw.call("ListClusters", '{"maxResults": "1"}')
    assert r.status == 200, r
    assert len(r.json["clusterArns"]) <= 1


# --- routing -------------------------------------------------------------------------------


def test_unknown_target_is_unknown_operation(raw):
    r = raw.call("AmazonEC2ContainerServiceV20141113.FlyToTheMoon", {})
    assert_error(r, 400, "UnknownOperationException")


def test_other_service_target_is_unknown_operation(raw):
    r = raw.call("DynamoDB_20120810.ListTables", {})
    assert_error(r, 400, "UnknownOperationException")


def test_missing_target_is_unknown_operation(raw):
    r = raw.call(None, {})
    assert_error(r, 400, "UnknownOperationException")


# --- authentication ------------------------------------------------------------------------


def test_unsigned_is_missing_authentication_token(raw):
    r = raw.unsigned("ListClusters", "{}")
    assert 400 <= r.status < 500
    assert_error(r, 403, "MissingAuthenticationTokenException")


def test_wrong_secret_is_invalid_signature(raw):
    r = raw.call("ListClusters", {}, secret_key="wrong" + raw.server.secret_access_key[5:])
    assert_error(r, 403, "InvalidSignatureException", "signature")


def test_unknown_access_key_is_unrecognized_client(raw):
    r = raw.call("ListClusters", {}, access_key="AKGTNOSUCHKEY0000000")
    assert_error(r, 400, "UnrecognizedClientException")


def test_signed_for_another_region_is_invalid_signature(raw):
    r = raw.call("ListClusters", {}, region="eu-west-1")
    assert_error(r, 403, "InvalidSignatureException", "eu-west-1")


def test_signed_for_another_service_is_invalid_signature(raw):
    r = raw.call("ListClusters", {}, service="ec2")
    assert_error(r, 403, "InvalidSignatureException")


def test_stale_date_is_invalid_signature(raw):
    when = utc_now() - datetime.timedelta(minutes=10)
    r = raw.call("ListClusters", {}, when=when)
    assert_error(r, 403, "InvalidSignatureException", "expired")


def test_future_date_is_invalid_signature(raw):
    when = utc_now() + datetime.timedelta(minutes=10)
    r = raw.call("ListClusters", {}, when=when)
    assert_error(r, 403, "InvalidSignatureException")


def test_slightly_old_date_is_accepted(raw):
    when = utc_now() - datetime.timedelta(minutes=2)
    r = raw.call("ListClusters", {}, when=when)
    assert r.status == 200, r


def test_body_changed_after_signing_is_invalid_signature(raw):
    headers = raw.sign("CreateCluster", b'{"clusterName": "signed"}')
    r = raw.send(headers, b'{"clusterName": "tampered"}')
    assert_error(r, 403, "InvalidSignatureException")


def test_target_changed_after_signing_is_invalid_signature(raw):
    headers = raw.sign("ListClusters", b"{}")
    headers["X-Amz-Target"] = "AmazonEC2ContainerServiceV20141113.DeleteCluster"
    r = raw.send(headers, b'{}')
    assert_error(r, 403, "InvalidSignatureException")


@pytest.mark.parametrize(
    "authorization",
    [
        "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/ecs/aws4_request",  # no SignedHeaders/Signature
        "AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature=abcd",  # no Credential
        "Bearer abc",  # not SigV4
    ],
)
def test_malformed_authorization_is_incomplete_signature(raw, authorization):
    headers = raw.sign("ListClusters", b"{}")
    headers["Authorization"] = authorization
    r = raw.send(headers, b"{}")
    assert_error(r, 403, "IncompleteSignatureException")


def test_auth_errors_come_before_routing(raw):
    """An unsigned request to an unknown operation is refused for the missing signature."""
    r = raw.unsigned("FlyToTheMoon", "{}")
    assert_error(r, 403, "MissingAuthenticationTokenException")


def test_boto3_auth_errors(gantry):
    # As ECS answers: a bad signature is 403, an unknown key 400.
    cases = [
        (dict(aws_secret_access_key="not-the-secret"), "InvalidSignatureException", 403),
        (dict(aws_access_key_id="AKGTUNKNOWNKEY000000"), "UnrecognizedClientException", 400),
        (dict(region_name="eu-west-1"), "InvalidSignatureException", 403),
    ]
    for overrides, code, status in cases:
        client = gantry.client(**overrides)
        with pytest.raises(ClientError) as ei:
            client.list_clusters()
        assert ei.value.response["Error"]["Code"] == code, overrides
        assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_error_body_shape(raw, unique):
    r = raw.call("DeleteCluster", {"cluster": unique("missing")})
    body = assert_error(r, 400, "ClusterNotFoundException")
    assert set(body) == {"__type", "message"}
    json.dumps(body)


# --- SigV4 canonicalisation: requests botocore signs differently from the common case ------


@pytest.mark.parametrize("path", ["/?a=b%20c&z=1&a=0", "/?empty=", "/?x-id=ListClusters"])
def test_signed_query_strings_verify(raw, path):
    headers = raw.sign("ListClusters", b"{}", path=path)
    r = raw.send(headers, b"{}", path=path)
    assert r.status == 200, r
    assert isinstance(r.json["clusterArns"], list)


@pytest.mark.parametrize("path", ["/some/path", "/a%20b", "/~user/x.y_z-"])
def test_signed_request_to_another_path_is_unknown_operation(raw, path):
    """The signature over an unusual path verifies; the path is then refused as no operation."""
    headers = raw.sign("ListClusters", b"{}", path=path)
    r = raw.send(headers, b"{}", path=path)
    assert_error(r, 400, "UnknownOperationException")


def test_signed_get_is_unknown_operation(raw):
    headers = raw.sign("ListClusters", b"")
    r = raw.send(headers, b"", method="GET")
    # Signed as POST, sent as GET: the method is part of the signature.
    assert_error(r, 403, "InvalidSignatureException")


def test_extra_signed_header_with_runs_of_spaces(raw):
    headers = raw.sign("ListClusters", b"{}", headers={"X-Custom": "a   b  c"})
    r = raw.send(headers, b"{}")
    assert r.status == 200, r
