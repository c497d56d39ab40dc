"""What the bundled C library gives a function in a Lambda-like root, and what it leaves to the system.

The runtime-only bundle (tests/frozen.py, at /opt) serves a probe shipped as source in /var/task. The
bare root has nothing of a system; the glibc-2.31 root has an older C library, /etc (passwd, hosts,
nsswitch.conf naming files and dns) and /bin/sh.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from frozen import frozen_layer

REPO = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.slow, pytest.mark.build]

PROBE = r"""
import ctypes
import locale
import os
import pwd
import socket
import subprocess


def iconv(name):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.iconv_open.restype = ctypes.c_void_p
    libc.iconv_open.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.iconv.argtypes = [ctypes.c_void_p] + [ctypes.c_void_p] * 4
    handle = libc.iconv_open(b"UTF-8", name.encode())
    if handle in (None, ctypes.c_void_p(-1).value):
        return "iconv_open failed, errno %d" % ctypes.get_errno()
    source = "caf\u00e9 \u20ac".encode(name, errors="replace")
    inbuf = ctypes.create_string_buffer(source, len(source))
    out = ctypes.create_string_buffer(64)
    inptr, outptr = ctypes.c_char_p(ctypes.addressof(inbuf)), ctypes.c_char_p(ctypes.addressof(out))
    inleft, outleft = ctypes.c_size_t(len(source)), ctypes.c_size_t(64)
    libc.iconv(handle, ctypes.byref(inptr), ctypes.byref(inleft), ctypes.byref(outptr), ctypes.byref(outleft))
    libc.iconv_close(ctypes.c_void_p(handle))
    return out.raw[: 64 - outleft.value].decode()


def try_call(call):
    try:
        return call()
    except Exception as exc:
        return "%s: %s" % (type(exc).__name__, exc)


def handler(event, context):
    facts = {name: iconv(name) for name in ("ISO-8859-1", "CP1252", "ISO-8859-15")}
    facts["GCONV_PATH"] = os.environ.get("GCONV_PATH")
    facts["C.UTF-8"] = try_call(lambda: locale.setlocale(locale.LC_ALL, "C.UTF-8"))
    facts["getpwuid"] = try_call(lambda: pwd.getpwuid(os.getuid()).pw_name)
    facts["localhost"] = try_call(lambda: socket.getaddrinfo("localhost", 80, socket.AF_INET)[0][4][0])
    facts["hosts"] = try_call(lambda: socket.getaddrinfo("lambda-root-check.internal", 80)[0][4][0])
    if os.path.exists("/bin/sh"):
        facts["child"] = subprocess.run(
            ["/bin/sh", "-c", 'echo "GCONV_PATH=${GCONV_PATH-unset}"'], capture_output=True, text=True
        ).stdout.strip()
    return facts
"""


def probe(tmp_path: Path, variant: str, *env: str) -> dict:
    task = tmp_path / "task"
    task.mkdir()
    (task / "probe.py").write_text(PROBE)
    task.chmod(0o755)
    argv = [sys.executable, str(REPO / "scripts" / "lambda_root.py"), "invoke", "--opt", str(frozen_layer()),
            "--task", str(task), "--variant", variant, "--handler", "probe.handler"]  # fmt: skip
    for pair in env:
        argv += ["--env", pair]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    match = re.search(r"^--- response: HTTP 200 ---\n(.*)$", proc.stdout, re.M)
    assert match, proc.stdout
    return json.loads(match.group(1))


@pytest.mark.timeout(900)
def test_iconv_converts_with_the_bundled_modules_in_a_bare_root(tmp_path):
    facts = probe(tmp_path, "bare")
    assert facts["ISO-8859-1"] == "caf\u00e9 ?", facts
    assert facts["CP1252"] == "caf\u00e9 \u20ac", facts
    assert facts["ISO-8859-15"] == "caf\u00e9 \u20ac", facts
    # The bundle's GCONV_PATH served the runtime's own C library only: the function does not see it.
    assert facts["GCONV_PATH"] is None
    # What a bare root cannot give: no /etc, so no user names and no hosts file; no locale data.
    assert facts["getpwuid"].startswith("KeyError"), facts
    assert facts["C.UTF-8"].startswith("Error: unsupported locale setting"), facts


@pytest.mark.timeout(900)
def test_names_and_children_on_an_older_system(tmp_path):
    facts = probe(tmp_path, "glibc-2.31", "GCONV_PATH=/usr/lib64/gconv")
    assert facts["CP1252"] == "caf\u00e9 \u20ac", facts
    # nsswitch.conf's files and dns: built into the bundled libc (glibc >= 2.34), no NSS module loaded.
    assert facts["getpwuid"] == "sbx_user1051", facts
    assert facts["localhost"] == "127.0.0.1" and facts["hosts"] == "127.0.0.2", facts
    # The function's environment and its children have the value Lambda gave, not the bundle's folder.
    assert facts["GCONV_PATH"] == "/usr/lib64/gconv"
    assert facts["child"] == "GCONV_PATH=/usr/lib64/gconv", facts
