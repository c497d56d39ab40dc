#!/usr/bin/env python3
"""Which handler a function's folder holds, and the handler a zip was built and checked with.

Lambda takes the handler (``_HANDLER``) from the function's configuration, not from the zip. When the
build is not told (``build.sh --handler``), it finds it the way a reader of the folder would:

1. a SAM template (``template.yaml``, ``.yml`` or ``.json``) in the folder or the one above it, whose
   function's ``CodeUri`` is this folder, names it (``Handler``, or ``Globals.Function.Handler``);
2. else the function's modules (its top-level ``*.py``, tests and ``setup.py`` left out) hold one
   obvious handler: a module-level function named ``handler``, ``lambda_handler`` or ``*_handler``
   that takes ``(event, context)``. AWS's console default ``lambda_function.lambda_handler`` and SAM's
   ``app.lambda_handler`` are found this way.

When in doubt (a template naming several handlers, several candidates), it assumes one, says so, and
names every module of the folder so that the check imports each of them. When nothing is found, it
stops and asks for ``--handler MODULE.FUNCTION``.

The zip records the handler in its comment (``lambda-handler=MODULE.FUNCTION``), which Lambda ignores:
the check and ./smoke.sh use it when not told otherwise.

    python3 scripts/function_handler.py find FUNCTION_DIR   # stdout: HANDLER [MODULE...]
    python3 scripts/function_handler.py record ZIP HANDLER
    python3 scripts/function_handler.py show ZIP
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional

REPO = Path(__file__).resolve().parent.parent
COMMENT_PREFIX = b"lambda-handler="
TEMPLATE_NAMES = ("template.yaml", "template.yml", "template.json")
FUNCTION_TYPES = ("AWS::Serverless::Function",)
OBVIOUS = re.compile(r"^(handler|lambda_handler|\w+_handler)$")
# The handlers AWS's own templates and console name, in the order a tie is broken.
USUAL = (
    "lambda_function.lambda_handler",
    "app.lambda_handler",
    "app.handler",
    "handler.handler",
    "main.handler",
)
NOT_FUNCTION_CODE = re.compile(r"^(test_.*|.*_test|conftest|setup|noxfile|tasks)$")
# Read templates with PyYAML, installed on first need into .cache/ for the Python that runs this, not
# into the build's venv, where PyInstaller would freeze it into a function that forgot to require it.
PYYAML = "PyYAML==6.0.4"


class HandlerError(RuntimeError):
    """No handler can be found: the message says what to give."""


class Found(NamedTuple):
    handler: str
    how: str  # a sentence: where it comes from
    sure: bool
    modules: List[str]  # when not sure: every module of the folder, for the check to import


# --- the zip's record ------------------------------------------------------------------------------------


def recorded_handler(path: Path) -> Optional[str]:
    """The handler recorded in a zip's comment, or None (a folder, or a zip without one)."""
    if not path.is_file() or not zipfile.is_zipfile(path):
        return None
    with zipfile.ZipFile(path) as archive:
        comment = archive.comment
    if comment.startswith(COMMENT_PREFIX):
        return comment[len(COMMENT_PREFIX) :].decode("utf-8", errors="replace").strip() or None
    return None


def record_handler(path: Path, handler: str) -> None:
    with zipfile.ZipFile(path, "a") as archive:
        archive.comment = COMMENT_PREFIX + handler.encode()


# --- finding it --------------------------------------------------------------------------------------------


def _yaml() -> Any:
    try:
        import yaml
    except ImportError:
        tools = REPO / ".cache" / ("tools-py%d.%d" % sys.version_info[:2])
        if not (tools / "yaml").is_dir():
            result = subprocess.run(
                [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 "--target", str(tools), PYYAML],
                capture_output=True, text=True, timeout=300, check=False,
            )  # fmt: skip
            if result.returncode != 0:
                raise HandlerError(
                    "reading template.yaml needs %s, which pip could not install (%s): give the handler "
                    "with --handler MODULE.FUNCTION" % (PYYAML, result.stderr.strip()[-300:])
                ) from None
        sys.path.insert(0, str(tools))
        import yaml
    return yaml


def read_template(path: Path) -> Dict[str, Any]:
    """A SAM/CloudFormation template as plain data; short-form tags (!Ref, !GetAtt...) read as None."""
    if path.suffix == ".json":
        return json.loads(path.read_text())
    yaml = _yaml()

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    data = yaml.load(path.read_text(), Loader=Loader)
    return data if isinstance(data, dict) else {}


def template_handlers(function_dir: Path) -> Dict[str, str]:
    """{resource name: handler} of every template function whose code is this folder."""
    found: Dict[str, str] = {}
    here = function_dir.resolve()
    for folder in (here, here.parent):
        for name in TEMPLATE_NAMES:
            path = folder / name
            if not path.is_file():
                continue
            try:
                template = read_template(path)
            except HandlerError:
                raise
            except Exception as exc:  # OSError, JSON's and PyYAML's errors
                print(
                    "function_handler.py: warning: %s cannot be read (%s); not used" % (path, exc),
                    file=sys.stderr,
                )
                continue
            defaults = ((template.get("Globals") or {}).get("Function")) or {}
            for resource, spec in (template.get("Resources") or {}).items():
                if not isinstance(spec, dict) or spec.get("Type") not in FUNCTION_TYPES:
                    continue
                props = spec.get("Properties") or {}
                code = props.get("CodeUri", defaults.get("CodeUri", "."))
                handler = props.get("Handler", defaults.get("Handler"))
                if isinstance(code, str) and isinstance(handler, str) and (folder / code).resolve() == here:
                    found["%s (%s)" % (resource, path.name)] = handler
    return found


def function_modules(function_dir: Path) -> List[str]:
    """The function's top-level modules and packages, tests and build scripts left out."""
    names = set()
    for path in function_dir.iterdir():
        if path.suffix == ".py" and path.is_file():
            name = path.stem
        elif path.is_dir() and (path / "__init__.py").is_file():
            name = path.name
        else:
            continue
        if name.isidentifier() and not NOT_FUNCTION_CODE.match(name) and name != "tests":
            names.add(name)
    return sorted(names)


def obvious_handlers(function_dir: Path, modules: List[str]) -> List[str]:
    """MODULE.FUNCTION of every module-level function that looks like a handler."""
    found = []
    for module in modules:
        path = function_dir / (module + ".py")
        if not path.is_file():
            continue
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except SyntaxError:
            continue  # the check names the error, with the handler that is assumed
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and OBVIOUS.match(node.name):
                args = node.args
                positional = len(args.posonlyargs) + len(args.args)
                if positional >= 2 or args.vararg is not None:
                    found.append("%s.%s" % (module, node.name))
    return found


def _pick(candidates: List[str]) -> str:
    usual = [handler for handler in USUAL if handler in candidates]
    return usual[0] if usual else sorted(candidates)[0]


def find_handler(function_dir: Path) -> Found:
    modules = function_modules(function_dir)
    named = template_handlers(function_dir)
    if named:
        handlers = sorted(set(named.values()))
        where = ", ".join("%s for %s" % (handler, resource) for resource, handler in sorted(named.items()))
        if len(handlers) == 1:
            return Found(handlers[0], "the template names it: %s" % where, True, [])
        handler = _pick(handlers)
        return Found(
            handler, "assumed %s: the template names several handlers (%s)" % (handler, where), False, modules
        )
    candidates = obvious_handlers(function_dir, modules)
    if len(candidates) == 1:
        return Found(candidates[0], "the only module-level handler function in the folder", True, [])
    if not candidates:
        raise HandlerError(
            "no handler found in %s: no template.yaml beside it names one, and no module defines a function "
            "named handler, lambda_handler or *_handler taking (event, context). Give it with "
            "--handler MODULE.FUNCTION (Lambda's handler setting; MODULE:APP for a web app)" % function_dir
        )
    handler = _pick(candidates)
    return Found(handler, "assumed %s, one of %s" % (handler, ", ".join(candidates)), False, modules)


# --- command line --------------------------------------------------------------------------------------


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    find = sub.add_parser("find", help="print HANDLER, then the modules to import when it is assumed")
    find.add_argument("function", type=Path)
    record = sub.add_parser("record", help="record HANDLER in ZIP's comment")
    record.add_argument("zip", type=Path)
    record.add_argument("handler")
    show = sub.add_parser("show", help="print the handler ZIP records (exit 1 if none)")
    show.add_argument("zip", type=Path)
    args = parser.parse_args(argv)
    if args.action == "record":
        record_handler(args.zip, args.handler)
        return 0
    if args.action == "show":
        handler = recorded_handler(args.zip)
        if handler:
            print(handler)
        return 0 if handler else 1
    try:
        found = find_handler(args.function)
    except HandlerError as exc:
        print("function_handler.py: error: %s" % exc, file=sys.stderr)
        return 1
    note = "" if found.sure else " (give --handler MODULE.FUNCTION if it is another; every module is checked)"
    print("function_handler.py: handler %s: %s%s" % (found.handler, found.how, note), file=sys.stderr)
    print(" ".join([found.handler, *found.modules]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
