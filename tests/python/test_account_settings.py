"""PutAccountSetting, PutAccountSettingDefault, DeleteAccountSetting, ListAccountSettings.

Account settings are shared by the whole server, so tests that change the caller's (root's) own
settings or the account default put them back before they finish. Most tests use a principal
of their own (an IAM user ARN nobody else uses).
"""

import contextlib

import pytest
from botocore.exceptions import ClientError

ROOT = "arn:aws:iam::000000000000:root"


def error_of(excinfo):
    return excinfo.value.response["Error"]["Code"], excinfo.value.response["Error"]["Message"]


@pytest.fixture
def user_arn(unique):
    return f"arn:aws:iam::000000000000:user/{unique('u')}"


def effective(ecs, name, **kw):
    (s,) = ecs.list_account_settings(name=name, effectiveSettings=True, **kw)["settings"]
    return s


@contextlib.contextmanager
def root_setting(ecs, name, value):
    """Sets the caller's own setting and deletes it afterwards."""
    ecs.put_account_setting(name=name, value=value)
    try:
        yield
    finally:
        ecs.delete_account_setting(name=name)


def test_put_list_delete_for_a_principal(ecs, user_arn):
    resp = ecs.put_account_setting(name="awsvpcTrunking", value="enabled", principalArn=user_arn)
    assert resp["setting"] == {
        "name": "awsvpcTrunking",
        "value": "enabled",
        "principalArn": user_arn,
        "type": "user",
    }
    listed = ecs.list_account_settings(principalArn=user_arn)["settings"]
    assert listed == [resp["setting"]]
    assert effective(ecs, "awsvpcTrunking", principalArn=user_arn)["value"] == "enabled"

    # Overwrite.
    ecs.put_account_setting(name="awsvpcTrunking", value="disabled", principalArn=user_arn)
    assert ecs.list_account_settings(principalArn=user_arn)["settings"][0]["value"] == "disabled"

    deleted = ecs.delete_account_setting(name="awsvpcTrunking", principalArn=user_arn)
    assert deleted["setting"]["name"] == "awsvpcTrunking"
    assert deleted["setting"]["principalArn"] == user_arn
    assert ecs.list_account_settings(principalArn=user_arn)["settings"] == []
    eff = effective(ecs, "awsvpcTrunking", principalArn=user_arn)
    assert (eff["value"], eff["type"]) == ("disabled", "aws_managed")


def test_list_filters_by_name_and_value(ecs, user_arn):
    ecs.put_account_setting(name="containerInsights", value="enhanced", principalArn=user_arn)
    ecs.put_account_setting(name="fargateFIPSMode", value="enabled", principalArn=user_arn)
    try:
        names = [s["name"] for s in ecs.list_account_settings(principalArn=user_arn)["settings"]]
        assert sorted(names) == ["containerInsights", "fargateFIPSMode"]
        by_name = ecs.list_account_settings(principalArn=user_arn, name="fargateFIPSMode")["settings"]
        assert [(s["name"], s["value"]) for s in by_name] == [("fargateFIPSMode", "enabled")]
        by_value = ecs.list_account_settings(principalArn=user_arn, value="enhanced")["settings"]
        assert [s["name"] for s in by_value] == ["containerInsights"]
        assert ecs.list_account_settings(principalArn=user_arn, name="containerInsights", value="enabled")["settings"] == []
    finally:
        ecs.delete_account_setting(name="containerInsights", principalArn=user_arn)
        ecs.delete_account_setting(name="fargateFIPSMode", principalArn=user_arn)


def test_effective_settings_show_aws_defaults(ecs, user_arn):
    settings = ecs.list_account_settings(principalArn=user_arn, effectiveSettings=True, maxResults=10)
    got = {s["name"]: s for s in settings["settings"]}
    assert len(got) == 10 and settings.get("nextToken")
    assert got["serviceLongArnFormat"]["value"] == "enabled"
    assert got["containerInsights"]["value"] == "disabled"
    assert got["fargateTaskRetirementWaitPeriod"]["value"] == "7"
    # Only guardDutyActivate has an account default set by another test (put back to "off").
    for name, s in got.items():
        if name != "guardDutyActivate":
            assert s["type"] == "aws_managed", s


def test_put_account_setting_default_applies_to_principals_without_their_own(ecs, user_arn):
    resp = ecs.put_account_setting_default(name="guardDutyActivate", value="on")
    try:
        assert resp["setting"]["name"] == "guardDutyActivate"
        assert resp["setting"]["value"] == "on"
        assert resp["setting"]["principalArn"] == ROOT
        assert resp["setting"]["type"] == "user"
        eff = effective(ecs, "guardDutyActivate", principalArn=user_arn)
        assert eff["value"] == "on"
        # A principal's own setting wins over the default.
        ecs.put_account_setting(name="guardDutyActivate", value="off", principalArn=user_arn)
        assert effective(ecs, "guardDutyActivate", principalArn=user_arn)["value"] == "off"
        ecs.delete_account_setting(name="guardDutyActivate", principalArn=user_arn)
        assert effective(ecs, "guardDutyActivate", principalArn=user_arn)["value"] == "on"
    finally:
        ecs.put_account_setting_default(name="guardDutyActivate", value="off")
    assert effective(ecs, "guardDutyActivate", principalArn=user_arn)["value"] == "off"


def test_own_setting_without_principal_is_the_callers(ecs, unique):
    with root_setting(ecs, "containerInsights", "enhanced"):
        s = effective(ecs, "containerInsights")
        assert (s["value"], s["principalArn"], s["type"]) == ("enhanced", ROOT, "user")
        # New clusters take containerInsights from the caller's effective setting.
        c = ecs.create_cluster(clusterName=unique("ins"))["cluster"]
        assert {x["name"]: x["value"] for x in c["settings"]} == {"containerInsights": "enhanced"}
    assert effective(ecs, "containerInsights")["value"] == "disabled"


@pytest.mark.parametrize(
    "name, value",
    [("containerInsights", "sometimes"), ("fargateTaskRetirementWaitPeriod", "3"), ("awsvpcTrunking", "on")],
)
def test_invalid_value(ecs, user_arn, name, value):
    with pytest.raises(ClientError) as ei:
        ecs.put_account_setting(name=name, value=value, principalArn=user_arn)
    code, msg = error_of(ei)
    assert code == "InvalidParameterException"
    assert "value" in msg
    with pytest.raises(ClientError) as ei:
        ecs.put_account_setting_default(name=name, value=value)
    assert error_of(ei)[0] == "InvalidParameterException"


def test_unknown_setting_name_is_invalid_parameter(ecs, user_arn):
    with pytest.raises(ClientError) as ei:
        ecs.put_account_setting(name="noSuchSetting", value="enabled", principalArn=user_arn)
    code, msg = error_of(ei)
    assert code == "InvalidParameterException"
    assert "name" in msg and "noSuchSetting" in msg


def test_bad_principal_arn(ecs):
    with pytest.raises(ClientError) as ei:
        ecs.put_account_setting(name="awsvpcTrunking", value="enabled", principalArn="arn:aws:iam::999999999999:user/x")
    code, msg = error_of(ei)
    assert code == "InvalidParameterException"
    assert "principalArn" in msg


def test_delete_unset_setting_is_refused(ecs, user_arn):
    with pytest.raises(ClientError) as ei:
        ecs.delete_account_setting(name="awsvpcTrunking", principalArn=user_arn)
    assert error_of(ei)[0] == "InvalidParameterException"


@pytest.mark.parametrize("max_results", [0, 11, 100])
def test_max_results_range(ecs, max_results):
    with pytest.raises(ClientError) as ei:
        ecs.list_account_settings(effectiveSettings=True, maxResults=max_results)
    code, msg = error_of(ei)
    assert code == "InvalidParameterException"
    assert "maxResults" in msg


@pytest.mark.parametrize("max_results", [1, 10])
def test_max_results_bounds_accepted(ecs, max_results):
    resp = ecs.list_account_settings(effectiveSettings=True, maxResults=max_results)
    assert len(resp["settings"]) == max_results
    assert resp["nextToken"]
