"""README.md's access-control example, run as written with the AWS CLI (v1).

The commands come from the README itself, not from a copy here: every fenced block between
``<!-- access-control-example -->`` and ``<!-- /access-control-example -->`` (there may be several
such regions), in order, runs in one bash shell after the ``export`` line the server printed:

* plain ``sh`` blocks run as they are (``set -euo pipefail``, so every command must succeed);
* transcript blocks (``$ command`` then its output) run their command in the same shell (they use
  the variables the plain blocks set) and must print what the README shows, compared with
  whitespace normalised (the README wraps long lines). A transcript showing ``An error occurred``
  must fail; the others must succeed.

The example uses plain names (clusters ``prod`` and ``staging``, user ``deployer``, role
``ecs-admin``), so it runs on a server of its own, on a fresh data directory, rather than
on the session's shared server: nothing is renamed, and the README is what runs.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import ACCOUNT_ID, REGION, REPO_ROOT, AwsCli

README = REPO_ROOT / "README.md"
BEGIN, END = "<!-- access-control-example -->", "<!-- /access-control-example -->"
# xtrace prefix: repeated once per level of nesting, so exactly one marks a top-level command.
TRACE = "\x1f"

DEPLOYER = f"arn:aws:iam::{ACCOUNT_ID}:user/deployer"
PROD_WEB = f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:service/prod/web"
STAGING_WEB = f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:service/staging/web"


# --------------------------------------------------------------------------------------------
# The README


def example_blocks() -> list[str]:
    """The text of each fenced block of the marked regions, in order."""
    text = README.read_text()
    regions = re.findall(rf"^{re.escape(BEGIN)}\n(.*?)^{re.escape(END)}$", text, re.M | re.S)
    assert regions, f"README.md has no region between {BEGIN} and {END}"
    assert text.count(BEGIN) == len(regions) == text.count(END), "unbalanced example markers"
    blocks = []
    for region in regions:
        found = re.findall(r"^```(\w*)\n(.*?)^```\s*$", region, re.M | re.S)
        assert found, f"a region between {BEGIN} and {END} has no code block"
        for lang, body in found:
            assert lang in ("sh", "bash"), f"the example's blocks are shell, not {lang!r}"
            blocks.append(body)
    return blocks


def is_transcript(block: str) -> bool:
    return block.lstrip().startswith("$ ")


def split_transcript(block: str) -> tuple[str, str]:
    """``$ cmd \\`` + continuation lines, then the expected output: (command, output)."""
    lines = block.strip("\n").splitlines()
    assert lines[0].startswith("$ "), block
    cmd = [lines[0][2:]]
    i = 1
    while cmd[-1].rstrip().endswith("\\") and i < len(lines):
        cmd.append(lines[i])
        i += 1
    return "\n".join(cmd), "\n".join(lines[i:])


def normalised(text: str) -> str:
    return " ".join(text.split())


# --------------------------------------------------------------------------------------------
# Running it


@dataclass
class Step:
    """A top-level command of the script, as xtrace printed it, and what it printed."""

    command: str
    output: str = ""


@dataclass
class Transcript:
    command: str
    expected: str
    status: int = -1
    output: str = ""


@dataclass
class Run:
    status: int
    output: str
    steps: list[Step] = field(default_factory=list)
    transcripts: list[Transcript] = field(default_factory=list)

    def steps_matching(self, pattern: str) -> list[Step]:
        return [s for s in self.steps if re.search(pattern, s.command)]


def build_script(blocks: list[str], export_line: str, out_dir: Path) -> tuple[str, list[Transcript]]:
    parts = ["set -euo pipefail", export_line, f"PS4='{TRACE} '", "set -x"]
    transcripts = []
    for block in blocks:
        if not is_transcript(block):
            parts.append(block)
            continue
        command, expected = split_transcript(block)
        i = len(transcripts)
        transcripts.append(Transcript(command, expected))
        # Run in this shell (it needs the variables set so far), untraced, with its output and
        # status kept; a failing transcript does not stop the script.
        parts.append(
            "set +x\n"
            "__status=0\n"
            f"{{ {command}\n}} > '{out_dir}/t{i}.out' 2>&1 || __status=$?\n"
            f"echo \"$__status\" > '{out_dir}/t{i}.status'\n"
            "set -x"
        )
    return "\n".join(parts) + "\n", transcripts


def aws_shim(directory: Path) -> Path:
    """A directory whose `aws` is this interpreter's AWS CLI (v1), to put first on PATH."""
    directory.mkdir(parents=True, exist_ok=True)
    shim = directory / "aws"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m awscli "$@"\n')
    shim.chmod(0o755)
    return directory


def user_shell_env(bin_dir: Path, base: dict) -> dict:
    """A user's shell before pasting the export line: no AWS_* variables, no AWS config files,
    this interpreter's AWS CLI first on PATH."""
    env = {k: v for k, v in base.items() if not k.startswith(("AWS_", "GANTRY_"))}
    env.update(
        PATH=f"{bin_dir}:{env.get('PATH', '/usr/bin:/bin')}",
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_PAGER="",
    )
    return env


def run_example(server, tmp_path: Path) -> Run:
    out_dir = tmp_path / "transcripts"
    out_dir.mkdir()
    script, transcripts = build_script(example_blocks(), server.export_line, out_dir)
    (tmp_path / "access-control.sh").write_text(script)
    env = user_shell_env(aws_shim(tmp_path / "bin"), server.env)
    p = subprocess.run(["bash", "access-control.sh"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=300, stdin=subprocess.DEVNULL)
    run = Run(p.returncode, p.stdout, transcripts=transcripts)
    for line in p.stdout.splitlines():
        if line.startswith(TRACE + " "):
            run.steps.append(Step(line[2:]))
        elif line.startswith(TRACE * 2):
            pass  # a command substitution's own commands
        elif run.steps:
            run.steps[-1].output += line + "\n"
    for i, t in enumerate(transcripts):
        status_file = out_dir / f"t{i}.status"
        if status_file.exists():
            t.status = int(status_file.read_text())
            t.output = (out_dir / f"t{i}.out").read_text()
    return run


@pytest.fixture(scope="module")
def private_server(tmp_path_factory, _clean_aws_environment):
    """A server of the example's own, on a fresh data directory (it prints its export line)."""
    from conftest import _gantry_binary, make_gantry, start_server

    base = tmp_path_factory.mktemp("access-control")
    data_dir = base / "data"
    p = start_server(_gantry_binary(), data_dir, base, name="access-control")
    try:
        yield make_gantry(_gantry_binary(), data_dir, p, expect_export_line=True)
    finally:
        p.stop()


@pytest.fixture(scope="module")
def example(private_server, tmp_path_factory) -> Run:
    return run_example(private_server, tmp_path_factory.mktemp("example"))


def context(run: Run, server) -> str:
    return f"\n--- the script's output ---\n{run.output}\n--- the server ---\n{server.stderr_tail(40)}"


# --------------------------------------------------------------------------------------------
# Tests


def test_the_example_is_the_one_the_readme_describes():
    """The marked blocks still hold the example's steps (so an emptied README cannot pass)."""
    script = "\n".join(example_blocks())
    for needle in (
        "aws ecs create-cluster --cluster-name prod",
        "aws ecs create-cluster --cluster-name staging",
        "aws ecs register-task-definition --family web",
        "aws ecs create-service --cluster prod --service-name web --task-definition web --desired-count 0",
        "aws ecs create-service --cluster staging --service-name web --task-definition web --desired-count 0",
        "aws iam create-user --user-name deployer",
        "aws iam put-user-policy --user-name deployer",
        '"Resource": "arn:aws:ecs:us-east-1:000000000000:service/prod/*"',
        "aws iam create-access-key --user-name deployer",
        "aws ecs update-service --cluster prod --service web --desired-count 0",
        "aws ecs update-service --cluster staging --service web --desired-count 0",
        "aws iam simulate-principal-policy --policy-source-arn arn:aws:iam::000000000000:user/deployer",
        "aws sts assume-role",
    ):
        assert needle in script, f"the README's access-control example no longer has `{needle}`"


def test_readme_access_control_example_runs(example, private_server):
    """Every plain block succeeds, and each transcript prints what the README shows."""
    ctx = context(example, private_server)
    assert example.status == 0, f"the README's example failed (status {example.status}) at: " \
        f"{example.steps[-1].command if example.steps else '(start)'}{ctx}"
    assert example.transcripts, "the example has no transcript block any more"
    for t in example.transcripts:
        assert t.status >= 0, f"never ran: $ {t.command}{ctx}"
        expect_failure = "An error occurred" in t.expected
        assert (t.status != 0) == expect_failure, f"$ {t.command}\nstatus {t.status}\n{t.output}{ctx}"
        assert normalised(t.output) == normalised(t.expected), (
            f"$ {t.command}\n--- README ---\n{t.expected}\n--- got ---\n{t.output}{ctx}"
        )


def test_the_deployer_may_update_prod_and_not_staging(example, private_server):
    """What the example is about, checked on what it printed, not only on the README's text."""
    ctx = context(example, private_server)
    assert example.status == 0, ctx
    # As the deployer, update-service in prod printed the service.
    (prod,) = example.steps_matching(r"^aws ecs update-service --cluster prod --service web --desired-count 0$")
    service = json.loads(prod.output)["service"]
    assert (service["serviceArn"], service["desiredCount"]) == (PROD_WEB, 0), ctx

    # In staging: AccessDeniedException naming the user, the action and the service.
    (refused,) = [t for t in example.transcripts if "update-service --cluster staging" in t.command
                  and "DEPLOYER_KEY" in t.command]
    assert refused.status != 0, ctx
    assert "An error occurred (AccessDeniedException) when calling the UpdateService operation" in refused.output
    assert (f"User: {DEPLOYER} is not authorized to perform: ecs:UpdateService on resource: {STAGING_WEB} "
            "because no identity-based policy allows the ecs:UpdateService action") in refused.output, ctx

    # The simulator: allowed in prod, implicitDeny in staging.
    (sim,) = [t for t in example.transcripts if "simulate-principal-policy" in t.command]
    rows = [line.split() for line in sim.output.splitlines() if line.strip()]
    assert rows == [[PROD_WEB, "allowed"], [STAGING_WEB, "implicitDeny"]], ctx

    # The role: a session of ecs-admin, which may update staging.
    (who,) = [t for t in example.transcripts if "get-caller-identity" in t.command]
    assert who.output.strip() == f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/ecs-admin/alice", ctx
    (session_update,) = [t for t in example.transcripts if "SESSION_TOKEN" in t.command
                         and "update-service --cluster staging" in t.command]
    assert (session_update.status, session_update.output.strip()) == (0, STAGING_WEB), ctx


def test_what_the_example_left_behind(example, private_server):
    """The state the example made, as the root sees it with the AWS CLI."""
    assert example.status == 0, context(example, private_server)
    cli = AwsCli(private_server)
    policy = cli("iam", "get-user-policy", "--user-name", "deployer", "--policy-name", "deploy-prod")
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement == {
        "Effect": "Allow",
        "Action": ["ecs:UpdateService", "ecs:DescribeServices"],
        "Resource": f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:service/prod/*",
    }
    (key,) = cli("iam", "list-access-keys", "--user-name", "deployer")["AccessKeyMetadata"]
    assert key["Status"] == "Active"
    # The deployer's key is the one the script used (xtrace shows the assignment).
    used = {s.command.split("=", 1)[1] for s in example.steps if s.command.startswith("AWS_ACCESS_KEY_ID=AKIA")}
    assert used == {key["AccessKeyId"]}, used
    for cluster, arn in (("prod", PROD_WEB), ("staging", STAGING_WEB)):
        (svc,) = cli("ecs", "describe-services", "--cluster", cluster, "--services", "web")["services"]
        assert (svc["serviceArn"], svc["desiredCount"], svc["status"]) == (arn, 0, "ACTIVE")
    # Nothing but the root and the example's own identities exist on this server.
    assert [u["UserName"] for u in cli("iam", "list-users")["Users"]] == ["deployer"]
    assert [r["RoleName"] for r in cli("iam", "list-roles")["Roles"]] == ["ecs-admin"]
