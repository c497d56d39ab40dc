#!/usr/bin/env python3
"""Run an unpacked bootstrap the way Lambda does: in a root cut off from this machine.

The root (bubblewrap: its own mount, PID, IPC and UTS namespaces and a user namespace; a network
namespace of its own made by this script) holds only what Lambda gives a function: ``/var/task``
(read-only), ``/opt`` for a layer (read-only), a writable ``/tmp``, ``/dev`` nodes and ``/proc``. The
process runs as Lambda's sandbox user, with Lambda's environment (scripts/lambda_env.py), a hostname of
its own, and a network of nothing but a loopback interface: it reaches no service of this machine or
beyond, only the Runtime API (and the RIE) started inside that namespace. Two variants:

* ``bare``: nothing else, no C library at all. A bootstrap that leans on this machine's libraries
  cannot start there.
* ``glibc-2.31``: an older system, Debian 11's libc6 2.31 and libgcc (fetched from Debian's bullseye
  suite and cached in .cache/), its ``dash`` as ``/bin/sh``, ``/etc/hosts``, Amazon Linux's CA file
  path and the zone database, with Lambda's ``LD_LIBRARY_PATH`` pointing at that libc. A bootstrap
  that would load the system's C library beside its own fails there.

A zip is unpacked by Lambda's rules (``unpack_zip``): no entry outside the folder, links only inside
it and never written through, no setuid or setgid bit. A zip that breaks them is refused.

Two uses:

* ``check``: start the bootstrap against the Runtime API emulator (runtime_emulator.py) with no event,
  and report how init ended: the runtime asked for its first event (init done), posted an init
  error (which one, and whether it is a packaging fault), or exited (why). build.sh runs this on
  every zip it makes. The handler is loaded but never called.
* ``invoke``: the same root with AWS's Runtime Interface Emulator inside it, invoked once; prints
  the response, the function's log and the init duration (smoke.sh, build.sh --smoke).

The handler is ``--handler``, else the one the build recorded in the zip (scripts/function_handler.py),
else ``app.handler``.

    python3 scripts/lambda_root.py check --task dist/bootstrap.zip
    python3 scripts/lambda_root.py invoke --opt layer.zip --task src/ --event '{"a": 1}'
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import ctypes
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple, TypeVar

from function_handler import recorded_handler
from lambda_env import lambda_environment
from runtime_emulator import RuntimeEmulator

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache" / "lambda-root"
VARIANTS = ("bare", "glibc-2.31")
# Lambda reports a link-local address as a sandbox's hostname: one of that shape, not this machine's name.
HOSTNAME = "169.254.100.1"
DEFAULT_HANDLER = "app.handler"
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


T = TypeVar("T")
CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


class Loopback:
    """A network namespace of this process's own, whose only interface is loopback (up).

    A namespace belongs to a thread: one worker thread enters it and lives until ``close``; ``run``
    calls a function there, so that a socket it makes, or a process it starts, lives in the
    namespace, while the rest of this process stays on this machine's network. A process started
    there outlives no worker: bwrap's ``--die-with-parent`` is bound to the thread that started it.
    A root started in it reaches 127.0.0.1 of the namespace only (a Runtime API or RIE started there),
    nothing of this machine. Needs CAP_SYS_ADMIN (root), as bubblewrap's ``--unshare-net`` does
    without a user namespace."""

    def __init__(self) -> None:
        self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="loopback")
        try:
            self.run(self._enter)
        except BaseException:
            self._worker.shutdown()
            raise

    @staticmethod
    def _enter() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWNET) != 0:
            raise RootError(
                "cannot make a network namespace for the root (unshare: %s): the check runs as root, "
                "as the build does" % os.strerror(ctypes.get_errno())
            )
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            request = struct.pack("16sH", b"lo", 0)
            flags = struct.unpack("16sH", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
            fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | IFF_UP))

    def run(self, func: Callable[..., T], *args: object, **kwargs: object) -> T:
        """``func(*args, **kwargs)`` called inside the namespace; its result, or its exception."""
        return self._worker.submit(func, *args, **kwargs).result()

    def connect(self, port: int, timeout: float) -> socket.socket:
        """A TCP connection to 127.0.0.1:port of the namespace."""
        return self.run(socket.create_connection, ("127.0.0.1", port), timeout)

    def close(self) -> None:
        self._worker.shutdown()

    def __enter__(self) -> Loopback:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


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
        for inside, folder in (("/var/task", self.task), ("/opt", self.opt)):
            if folder is not None and (folder / "bootstrap").exists():
                return inside + "/bootstrap"
        raise RootError("no bootstrap in %s" % " or ".join(str(p) for p in (self.task, self.opt) if p))

    def command(self, argv: Sequence[str], env: Dict[str, str], scratch: Path, rie: Optional[Path] = None):
        """bwrap argv that runs ``argv`` inside the root with Lambda's environment, ``env`` laid over it.

        Start it with ``start``, in a ``Loopback``: bwrap itself leaves the network to its caller."""
        if self.variant not in VARIANTS:
            raise RootError("unknown variant %r (known: %s)" % (self.variant, ", ".join(VARIANTS)))
        cmd = [bwrap_command(), "--die-with-parent", "--unshare-pid", "--unshare-ipc"]
        cmd += ["--unshare-uts", "--hostname", HOSTNAME]
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
        for key, value in lambda_environment(env).items():
            cmd += ["--setenv", key, value]
        return [*cmd, "--", *argv]

    def start(
        self,
        loopback: Loopback,
        argv: Sequence[str],
        function_env: Dict[str, str],
        scratch: Path,
        rie: Optional[Path] = None,
        **popen: object,
    ) -> subprocess.Popen:
        """``argv`` started in the root with ``function_env`` over Lambda's, in ``loopback``'s network
        namespace, in a session of its own (``popen``: the rest of subprocess.Popen's arguments)."""
        command = self.command(argv, function_env, scratch, rie)
        return loopback.run(subprocess.Popen, command, start_new_session=True, **popen)


# --- unzip, by Lambda's rules ------------------------------------------------------------------------------


class UnsafeZip(RootError):
    """A zip entry that Lambda's rules refuse: the message names it."""


def _entry_parts(name: str) -> List[str]:
    """The path components of an entry's name; an UnsafeZip for any name that could leave the folder."""
    if not name or "\0" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise UnsafeZip("zip entry %r: an absolute or empty name" % name)
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UnsafeZip("zip entry %r: a '..' component would leave the folder" % name)
    if not parts:
        raise UnsafeZip("zip entry %r names the folder itself" % name)
    return parts


def _real_parent(folder: Path, parts: List[str], name: str) -> Path:
    """The entry's parent folder, made as real folders; an UnsafeZip if any of it is a link."""
    parent = folder
    for part in parts[:-1]:
        parent = parent / part
        if parent.is_symlink():
            raise UnsafeZip(
                "zip entry %r would be written through the link %s" % (name, parent.relative_to(folder))
            )
        if not parent.exists():
            parent.mkdir(mode=0o755)
        elif not parent.is_dir():
            raise UnsafeZip("zip entry %r: %s is a file, not a folder" % (name, parent.relative_to(folder)))
    return parent


def _inside(folder: Path, path: Path) -> bool:
    real, top = os.path.realpath(path), os.path.realpath(folder)
    return real == top or real.startswith(top + os.sep)


def unpack_zip(path: Path, folder: Path) -> Path:
    """Unpack a zip into ``folder`` as Lambda does, and by its rules.

    Kept: the permission bits stored in it (without setuid, setgid or sticky bits) and its symbolic
    links. Refused (UnsafeZip, naming the entry): a name that is absolute or holds ``..``; a link
    whose target, resolved, lies outside the folder (an absolute target included); an entry written
    through a link (``d/f`` after a link ``d``, or ``f`` after a link ``f``); device, FIFO and socket
    entries. Nothing is written outside ``folder``; the caller removes it after a refusal."""
    links: List[Tuple[str, Path]] = []
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            mode = info.external_attr >> 16
            kind = stat.S_IFMT(mode)
            parts = _entry_parts(info.filename)
            parent = _real_parent(folder, parts, info.filename)
            target = parent / parts[-1]
            if target.is_symlink():
                raise UnsafeZip("zip entry %r would be written through the link before it" % info.filename)
            if info.is_dir() or kind == stat.S_IFDIR:
                if target.exists() and not target.is_dir():
                    raise UnsafeZip("zip entry %r: a folder where a file is" % info.filename)
                target.mkdir(mode=0o755, exist_ok=True)
                continue
            if kind == stat.S_IFLNK:
                link = archive.read(info).decode("utf-8", errors="surrogateescape")
                if link.startswith("/") or "\0" in link:
                    raise UnsafeZip("zip entry %r: a link to the absolute path %r" % (info.filename, link))
                if target.exists():
                    raise UnsafeZip("zip entry %r: a link where a file is" % info.filename)
                os.symlink(link, target)
                if not _inside(folder, target):
                    raise UnsafeZip("zip entry %r: a link to %r, outside the folder" % (info.filename, link))
                links.append((info.filename, target))
                continue
            if kind not in (0, stat.S_IFREG):
                raise UnsafeZip(
                    "zip entry %r: neither a file, a folder nor a link (mode %o)" % (info.filename, mode)
                )
            permissions = stat.S_IMODE(mode) & 0o777 or 0o644
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
            if target.is_dir():
                raise UnsafeZip("zip entry %r: a file where a folder is" % info.filename)
            with archive.open(info) as source, os.fdopen(os.open(target, flags, permissions), "wb") as out:
                shutil.copyfileobj(source, out)
            os.chmod(target, permissions, follow_symlinks=False)
    # A link made early may resolve through one made later: judge every link again, all of them made.
    for name, link_path in links:
        if not _inside(folder, link_path):
            raise UnsafeZip("zip entry %r: a link that resolves outside the folder" % name)
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


# --- check: init, against the emulator, and what its outcome says about the zip --------------------------

# Where a frame runs the bundle's own code (the runtime, PyInstaller's loader and hooks), not the
# function's or its libraries'. A failure raised there is the build's fault whatever the function does.
RUNTIME_FRAMES = re.compile(r"^(bootstrap\.py|lambda_bootstrap/.*|pyimod\d+_\w+\.py|pyi_rth_\w+\.py)$")
FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')
SHARED_LIBRARY = re.compile(
    r"cannot open shared object file|Failed to load dynlib|\.so(\.\d+)*: (undefined symbol|wrong ELF class)"
    r"|version `GLIBC_[0-9.]+' not found"
)
MISSING_PATH = re.compile(r"\[Errno (?:2|20)\] [^:]+: '([^']*)'")
IMPORT_ERRORS = ("ModuleNotFoundError", "ImportError", "PyInstallerImportError")


class Verdict(NamedTuple):
    packaging_fault: bool
    reason: str  # why, in a sentence that the build prints


def frames(error: dict) -> List[Tuple[str, int, str]]:
    """(file, line, function) of every frame of a posted init error, outermost first."""
    found = []
    for entry in error.get("stackTrace") or []:
        match = FRAME.search(str(entry))
        if match:
            found.append((match.group(1), int(match.group(2)), match.group(3)))
    return found


def judge_init_error(error: dict) -> Verdict:
    """Whether an init error is the bundle's fault (a packaging fault) or the function's configuration.

    The bundle's fault: an error of the runtime itself (``Runtime.*``: the handler's module, a module
    or a library cannot be loaded, or the handler is not there); a module that cannot be imported; a
    shared library that cannot be loaded; a file missing under /var/task or /opt (or a relative path,
    which the working directory /var/task resolves); any failure raised in the runtime's own code.
    Anything else was raised by the function's own code (or a library it called) while reading its
    configuration: a variable it reads, a service it calls. That depends on where it runs, and is
    accepted with the reason said."""
    kind = str(error.get("errorType") or "")
    message = str(error.get("errorMessage") or "")
    stack = frames(error)
    # The innermost frame with a file of its own (not "<frozen os>"): where the function called.
    located = [frame for frame in stack if not frame[0].startswith("<")] or stack
    where = "%s, line %d" % located[-1][:2] if located else "no frame"
    if kind.startswith("Runtime."):
        hint = ""
        if kind in ("Runtime.ImportModuleError", "Runtime.HandlerNotFound", "Runtime.MalformedHandlerName"):
            hint = " (if the handler is another one, give it with --handler MODULE.FUNCTION)"
        return Verdict(True, "the runtime could not load the function: %s%s" % (kind, hint))
    if kind in IMPORT_ERRORS or SHARED_LIBRARY.search(message):
        return Verdict(True, "a module or shared library of the bundle is missing (%s at %s)" % (kind, where))
    missing = MISSING_PATH.search(message)
    if missing:
        path = missing.group(1)
        if not path.startswith("/") or path.startswith(("/var/task/", "/opt/")):
            return Verdict(True, "a file of the bundle is missing: %s (%s at %s)" % (path, kind, where))
    runtime = [frame for frame in stack if RUNTIME_FRAMES.match(frame[0])]
    if runtime:
        return Verdict(True, "%s raised in the bundle's own code (%s, line %d)" % (kind, *runtime[-1][:2]))
    return Verdict(
        False,
        "%s raised at import by the function's own code (%s), not a missing library, module or file of the "
        "bundle: it depends on the function's configuration (pass what it reads with --env KEY=VALUE)"
        % (kind, where),
    )


class InitOutcome(NamedTuple):
    state: str  # "ready" (asked for an event), "init-error" (posted one), "exited", "timeout"
    error: Optional[dict]  # the posted init error
    exit_code: Optional[int]
    output: str  # what the runtime printed
    seconds: float

    @property
    def verdict(self) -> Verdict:
        if self.state == "ready":
            return Verdict(False, "init done")
        if self.state == "init-error":
            return judge_init_error(self.error or {})
        return Verdict(True, "the bootstrap did not finish init")

    @property
    def packaging_fault(self) -> bool:
        """Whether the bootstrap itself is broken, rather than the function's configuration."""
        return self.verdict.packaging_fault


def _stop(proc: subprocess.Popen) -> None:
    """End the sandbox we started (bwrap is its own session leader and PID-namespace parent)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def check_init(root: LambdaRoot, handler: str, env: Dict[str, str], timeout: float = 60.0) -> InitOutcome:
    """Start the bootstrap in the root and wait, at most ``timeout`` s, for init to end."""
    scratch = Path(tempfile.mkdtemp(prefix="lambda-root-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, scratch, True)
        loopback = stack.enter_context(Loopback())
        # Bound inside the root's network namespace, the only place the runtime can reach it. No event
        # ever comes: the first /next is held until the end.
        api = loopback.run(lambda: RuntimeEmulator().start())
        stack.callback(api.stop)
        runtime_env = {
            **env,
            "_HANDLER": handler,
            "AWS_LAMBDA_RUNTIME_API": api.address,
        }
        log = stack.enter_context(open(scratch / "output", "w+b"))
        started = time.monotonic()
        proc = root.start(
            loopback,
            [root.bootstrap],
            runtime_env,
            scratch,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
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
            print(
                "the invoke failed: HTTP %d, %s" % (status, body[:200].decode(errors="replace")),
                file=sys.stderr,
            )
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


def check_modules(
    root: LambdaRoot, modules: Sequence[str], env: Dict[str, str], timeout: float
) -> List[Verdict]:
    """Import each module in the root (as the handler's module, with a function name it lacks).

    Returns a verdict for each module that failed, its reason naming the module."""
    failed = []
    for module in modules:
        outcome = check_init(root, module + ".__lambda_root_import_check__", env, timeout)
        if (
            outcome.state == "init-error"
            and (outcome.error or {}).get("errorType") == "Runtime.HandlerNotFound"
        ):
            continue  # the module imported; only the made-up function is missing
        verdict = outcome.verdict
        failed.append(
            Verdict(
                verdict.packaging_fault, "module %s: %s; %s" % (module, describe(outcome), verdict.reason)
            )
        )
    return failed


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("check", "invoke"))
    parser.add_argument("--task", type=Path, help="folder or zip for /var/task (the function)")
    parser.add_argument("--opt", type=Path, help="folder or zip for /opt (a layer)")
    parser.add_argument("--variant", choices=VARIANTS, default="bare")
    parser.add_argument(
        "--handler",
        help="_HANDLER (default: the one the zip records, else %s; a probe module for a bare layer)"
        % DEFAULT_HANDLER,
    )
    parser.add_argument(
        "--also-import", action="append", default=[], metavar="MODULE",
        help="check only: import this module of the function too (repeatable), when the handler was assumed",
    )  # fmt: skip
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--event", default="{}", help="JSON, or @FILE (invoke only; default {})")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
    args = parser.parse_args(argv)
    if args.task is None and args.opt is None:
        parser.error("give --task, --opt or both")
    problems: List[Verdict] = []
    try:
        env = parse_env(args.env)
        event = read_event(args.event) if args.action == "invoke" else b""
        with contextlib.ExitStack() as stack:
            task = stack.enter_context(unpacked(args.task))
            opt = stack.enter_context(unpacked(args.opt))
            handler = args.handler or (args.task and recorded_handler(args.task)) or DEFAULT_HANDLER
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
            if not outcome.packaging_fault:
                problems = check_modules(root, args.also_import, env, args.timeout)
    except RootError as exc:
        print("lambda_root.py: error: %s" % exc, file=sys.stderr)
        return 2
    prefix = "lambda_root.py: %s root:" % args.variant
    verdict = outcome.verdict
    if outcome.state == "ready":
        print("%s %s (handler %s)" % (prefix, describe(outcome), handler))
    else:
        print(outcome.output.rstrip(), file=sys.stderr)
        print("%s %s (handler %s)" % (prefix, describe(outcome), handler), file=sys.stderr)
    for judged in [verdict] * (outcome.state != "ready") + problems:
        print(
            "  %s: %s" % ("a packaging fault" if judged.packaging_fault else "accepted", judged.reason),
            file=sys.stderr,
        )
    if verdict.packaging_fault or any(judged.packaging_fault for judged in problems):
        return 1
    return 0 if outcome.state == "ready" and not problems else 3


if __name__ == "__main__":
    sys.exit(main())
