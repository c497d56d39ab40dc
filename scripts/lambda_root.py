#!/usr/bin/env python3
"""Run an unpacked bootstrap the way Lambda does: in a root that holds nothing of this machine.

The root (bubblewrap: a mount, PID and IPC namespace; a user namespace too when not run as root) holds
only what Lambda gives a function: ``/var/task`` (read-only), ``/opt`` for a layer (read-only), a
writable ``/tmp``, ``/dev`` nodes and ``/proc``, and the process runs as Lambda's sandbox user with
Lambda's environment. Two variants:

* ``bare``: nothing else, no C library at all. A bootstrap that leans on this machine's libraries
  cannot start there.
* ``glibc-2.31``: an older system, Debian 11's libc6 2.31 and libgcc (fetched from Debian's bullseye
  suite and cached in .cache/), its ``dash`` as ``/bin/sh``, ``/etc/hosts``, Amazon Linux's CA file
  path and the zone database, with Lambda's ``LD_LIBRARY_PATH`` pointing at that libc. A bootstrap
  that would load the system's C library beside its own fails there.

Two uses:

* ``check``: start the bootstrap against the Runtime API emulator (runtime_emulator.py) with no event,
  and report how init ended: the runtime asked for its first event (init done), posted an init
  error (which one), or exited (why). build.sh runs this on every zip it makes. The handler is
  loaded but never called.
* ``invoke``: the same root with AWS's Runtime Interface Emulator inside it, invoked once; prints
  the response, the function's log and the init duration (smoke.sh, build.sh --smoke).

    python3 scripts/lambda_root.py check --task dist/bootstrap.zip --handler app.handler
    python3 scripts/lambda_root.py invoke --opt layer.zip --task src/ --event '{"a": 1}'
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence

from runtime_emulator import RuntimeEmulator

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache" / "lambda-root"
VARIANTS = ("bare", "glibc-2.31")
# The environment of every provided.al2023 function (AWS's provided:al2023 image sets the same); the RIE
# adds the function's own (AWS_LAMBDA_FUNCTION_NAME, ...).
LAMBDA_ENV = {
    "LAMBDA_TASK_ROOT": "/var/task",
    "LAMBDA_RUNTIME_DIR": "/var/runtime",
    "LANG": "en_US.UTF-8",
    "TZ": ":UTC",
    "PATH": "/usr/local/bin:/usr/bin/:/bin:/opt/bin",
    "LD_LIBRARY_PATH": "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:"
    "/var/task:/var/task/lib:/opt/lib",
}
SANDBOX_UID, SANDBOX_GID = 993, 990  # Lambda's sbx_user1051
RIE_INSIDE = "/usr/local/bin/aws-lambda-rie"
SYSTEM_LIB_DIR = "%s-linux-gnu" % os.uname().machine  # Debian's multiarch folder
# Debian 11 (bullseye): glibc 2.31, older than provided.al2023's 2.34, with the same sonames.
OLD_SYSTEM_SUITE = "bullseye"
OLD_SYSTEM_PACKAGES = ("libc6", "libgcc-s1", "dash")
PROBE_MODULE = "lambda_root_probe"
PROBE_SOURCE = '''"""Written by scripts/lambda_root.py: a handler for a runtime-only bootstrap's check."""
import sys


def handler(event, context):
    return {"python": sys.version.split()[0], "event": event}
'''


class RootError(RuntimeError):
    """The root cannot be made or entered here; the message says what to do."""


# --- the root ------------------------------------------------------------------------------------------


def bwrap_command() -> str:
    found = shutil.which("bwrap")
    if not found:
        raise RootError(
            "bubblewrap (bwrap) is missing: apt-get install bubblewrap (Debian/Ubuntu) or "
            "dnf install bubblewrap (Fedora/Amazon Linux)"
        )
    return found


def old_system_root() -> Path:
    """Debian 11's libc6, libgcc-s1 and dash unpacked into a folder (made once, then cached)."""
    root = CACHE / ("%s-%s" % (OLD_SYSTEM_SUITE, os.uname().machine))
    if not (root / ".complete").exists():
        _fetch_old_system(root)
    # Mount points for what Amazon Linux has and these packages do not bring: the zone database, the RIE.
    (root / "usr" / "share" / "zoneinfo").mkdir(parents=True, exist_ok=True)
    (root / "usr" / "lib64").mkdir(parents=True, exist_ok=True)
    (root / RIE_INSIDE.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
    (root / RIE_INSIDE.lstrip("/")).touch()
    return root


def _fetch_old_system(root: Path) -> None:
    for tool in ("apt-get", "dpkg-deb"):
        if not shutil.which(tool):
            raise RootError(
                "the glibc-2.31 root is made from Debian 11's packages with %s, which this machine lacks: "
                "run it on Debian or Ubuntu, or use --variant bare" % tool
            )
    work = Path(tempfile.mkdtemp(prefix="lambda-root-apt-"))
    try:
        (work / "lists" / "partial").mkdir(parents=True)
        (work / "cache" / "archives" / "partial").mkdir(parents=True)
        (work / "status").touch()
        (work / "sources.list").write_text("deb http://deb.debian.org/debian %s main\n" % OLD_SYSTEM_SUITE)
        # apt with its own source list and state: this machine's own apt setup is neither read nor changed.
        options = []
        for key, value in (
            ("Dir::Etc::sourcelist", work / "sources.list"),
            ("Dir::Etc::sourceparts", "-"),
            ("Dir::State::Lists", work / "lists"),
            ("Dir::State::status", work / "status"),
            ("Dir::Cache", work / "cache"),
            ("APT::Sandbox::User", "root" if os.geteuid() == 0 else os.environ.get("USER", "nobody")),
        ):
            options += ["-o", "%s=%s" % (key, value)]
        for args in (["update"], ["download", *OLD_SYSTEM_PACKAGES]):
            result = subprocess.run(
                ["apt-get", "-q", *options, *args], cwd=work, capture_output=True, text=True, timeout=300
            )
            if result.returncode != 0:
                raise RootError(
                    "apt-get %s for Debian %s failed (network? Debian's registry must be reachable):\n%s"
                    % (args[0], OLD_SYSTEM_SUITE, result.stderr[-2000:])
                )
        staging = Path(tempfile.mkdtemp(prefix=root.name + ".", dir=CACHE if CACHE.exists() else None))
        for deb in sorted(work.glob("*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(staging)], check=True, timeout=120)
        names = sorted(deb.name for deb in work.glob("*.deb"))
        (staging / ".complete").write_text("\n".join(names) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(root, ignore_errors=True)
    staging.rename(root)


def _etc_files(folder: Path) -> Dict[str, Path]:
    """The /etc files of the old-system variant, written into folder: what Amazon Linux has there."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "hosts": "127.0.0.1 localhost\n127.0.0.2 lambda-root-check.internal\n",
        "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
        "passwd": "root:x:0:0:root:/root:/bin/sh\nsbx_user1051:x:%d:%d::/home/sbx_user1051:/sbin/nologin\n"
        % (SANDBOX_UID, SANDBOX_GID),
        "group": "root:x:0:\nsbx_user1051:x:%d:\n" % SANDBOX_GID,
    }
    result = {}
    for name, text in files.items():
        (folder / name).write_text(text)
        result["/etc/" + name] = folder / name
    for ca in ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"):
        if os.path.isfile(ca):
            result["/etc/pki/tls/certs/ca-bundle.crt"] = Path(ca)
            break
    return result


class Layer(NamedTuple):
    """A runtime-only bundle, run from /opt in a root whose /var/task is the function's folder."""

    bundle: Path
    variant: str = "bare"


class LambdaRoot(NamedTuple):
    """What goes into the root: ``task`` at /var/task, ``opt`` at /opt (either may be None)."""

    task: Optional[Path]
    opt: Optional[Path] = None
    variant: str = "bare"

    @property
    def bootstrap(self) -> str:
        """Where Lambda looks for the bootstrap: /var/task/bootstrap, then /opt/bootstrap."""
        if self.task is not None and (self.task / "bootstrap").exists():
            return "/var/task/bootstrap"
        if self.opt is not None and (self.opt / "bootstrap").exists():
            return "/opt/bootstrap"
        raise RootError("no bootstrap in %s" % " or ".join(str(p) for p in (self.task, self.opt) if p))

    def command(self, argv: Sequence[str], env: Dict[str, str], scratch: Path, rie: Optional[Path] = None):
        """bwrap argv that runs ``argv`` inside the root with exactly ``env`` (Lambda's on top)."""
        if self.variant not in VARIANTS:
            raise RootError("unknown variant %r (known: %s)" % (self.variant, ", ".join(VARIANTS)))
        cmd = [bwrap_command(), "--die-with-parent", "--unshare-pid", "--unshare-ipc"]
        cmd += ["--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID)]
        # /tmp is the sandbox's own tmpfs, as on Lambda, not this machine's.
        cmd += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--dir", "/var/task", "--dir", "/opt"]  # noqa: S108
        if self.task is not None:
            cmd += ["--ro-bind", str(self.task), "/var/task"]
        if self.opt is not None:
            cmd += ["--ro-bind", str(self.opt), "/opt"]
        if self.variant == "glibc-2.31":
            system = old_system_root()
            for top in ("lib", "usr", "bin"):
                cmd += ["--ro-bind", str(system / top), "/" + top]
            # Amazon Linux keeps its C library in /lib64 and /usr/lib64, both on Lambda's LD_LIBRARY_PATH:
            # put Debian's there too, so that a bootstrap that searches that path finds the older libc.
            for folder in ("/lib64", "/usr/lib64"):
                cmd += ["--ro-bind", str(system / "lib" / SYSTEM_LIB_DIR), folder]
            if os.path.isdir("/usr/share/zoneinfo"):
                cmd += ["--ro-bind", "/usr/share/zoneinfo", "/usr/share/zoneinfo"]
            for inside, outside in _etc_files(scratch / "etc").items():
                cmd += ["--ro-bind", str(outside), inside]
        if rie is not None:  # after the system's /usr, which would hide it
            cmd += ["--ro-bind", str(rie), RIE_INSIDE]
        cmd += ["--chdir", "/var/task", "--clearenv"]
        for key, value in {**LAMBDA_ENV, **env}.items():
            cmd += ["--setenv", key, value]
        return [*cmd, "--", *argv]


def unpack_zip(path: Path, folder: Path) -> Path:
    """Unpack a zip as Lambda does: the Unix modes stored in it kept, its symlinks made."""
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                target = folder / info.filename
                target.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(archive.read(info).decode(), target)
                continue
            target = Path(archive.extract(info, folder))
            if stat.S_IMODE(mode) and not info.is_dir():
                os.chmod(target, stat.S_IMODE(mode))
    os.chmod(folder, 0o755)  # noqa: S103 (the sandbox user must reach it, as in Lambda)
    return folder


@contextlib.contextmanager
def unpacked(path: Optional[Path]) -> Iterator[Optional[Path]]:
    """A folder as it is, or a zip unpacked as Lambda unpacks it into a temp dir."""
    if path is None or path.is_dir():
        yield path
        return
    if not zipfile.is_zipfile(path):
        raise RootError("%s is neither a folder nor a zip" % path)
    folder = Path(tempfile.mkdtemp(prefix="lambda-root-unzip-"))
    try:
        yield unpack_zip(path, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- check: init, against a Runtime API that answers nothing ---------------------------------------------


class InitOutcome(NamedTuple):
    state: str  # "ready" (asked for an event), "init-error" (posted one), "exited", "timeout"
    error: Optional[dict]  # the posted init error
    exit_code: Optional[int]
    output: str  # what the runtime printed
    seconds: float

    @property
    def packaging_fault(self) -> bool:
        """Whether the bootstrap itself is broken, rather than the function's environment.

        The runtime's own error types (Runtime.ImportModuleError, Runtime.UserCodeSyntaxError,
        Runtime.HandlerNotFound, ...) mean a module, a library or the handler cannot be loaded; an
        exception raised by the function's own import-time code (a KeyError for a missing variable)
        is bare, and depends on where it runs."""
        if self.state == "ready":
            return False
        if self.state == "init-error":
            return str((self.error or {}).get("errorType", "")).startswith("Runtime.")
        return True


def _stop(proc: subprocess.Popen) -> None:
    """End the sandbox we started (bwrap is its own session leader and PID-namespace parent)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def check_init(root: LambdaRoot, handler: str, env: Dict[str, str], timeout: float = 60.0) -> InitOutcome:
    """Start the bootstrap in the root and wait, at most ``timeout`` s, for init to end."""
    api = RuntimeEmulator().start()  # no event ever comes: the first /next is held until the end
    scratch = Path(tempfile.mkdtemp(prefix="lambda-root-"))
    try:
        runtime_env = {"_HANDLER": handler, "AWS_LAMBDA_RUNTIME_API": api.address, **env}
        command = root.command([root.bootstrap], runtime_env, scratch)
        with open(scratch / "output", "w+b") as log:
            started = time.monotonic()
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                deadline = started + timeout
                while not api.wait_init(0.02) and proc.poll() is None and time.monotonic() < deadline:
                    pass
                if api.init_error is not None:
                    # The runtime exits after posting; its last words belong in the report.
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=5)
            finally:
                seconds = time.monotonic() - started
                _stop(proc)
            log.seek(0)
            output = log.read().decode(errors="replace")
        if api.init_error is not None:
            state = "init-error"
        elif api.wait_init(0) == "ready":
            state = "ready"
        elif proc.returncode is not None and seconds < timeout:
            state = "exited"
        else:
            state = "timeout"
        exit_code = proc.returncode if state in ("exited", "init-error") else None
        return InitOutcome(state, api.init_error, exit_code, output, seconds)
    finally:
        api.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def describe(outcome: InitOutcome) -> str:
    if outcome.state == "ready":
        return "init done in %.0f ms: the runtime loaded the handler and asked for an event" % (
            outcome.seconds * 1000
        )
    if outcome.state == "init-error":
        error = outcome.error or {}
        return "init failed: %s: %s" % (error.get("errorType"), error.get("errorMessage"))
    if outcome.state == "exited":
        return "the bootstrap exited with status %s before init was done" % outcome.exit_code
    return "init did not end within the time allowed"


# --- invoke: under the RIE, inside the root --------------------------------------------------------------


def invoke(root: LambdaRoot, handler: str, env: Dict[str, str], event: bytes, timeout: float) -> int:
    import rie

    with contextlib.ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lambda-root-")))
        runtime = rie.RieProcess(
            [root.bootstrap], env={"_HANDLER": handler, **env}, root=root, scratch=scratch
        )
        try:
            stack.enter_context(runtime)
        except rie.RieError as exc:
            raise RootError(str(exc)) from exc
        try:
            status, body, _ = runtime.invoke(event, timeout=timeout)
        except OSError as exc:
            print("invoke failed: %s\n--- log ---\n%s" % (exc, runtime.logs()), file=sys.stderr)
            return 1
        print("--- function log (%s root) ---" % root.variant)
        print(runtime.logs().rstrip())
        print("--- response: HTTP %d ---" % status)
        print(body.decode(errors="replace"))
        inits = runtime.init_reports_ms()
        print("init duration: %s" % ("%.1f ms (INIT REPORT)" % inits[0] if inits else "no INIT REPORT line"))
        if rie.is_error_response(status, body):
            print("the invoke failed (HTTP %d or an error response)" % status, file=sys.stderr)
            return 1
        return 0


# --- command line ----------------------------------------------------------------------------------------


def parse_env(pairs: Sequence[str]) -> Dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise RootError("--env wants KEY=VALUE, not %r" % pair)
        env[key] = value
    return env


def read_event(text: str) -> bytes:
    data = Path(text[1:]).read_bytes() if text.startswith("@") else text.encode()
    try:
        json.loads(data)
    except ValueError as exc:
        raise RootError("the event is not valid JSON (%s)" % exc) from exc
    return data


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("check", "invoke"))
    parser.add_argument("--task", type=Path, help="folder or zip for /var/task (the function)")
    parser.add_argument("--opt", type=Path, help="folder or zip for /opt (a layer)")
    parser.add_argument("--variant", choices=VARIANTS, default="bare")
    parser.add_argument("--handler", help="_HANDLER (default: app.handler; a probe module for a bare layer)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--event", default="{}", help="JSON, or @FILE (invoke only; default {})")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
    args = parser.parse_args(argv)
    if args.task is None and args.opt is None:
        parser.error("give --task, --opt or both")
    try:
        env = parse_env(args.env)
        event = read_event(args.event) if args.action == "invoke" else b""
        with contextlib.ExitStack() as stack:
            task = stack.enter_context(unpacked(args.task))
            opt = stack.enter_context(unpacked(args.opt))
            handler = args.handler or "app.handler"
            if task is None:
                # A runtime-only layer: Lambda still needs a function; give it a probe handler as source.
                task = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lambda-root-task-")))
                (task / (PROBE_MODULE + ".py")).write_text(PROBE_SOURCE)
                os.chmod(task, 0o755)  # noqa: S103
                handler = args.handler or PROBE_MODULE + ".handler"
            root = LambdaRoot(task, opt, args.variant)
            if args.action == "invoke":
                return invoke(root, handler, env, event, args.timeout)
            outcome = check_init(root, handler, env, args.timeout)
    except RootError as exc:
        print("lambda_root.py: error: %s" % exc, file=sys.stderr)
        return 2
    verdict = describe(outcome)
    if outcome.state == "ready":
        print("lambda_root.py: %s root: %s" % (args.variant, verdict))
        return 0
    print(outcome.output.rstrip(), file=sys.stderr)
    if outcome.packaging_fault:
        print("lambda_root.py: %s root: %s" % (args.variant, verdict), file=sys.stderr)
        return 1
    print(
        "lambda_root.py: %s root: %s\n  This comes from the function's own code at import (its environment: "
        "pass what it needs with --env KEY=VALUE); the bootstrap itself loaded." % (args.variant, verdict),
        file=sys.stderr,
    )
    return 3


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
