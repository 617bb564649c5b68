"""CloudWatch Logs through boto3 and the AWS CLI v2 (Debian's awscli, 2.9: `--endpoint-url` on
every command): groups and streams with CloudWatch's paging, PutLogEvents' batch rules,
GetLogEvents' tokens, FilterLogEvents with each kind of filter pattern, retention enforced,
tags, authorization, and `aws logs tail --follow`."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

AWS_V2 = Path("/usr/bin/aws")
DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def logs(gantry):
    return gantry.client("logs")


@pytest.fixture(scope="module")
def aws2(gantry):
    """Runs Debian's AWS CLI v2 against the server."""
    if not AWS_V2.is_file():
        pytest.fail(f"{AWS_V2} is missing: apt-get install awscli (scripts/test does)", pytrace=False)

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        p = subprocess.run([str(AWS_V2), *args, "--endpoint-url", gantry.endpoint, "--output", "json"],
                           env=gantry.env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)}: {p.stderr}")
        return p

    return run


def now_ms() -> int:
    return int(time.time() * 1000)


def code(e: pytest.ExceptionInfo) -> str:
    return e.value.response["Error"]["Code"]


def group_with_stream(logs, unique, stream: str = "s1") -> str:
    g = unique("/test/logs")
    logs.create_log_group(logGroupName=g)
    logs.create_log_stream(logGroupName=g, logStreamName=stream)
    return g


def put(logs, group: str, stream: str, messages: list[str], start: int | None = None) -> dict:
    t = now_ms() - len(messages) if start is None else start
    return logs.put_log_events(logGroupName=group, logStreamName=stream,
                               logEvents=[{"timestamp": t + i, "message": m} for i, m in enumerate(messages)])


def test_groups_and_streams(logs, unique):
    base = unique("/app")
    for n in ("a", "b", "c"):
        logs.create_log_group(logGroupName=f"{base}/{n}", tags={"team": n})
    with pytest.raises(ClientError) as e:
        logs.create_log_group(logGroupName=f"{base}/a")
    assert code(e) == "ResourceAlreadyExistsException"
    with pytest.raises(ClientError) as e:
        logs.create_log_group(logGroupName="bad name!")
    assert code(e) == "InvalidParameterException"

    page = logs.describe_log_groups(logGroupNamePrefix=base, limit=2)
    assert [g["logGroupName"] for g in page["logGroups"]] == [f"{base}/a", f"{base}/b"]
    rest = logs.describe_log_groups(logGroupNamePrefix=base, limit=2, nextToken=page["nextToken"])
    assert [g["logGroupName"] for g in rest["logGroups"]] == [f"{base}/c"] and "nextToken" not in rest
    g = page["logGroups"][0]
    assert g["arn"] == f"arn:aws:logs:us-east-1:000000000000:log-group:{base}/a:*"
    assert g["logGroupArn"] == g["arn"][:-2] and g["storedBytes"] == 0 and g["creationTime"] > 0
    # The pattern is a case-insensitive substring.
    found = logs.describe_log_groups(logGroupNamePattern=base.split("/")[-1].upper())["logGroups"]
    assert {x["logGroupName"] for x in found} >= {f"{base}/a", f"{base}/b", f"{base}/c"}
    paged = [x["logGroupName"] for p in logs.get_paginator("describe_log_groups").paginate(
        logGroupNamePrefix=base, PaginationConfig={"PageSize": 1}) for x in p["logGroups"]]
    assert paged == [f"{base}/a", f"{base}/b", f"{base}/c"]

    grp = f"{base}/a"
    for s in ("older", "newer", "idle"):
        logs.create_log_stream(logGroupName=grp, logStreamName=s)
    with pytest.raises(ClientError) as e:
        logs.create_log_stream(logGroupName=grp, logStreamName="older")
    assert code(e) == "ResourceAlreadyExistsException"
    put(logs, grp, "older", ["x"], start=now_ms() - 10_000)
    put(logs, grp, "newer", ["y"])
    by_time = logs.describe_log_streams(logGroupName=grp, orderBy="LastEventTime", descending=True)["logStreams"]
    assert [s["logStreamName"] for s in by_time][:2] == ["newer", "older"], by_time
    assert by_time[0]["lastEventTimestamp"] >= by_time[1]["lastEventTimestamp"]
    by_name = logs.describe_log_streams(logGroupName=grp, logStreamNamePrefix="n")["logStreams"]
    assert [s["logStreamName"] for s in by_name] == ["newer"]
    with pytest.raises(ClientError) as e:
        logs.describe_log_streams(logGroupName=grp, orderBy="LastEventTime", logStreamNamePrefix="n")
    assert code(e) == "InvalidParameterException"

    logs.delete_log_stream(logGroupName=grp, logStreamName="idle")
    with pytest.raises(ClientError) as e:
        logs.delete_log_stream(logGroupName=grp, logStreamName="idle")
    assert code(e) == "ResourceNotFoundException"
    logs.delete_log_group(logGroupName=f"{base}/c")
    with pytest.raises(ClientError) as e:
        logs.describe_log_streams(logGroupName=f"{base}/c")
    assert code(e) == "ResourceNotFoundException"
    assert e.value.response["Error"]["Message"] == "The specified log group does not exist."


def test_put_log_events_follows_cloudwatchs_batch_rules(logs, unique):
    g = group_with_stream(logs, unique)
    now = now_ms()
    r = logs.put_log_events(logGroupName=g, logStreamName="s1", logEvents=[
        {"timestamp": now - 15 * DAY_MS + 60_000, "message": "too old"},
        {"timestamp": now, "message": "fine"},
        {"timestamp": now + 3 * 3_600_000, "message": "too new"},
    ][1:])  # the 24 h span rule keeps too old and too new apart
    assert r["rejectedLogEventsInfo"] == {"tooNewLogEventStartIndex": 1}, r
    r = logs.put_log_events(logGroupName=g, logStreamName="s1", logEvents=[
        {"timestamp": now - 15 * DAY_MS, "message": "too old"},
        {"timestamp": now - 15 * DAY_MS + 1, "message": "too old too"}])
    assert r["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 2}, r
    events = logs.get_log_events(logGroupName=g, logStreamName="s1", startFromHead=True)["events"]
    assert [e["message"] for e in events] == ["fine"]
    for bad in ([{"timestamp": now, "message": "b"}, {"timestamp": now - 1, "message": "a"}],
                [{"timestamp": now - 2 * DAY_MS, "message": "a"}, {"timestamp": now, "message": "b"}],
                [{"timestamp": now, "message": "x" * 262_144}]):
        with pytest.raises(ClientError) as e:
            logs.put_log_events(logGroupName=g, logStreamName="s1", logEvents=bad)
        assert code(e) == "InvalidParameterException", bad[0]["message"][:10]
    with pytest.raises(ClientError) as e:
        logs.put_log_events(logGroupName=g, logStreamName="missing", logEvents=[{"timestamp": now, "message": "m"}])
    assert code(e) == "ResourceNotFoundException"
    # 10,000 events is the most a batch holds.
    many = [{"timestamp": now, "message": str(i)} for i in range(10_000)]
    assert "rejectedLogEventsInfo" not in logs.put_log_events(logGroupName=g, logStreamName="s1", logEvents=many)
    with pytest.raises(ClientError) as e:
        logs.put_log_events(logGroupName=g, logStreamName="s1", logEvents=many + many[:1])
    assert code(e) in ("InvalidParameterException", "ValidationException")


def test_get_log_events_pages_both_ways_and_stops_on_a_repeated_token(logs, unique):
    g = group_with_stream(logs, unique)
    put(logs, g, "s1", [f"line {i}" for i in range(7)])
    head = logs.get_log_events(logGroupName=g, logStreamName="s1", startFromHead=True, limit=3)
    assert [e["message"] for e in head["events"]] == ["line 0", "line 1", "line 2"]
    assert all(e["ingestionTime"] >= e["timestamp"] - 10 for e in head["events"])
    seen, token = [e["message"] for e in head["events"]], head["nextForwardToken"]
    while True:
        r = logs.get_log_events(logGroupName=g, logStreamName="s1", nextToken=token, limit=3)
        seen += [e["message"] for e in r["events"]]
        if r["nextForwardToken"] == token:
            break
        token = r["nextForwardToken"]
    assert seen == [f"line {i}" for i in range(7)]
    # Without startFromHead: the newest events, then backwards.
    tail = logs.get_log_events(logGroupName=g, logStreamName="s1", limit=2)
    assert [e["message"] for e in tail["events"]] == ["line 5", "line 6"]
    back = logs.get_log_events(logGroupName=g, logStreamName="s1", limit=2, nextToken=tail["nextBackwardToken"])
    assert [e["message"] for e in back["events"]] == ["line 3", "line 4"]
    # A forward token at the end stays put; new events appear behind it.
    end = logs.get_log_events(logGroupName=g, logStreamName="s1", nextToken=token)
    assert end["events"] == [] and end["nextForwardToken"] == token
    put(logs, g, "s1", ["line 7"], start=now_ms())
    assert [e["message"] for e in logs.get_log_events(logGroupName=g, logStreamName="s1", nextToken=token)["events"]] == ["line 7"]
    with pytest.raises(ClientError) as e:
        logs.get_log_events(logGroupName=g, logStreamName="s1", nextToken="nonsense")
    assert code(e) == "InvalidParameterException"


MESSAGES = {
    "a": ["ERROR 500 on /checkout", "INFO all good", "WARN slow disk",
          '{"level": "error", "latency": 250, "user": {"id": 7}}',
          '{"level": "error", "latency": 20, "user": {"id": 8}}',
          '{"level": "info", "latency": 900}'],
    "b": ['127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 200 2326',
          '10.0.0.9 - - [10/Oct/2000:13:25:16 -0700] "POST /login HTTP/1.0" 503 17',
          "ERROR timeout talking to db"],
}

PATTERNS = {
    "ERROR": ["ERROR 500 on /checkout", "ERROR timeout talking to db"],
    '"ERROR 500"': ["ERROR 500 on /checkout"],
    "ERROR -timeout": ["ERROR 500 on /checkout"],
    "?WARN ?INFO": ["INFO all good", "WARN slow disk"],
    '{ $.level = "error" && $.latency > 100 }': ['{"level": "error", "latency": 250, "user": {"id": 7}}'],
    "{ $.user.id = 8 || $.latency >= 900 }": ['{"level": "error", "latency": 20, "user": {"id": 8}}',
                                             '{"level": "info", "latency": 900}'],
    "[ip, user, username, timestamp, request, status = 5*, size]":
        ['10.0.0.9 - - [10/Oct/2000:13:25:16 -0700] "POST /login HTTP/1.0" 503 17'],
    "[..., status = 200, size > 1000]":
        ['127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 200 2326'],
}


def test_filter_log_events_with_each_kind_of_pattern_through_the_cli(logs, unique, aws2):
    g = unique("/test/filter")
    logs.create_log_group(logGroupName=g)
    for s, msgs in MESSAGES.items():
        logs.create_log_stream(logGroupName=g, logStreamName=s)
        put(logs, g, s, msgs)
    for pattern, want in PATTERNS.items():
        out = json.loads(aws2("logs", "filter-log-events", "--log-group-name", g,
                              "--filter-pattern", pattern).stdout)
        assert sorted(e["message"] for e in out["events"]) == sorted(want), pattern
    out = json.loads(aws2("logs", "filter-log-events", "--log-group-name", g, "--log-stream-names", "b",
                          "--filter-pattern", "ERROR").stdout)
    assert [(e["logStreamName"], e["message"]) for e in out["events"]] == [("b", "ERROR timeout talking to db")]
    assert out["searchedLogStreams"] == [{"logStreamName": "b", "searchedCompletely": True}]
    bad = aws2("logs", "filter-log-events", "--log-group-name", g, "--filter-pattern", "{ $.level = ", check=False)
    assert bad.returncode != 0 and "InvalidParameterException" in bad.stderr, bad.stderr
    # Pages of one event reach every match, as the paginator goes.
    pages = logs.get_paginator("filter_log_events").paginate(
        logGroupName=g, filterPattern="ERROR", PaginationConfig={"PageSize": 1})
    assert sorted(e["message"] for p in pages for e in p["events"]) == sorted(PATTERNS["ERROR"])


def test_retention_removes_old_events(logs, unique):
    g = group_with_stream(logs, unique)
    put(logs, g, "s1", ["two days old"], start=now_ms() - 2 * DAY_MS)
    put(logs, g, "s1", ["fresh"])
    with pytest.raises(ClientError) as e:
        logs.put_retention_policy(logGroupName=g, retentionInDays=2)
    assert code(e) == "InvalidParameterException"
    logs.put_retention_policy(logGroupName=g, retentionInDays=1)
    (desc,) = logs.describe_log_groups(logGroupNamePrefix=g)["logGroups"]
    assert desc["retentionInDays"] == 1

    def messages():
        return [e["message"] for e in logs.get_log_events(logGroupName=g, logStreamName="s1", startFromHead=True)["events"]]

    assert messages() == ["fresh"]
    assert [e["message"] for e in logs.filter_log_events(logGroupName=g)["events"]] == ["fresh"]
    # Older than the retention, an event is refused as expired.
    r = put(logs, g, "s1", ["late"], start=now_ms() - 2 * DAY_MS)
    assert r["rejectedLogEventsInfo"] == {"expiredLogEventEndIndex": 1}
    # The expiry sweep (every second in tests) deletes them: without the policy, they stay gone.
    time.sleep(2.5)
    logs.delete_retention_policy(logGroupName=g)
    assert messages() == ["fresh"]


def test_tags_and_authorization(gantry, logs, unique):
    g = group_with_stream(logs, unique)
    arn = logs.describe_log_groups(logGroupNamePrefix=g)["logGroups"][0]["logGroupArn"]
    logs.tag_resource(resourceArn=arn, tags={"env": "prod", "team": "web"})
    logs.untag_resource(resourceArn=arn, tagKeys=["team"])
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"env": "prod"}

    iam = gantry.client("iam")
    user = unique("shipper")
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="ship", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "logs:PutLogEvents",
                                                "Resource": f"{arn}:log-stream:s1"}]}))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    shipper = gantry.client("logs", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
    logs.create_log_stream(logGroupName=g, logStreamName="s2")
    put(shipper, g, "s1", ["allowed"])
    with pytest.raises(ClientError) as e:
        put(shipper, g, "s2", ["refused"])
    assert code(e) == "AccessDeniedException"
    assert "logs:PutLogEvents" in e.value.response["Error"]["Message"]


def test_aws_logs_tail_follows_new_lines(gantry, logs, unique):
    g = group_with_stream(logs, unique, stream="app/web/1")
    put(logs, g, "app/web/1", ["before the tail"])
    proc = subprocess.Popen([str(AWS_V2), "logs", "tail", g, "--follow", "--since", "1h", "--format", "short",
                             "--endpoint-url", gantry.endpoint], env=gantry.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        sent = False
        while time.monotonic() < deadline:
            if any("before the tail" in x for x in lines) and not sent:
                put(logs, g, "app/web/1", ["written while tailing"], start=now_ms())
                sent = True
            if any("written while tailing" in x for x in lines):
                break
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert any("before the tail" in x for x in lines), (lines, proc.stderr.read() if proc.stderr else "")
    assert any("written while tailing" in x for x in lines), lines
