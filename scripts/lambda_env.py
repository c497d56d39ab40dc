"""The environment Lambda gives a function on provided.al2023, in one place.

The build's check (scripts/lambda_root.py), ./smoke.sh, scripts/rie.py and the local tools start a
function with it, so that init code sees what it sees on Lambda: a region (boto3 clients made at
import need one), the function's name, version, memory and log names, credentials (placeholders
here: nothing of this machine's), and the file system variables of a zip function.

    from lambda_env import lambda_environment

    env = lambda_environment({"AWS_REGION": "eu-west-1"})   # overrides win
    env = lambda_environment(paths=False)                   # outside a root: keep this machine's paths

What it does not set, as Lambda does not for provided.*: ``AWS_EXECUTION_ENV`` (the managed Python
runtimes set ``AWS_Lambda_python3.x``). What the caller sets: ``_HANDLER``, ``AWS_LAMBDA_RUNTIME_API``
(the Runtime API's address) and ``_X_AMZN_TRACE_ID`` (per invoke, by the runtime).
"""

from __future__ import annotations

import time
from typing import Dict, Mapping, Optional

# The RIE's own default function name: with it the runtime's context and the RIE's log lines agree.
DEFAULT_FUNCTION_NAME = "test_function"
DEFAULT_REGION = "us-east-1"
DEFAULT_MEMORY_MB = "128"  # Lambda's default memory size
# Placeholders in the format of temporary credentials: a call to AWS made with them is refused
# (InvalidClientTokenId), and no credentials of this machine reach the function.
PLACEHOLDER_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "ASIALAMBDAPLACEHOLDER",
    "AWS_SECRET_ACCESS_KEY": "placeholder-secret-access-key-not-valid-on-aws",
    "AWS_SESSION_TOKEN": "placeholder-session-token-not-valid-on-aws",
}
# What a zip function's process finds on provided.al2023 (AWS's provided:al2023 image and RAPID set
# the same): where its code and the runtime live, and the system's search paths.
FILE_SYSTEM = {
    "LAMBDA_TASK_ROOT": "/var/task",
    "LAMBDA_RUNTIME_DIR": "/var/runtime",
    "PATH": "/usr/local/bin:/usr/bin/:/bin:/opt/bin",
    "LD_LIBRARY_PATH": "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:"
    "/var/task:/var/task/lib:/opt/lib",
    "LANG": "en_US.UTF-8",
    "TZ": ":UTC",
}
XRAY = {
    "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
    "_AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129",
    "_AWS_XRAY_DAEMON_PORT": "2000",
}
REGION_NAMES = ("AWS_REGION", "AWS_DEFAULT_REGION")


def log_stream_name(version: str, when: Optional[float] = None) -> str:
    """A log stream name in Lambda's form: ``YYYY/MM/DD/[VERSION]`` and 32 hex digits."""
    day = time.strftime("%Y/%m/%d", time.gmtime(when))
    return "%s/[%s]%s" % (day, version, "0" * 32)


def lambda_environment(
    overrides: Optional[Mapping[str, str]] = None, *, paths: bool = True
) -> Dict[str, str]:
    """Lambda's environment for one function, ``overrides`` laid over it.

    Lambda sets both region variables to the function's region, and botocore reads
    ``AWS_DEFAULT_REGION``: an override of either one sets both, unless both are given. The log group
    and stream follow the function's name and version. ``paths=False`` leaves out ``FILE_SYSTEM``, for a
    function run outside a Lambda-like root, where this machine's paths apply."""
    given = dict(overrides or {})
    name = given.get("AWS_LAMBDA_FUNCTION_NAME", DEFAULT_FUNCTION_NAME)
    version = given.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
    regions = [given[key] for key in REGION_NAMES if key in given]
    region = regions[0] if regions else DEFAULT_REGION
    env = dict(FILE_SYSTEM) if paths else {}
    env.update(
        {
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_VERSION": version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": DEFAULT_MEMORY_MB,
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/" + name,
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream_name(version),
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            **PLACEHOLDER_CREDENTIALS,
            **XRAY,
        }
    )
    env.update(given)
    return env
