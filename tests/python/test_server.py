"""The server process itself: start-up output, credentials, health, response framing."""

import urllib.request

import botocore.exceptions
import pytest


def test_export_line_matches_credentials_json(gantry):
    v = gantry.export_vars
    assert gantry.export_line.startswith("export ")
    assert v["AWS_ACCESS_KEY_ID"] == gantry.credentials_json["accessKeyId"]
    assert v["AWS_SECRET_ACCESS_KEY"] == gantry.credentials_json["secretAccessKey"]
    assert v["AWS_DEFAULT_REGION"] == "us-east-1"
    assert v["AWS_ENDPOINT_URL"] == gantry.endpoint
    assert v["AWS_DISABLE_HOST_PREFIX_INJECTION"] == "true"
    assert not any(k.startswith("AWS_ENDPOINT_URL_") for k in v)
    assert gantry.credentials_json["endpoint"] == gantry.endpoint
    assert gantry.credentials_json["region"] == "us-east-1"
    assert set(gantry.credentials_json) == {"accessKeyId", "secretAccessKey", "region", "endpoint", "caFile"}
    # Plain HTTP: no CA to trust.
    assert gantry.credentials_json["caFile"] is None
    assert gantry.access_key_id and gantry.secret_access_key


def test_healthz_is_unsigned_ok(gantry):
    with urllib.request.urlopen(f"{gantry.endpoint}/healthz", timeout=5) as r:
        assert r.status == 200
        assert r.read().strip() == b"ok"


def test_responses_carry_request_id_and_json_content_type(raw):
    r = raw.call("ListClusters", {})
    assert r.status == 200, r
    assert r.headers["content-type"] == "application/x-amz-json-1.1"
    assert r.headers.get("x-amzn-requestid")
    assert isinstance(r.json["clusterArns"], list)


def test_boto3_sees_request_id(ecs):
    resp = ecs.list_clusters()
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert resp["ResponseMetadata"]["RequestId"]


def test_unimplemented_model_operation_is_unsupported_feature(ecs):
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        ecs.describe_task_sets(cluster="default", service="none")
    err = ei.value.response["Error"]
    assert err["Code"] == "UnsupportedFeatureException"
    assert "DescribeTaskSets" in err["Message"]
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_metrics_count_requests_by_operation_and_outcome(gantry, ecs, unique):
    ecs.list_task_definition_families()
    with pytest.raises(botocore.exceptions.ClientError):
        ecs.delete_cluster(cluster=unique("missing"))
    with urllib.request.urlopen(f"{gantry.endpoint}/metrics", timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        text = r.read().decode()
    assert "# TYPE gantry_api_requests_total counter" in text
    assert 'gantry_api_requests_total{service="ecs",operation="ListTaskDefinitionFamilies",outcome="ok"}' in text
    assert 'gantry_api_requests_total{service="ecs",operation="DeleteCluster",outcome="ClusterNotFoundException"}' in text
