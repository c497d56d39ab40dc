"""scripts/lambda_root.py: its unzip (hostile zips), its judgement of init errors, the root's own
network and hostname; scripts/lambda_env.py; scripts/function_handler.py; rie.is_error_response.

The tests that start a bootstrap use the test run's frozen layer at /opt with a handler as source at
/var/task (tests/frozen.py), in the bare root.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import threading
import warnings
import zipfile
from pathlib import Path
from typing import List, Tuple

import frozen
import lambda_env
import lambda_root
import pytest
import rie
from function_handler import HandlerError, find_handler, record_handler, recorded_handler

REPO = Path(__file__).resolve().parent.parent
LAMBDA_ROOT = REPO / "scripts" / "lambda_root.py"


# --- unzip by Lambda's rules: the review's hostile zips ------------------------------------------------


def link_entry(name: str, target: str) -> Tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def file_entry(name: str, data: bytes = b"data", mode: int = 0o644) -> Tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFREG | mode) << 16
    return info, data


def make_zip(path: Path, entries: List[Tuple[zipfile.ZipInfo, bytes]]) -> Path:
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as archive:
        warnings.simplefilter("ignore")  # a duplicate name is what some of these zips are about
        for info, data in entries:
            archive.writestr(info, data)
    return path


@pytest.fixture
def places(tmp_path):
    """(folder to unpack into, a folder beside it standing for the rest of the machine, a file there)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_text("host file")
    folder = tmp_path / "unpacked"
    folder.mkdir()
    return folder, outside, victim


def outside_untouched(outside: Path, victim: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]
    assert victim.read_text() == "host file"


@pytest.mark.parametrize("kind", ["file", "link"])
def test_absolute_name_is_refused(places, tmp_path, kind):
    folder, outside, victim = places
    name = str(outside / "planted")
    entry = file_entry(name) if kind == "file" else link_entry(name, "/etc/passwd")
    z = make_zip(tmp_path / "z.zip", [entry])
    with pytest.raises(lambda_root.UnsafeZip, match="absolute"):
        lambda_root.unpack_zip(z, folder)
    outside_untouched(outside, victim)


@pytest.mark.parametrize("kind", ["file", "link"])
def test_dotdot_name_is_refused(places, tmp_path, kind):
    folder, outside, victim = places
    name = "a/../../outside/planted"
    entry = file_entry(name) if kind == "file" else link_entry(name, "/etc/passwd")
    z = make_zip(tmp_path / "z.zip", [entry])
    with pytest.raises(lambda_root.UnsafeZip, match=r"'\.\.'"):
        lambda_root.unpack_zip(z, folder)
    outside_untouched(outside, victim)


@pytest.mark.parametrize("target", ["absolute", "../outside"])
def test_a_file_written_through_a_linked_folder_is_refused(places, tmp_path, target):
    folder, outside, victim = places
    link = str(outside) if target == "absolute" else target
    z = make_zip(tmp_path / "z.zip", [link_entry("d", link), file_entry("d/planted.txt")])
    with pytest.raises(lambda_root.UnsafeZip):
        lambda_root.unpack_zip(z, folder)
    outside_untouched(outside, victim)


def test_a_link_then_a_regular_entry_of_the_same_name_cannot_overwrite_a_host_file(places, tmp_path):
    folder, outside, victim = places
    z = make_zip(
        tmp_path / "z.zip", [link_entry("f", "../outside/victim.txt"), file_entry("f", b"overwritten")]
    )
    with pytest.raises(lambda_root.UnsafeZip):
        lambda_root.unpack_zip(z, folder)
    outside_untouched(outside, victim)


def test_a_link_into_the_folder_is_not_written_through_either(places, tmp_path):
    folder, _outside, _victim = places
    z = make_zip(tmp_path / "z.zip", [file_entry("real/x"), link_entry("l", "real"), file_entry("l/y")])
    with pytest.raises(lambda_root.UnsafeZip, match="through the link"):
        lambda_root.unpack_zip(z, folder)


def test_a_link_that_resolves_outside_through_a_later_link_is_refused(places, tmp_path):
    folder, _outside, _victim = places
    # "x" alone stays inside (t/../victim.txt -> victim.txt); once "t" is the folder itself, x leaves it.
    z = make_zip(tmp_path / "z.zip", [link_entry("x", "t/../outside/victim.txt"), link_entry("t", ".")])
    with pytest.raises(lambda_root.UnsafeZip, match="outside"):
        lambda_root.unpack_zip(z, folder)


def test_setuid_and_setgid_bits_are_dropped_and_links_inside_kept(places, tmp_path):
    folder, _, _ = places
    z = make_zip(
        tmp_path / "z.zip",
        [
            file_entry("bin/su", b"#!/bin/sh\n", 0o6755),
            file_entry("lib/libx.so.1.2", b"\x7fELF"),
            link_entry("lib/libx.so.1", "libx.so.1.2"),
            file_entry("plain", b"p", 0),  # no mode stored (a zip made on Windows)
        ],
    )
    lambda_root.unpack_zip(z, folder)
    assert stat.S_IMODE(os.stat(folder / "bin" / "su").st_mode) == 0o755
    assert os.readlink(folder / "lib" / "libx.so.1") == "libx.so.1.2"
    assert (folder / "lib" / "libx.so.1").read_bytes() == b"\x7fELF"
    assert stat.S_IMODE(os.stat(folder / "plain").st_mode) == 0o644


def test_smoke_refuses_a_hostile_zip_and_writes_nothing_outside(places, tmp_path):
    _folder, outside, victim = places
    z = make_zip(
        tmp_path / "z.zip", [link_entry("bootstrap", str(victim)), file_entry("bootstrap", b"planted")]
    )
    r = subprocess.run(
        [sys.executable, str(LAMBDA_ROOT), "check", "--task", str(z)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, r.stderr
    assert "zip entry 'bootstrap'" in r.stderr
    outside_untouched(outside, victim)


# --- what an init error says about the zip -----------------------------------------------------------------


def init_error(kind: str, message: str, *frames: Tuple[str, int]) -> dict:
    trace = ['  File "%s", line %d, in <module>\n    x()\n' % frame for frame in frames]
    return {"errorType": kind, "errorMessage": message, "stackTrace": trace}


IMPORTLIB = ("<frozen importlib._bootstrap>", 488)


@pytest.mark.parametrize(
    "error, fault, words",
    [
        (
            init_error(
                "PyInstallerImportError",
                "Failed to load dynlib/dll 'libzstd.so.1'. Most likely this dynlib/dll was not found when the "
                "application was frozen.",
                IMPORTLIB, ("app.py", 7), ("pyimod03_ctypes.py", 55),
            ),
            True, "shared library",
        ),
        (
            init_error("OSError", "libfoo.so.3: cannot open shared object file: No such file or directory",
                       ("app.py", 2), ("ctypes/__init__.py", 390)),
            True, "shared library",
        ),
        (
            init_error("FileNotFoundError", "[Errno 2] No such file or directory: 'data/missing.json'", ("app.py", 9)),
            True, "a file of the bundle is missing: data/missing.json",
        ),
        (
            init_error("FileNotFoundError", "[Errno 2] No such file or directory: '/opt/python/x.json'", ("a.py", 1)),
            True, "a file of the bundle is missing",
        ),
        (
            init_error("ModuleNotFoundError", "No module named 'yaml'", ("app.py", 1)),
            True, "module",
        ),
        (
            init_error("Runtime.ImportModuleError", "Unable to import module 'app': No module named 'app'"),
            True, "--handler",
        ),
        (
            init_error("AttributeError", "boom", ("app.py", 3), ("lambda_bootstrap/loader.py", 40)),
            True, "the bundle's own code",
        ),
        (
            init_error("KeyError", "'TABLE_NAME'", IMPORTLIB, ("app.py", 12), ("<frozen os>", 716)),
            False, "KeyError raised at import by the function's own code (app.py, line 12)",
        ),
        (
            init_error("FileNotFoundError", "[Errno 2] No such file or directory: '/mnt/efs/config'", ("app.py", 4)),
            False, "configuration",
        ),
    ],
)  # fmt: skip
def test_init_errors_are_judged_by_where_they_come_from(error, fault, words):
    verdict = lambda_root.judge_init_error(error)
    assert verdict.packaging_fault is fault, verdict
    assert words in verdict.reason


# --- the environment ----------------------------------------------------------------------------------------


def test_lambda_environment_is_lambdas_with_overrides():
    env = lambda_env.lambda_environment()
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["LAMBDA_TASK_ROOT"] == "/var/task" and env["TZ"] == ":UTC"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/" + env["AWS_LAMBDA_FUNCTION_NAME"]
    assert "[$LATEST]" in env["AWS_LAMBDA_LOG_STREAM_NAME"]
    for key in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    ):
        assert env[key]
    assert "AWS_EXECUTION_ENV" not in env  # Lambda sets none for provided.*
    west = lambda_env.lambda_environment({"AWS_REGION": "eu-west-1", "AWS_LAMBDA_FUNCTION_NAME": "orders"})
    assert west["AWS_REGION"] == west["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert west["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/orders"
    both = lambda_env.lambda_environment({"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-central-1"})
    assert (both["AWS_REGION"], both["AWS_DEFAULT_REGION"]) == ("eu-west-1", "eu-central-1")
    outside = lambda_env.lambda_environment({"AWS_DEFAULT_REGION": "ap-south-1"}, paths=False)
    assert (
        outside["AWS_REGION"] == "ap-south-1" and "PATH" not in outside and "LAMBDA_TASK_ROOT" not in outside
    )


def test_the_rie_timeout_message_is_an_error():
    assert rie.is_error_response(200, b"Task timed out after 2.00 seconds")
    assert rie.is_error_response(200, b'{"errorType": "ValueError", "errorMessage": "x"}')
    assert not rie.is_error_response(200, b'{"statusCode": 200}')
    assert not rie.is_error_response(200, b'"Task timed out after 2.00 seconds, said the handler"')


# --- the handler --------------------------------------------------------------------------------------------


def write(folder: Path, files: dict) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


HANDLER_SOURCE = "def {name}(event, context):\n    return event\n"


def test_handler_found_in_awss_default_layout(tmp_path):
    fn = write(
        tmp_path, {"lambda_function.py": HANDLER_SOURCE.format(name="lambda_handler"), "util.py": "X = 1\n"}
    )
    found = find_handler(fn)
    assert (found.handler, found.sure, found.modules) == ("lambda_function.lambda_handler", True, [])


def test_handler_named_by_a_sam_template_above_the_folder(tmp_path):
    write(tmp_path, {
        "template.yaml": "Transform: AWS::Serverless-2016-10-31\nGlobals:\n  Function:\n    Timeout: 3\n"
        "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: hello/\n"
        "      Handler: main.entry\n      Role: !GetAtt Role.Arn\n",
        "hello/main.py": HANDLER_SOURCE.format(name="entry"),
        "hello/other.py": HANDLER_SOURCE.format(name="handler"),
    })  # fmt: skip
    found = find_handler(tmp_path / "hello")
    assert (found.handler, found.sure) == ("main.entry", True), found
    assert "template" in found.how


def test_handler_in_doubt_is_assumed_and_every_module_named(tmp_path):
    fn = write(tmp_path, {
        "app.py": HANDLER_SOURCE.format(name="handler"),
        "jobs.py": HANDLER_SOURCE.format(name="cron_handler"),
        "test_app.py": HANDLER_SOURCE.format(name="handler"),
    })  # fmt: skip
    found = find_handler(fn)
    assert (found.handler, found.sure, found.modules) == ("app.handler", False, ["app", "jobs"])
    assert "assumed" in found.how


def test_no_handler_asks_for_handler(tmp_path):
    fn = write(tmp_path, {"app.py": "def main():\n    pass\n"})
    with pytest.raises(HandlerError, match=r"--handler MODULE\.FUNCTION"):
        find_handler(fn)


def test_the_zip_records_its_handler(tmp_path):
    z = make_zip(tmp_path / "z.zip", [file_entry("bootstrap")])
    assert recorded_handler(z) is None
    record_handler(z, "lambda_function.lambda_handler")
    assert recorded_handler(z) == "lambda_function.lambda_handler"
    assert recorded_handler(tmp_path) is None


# --- the root, started: its own network and hostname --------------------------------------------------------

NETWORK_PROBE = """
import os
import socket

PORT = int(os.environ["HOST_PORT"])
try:
    socket.create_connection(("127.0.0.1", PORT), timeout=2).close()
    REACHED = "reached this machine's 127.0.0.1:%d" % PORT
except OSError as exc:
    REACHED = None
if REACHED or socket.gethostname() != os.environ["WANT_HOSTNAME"]:
    raise RuntimeError(json.dumps({"reached": REACHED, "hostname": socket.gethostname()}))


def handler(event, context):
    return {}
"""

IMPORTS_A_MISSING_MODULE = "import module_nobody_installed\n"


def check_in_root(task: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(LAMBDA_ROOT), "check", "--opt", str(frozen.frozen_layer()), "--task", str(task), *args],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(900)
def test_init_code_cannot_reach_this_machine_and_has_its_own_hostname(tmp_path):
    task = write(tmp_path / "task", {"probe.py": NETWORK_PROBE})
    os.chmod(task, 0o755)  # noqa: S103 (the sandbox user reads it)
    accepted = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.5)
        stop = threading.Event()

        def accept() -> None:
            while not stop.is_set():
                try:
                    accepted.append(listener.accept()[0])
                except OSError:
                    continue

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        env = [
            "--env",
            "HOST_PORT=%d" % listener.getsockname()[1],
            "--env",
            "WANT_HOSTNAME=" + lambda_root.HOSTNAME,
        ]
        r = check_in_root(task, "--handler", "probe.handler", *env)
        stop.set()
        thread.join(timeout=5)
    assert not accepted, "init code in the root reached a listener on this machine's 127.0.0.1"
    assert r.returncode == 0, r.stdout + r.stderr
    assert "init done" in r.stdout
    assert socket.gethostname() != lambda_root.HOSTNAME


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(900)
def test_every_module_is_imported_when_the_handler_was_assumed(tmp_path):
    task = write(
        tmp_path / "task",
        {"app.py": HANDLER_SOURCE.format(name="handler"), "jobs.py": IMPORTS_A_MISSING_MODULE},
    )
    os.chmod(task, 0o755)  # noqa: S103
    r = check_in_root(task, "--handler", "app.handler")
    assert r.returncode == 0, r.stdout + r.stderr  # the handler alone loads
    r = check_in_root(task, "--handler", "app.handler", "--also-import", "app", "--also-import", "jobs")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "a packaging fault: module jobs" in r.stderr and "module_nobody_installed" in r.stderr
    assert "module app" not in r.stderr


def test_lambda_root_environment_reaches_the_root_command(tmp_path):
    root = lambda_root.LambdaRoot(tmp_path)
    argv = root.command(["/var/task/bootstrap"], {"AWS_REGION": "eu-west-1"}, tmp_path)
    pairs = {argv[i + 1]: argv[i + 2] for i, word in enumerate(argv) if word == "--setenv"}
    assert pairs["AWS_DEFAULT_REGION"] == "eu-west-1" and pairs["LAMBDA_TASK_ROOT"] == "/var/task"
    assert argv[argv.index("--unshare-uts") :][:3] == ["--unshare-uts", "--hostname", lambda_root.HOSTNAME]
