# PyInstaller runtime hook (packaging/bootstrap.spec): PyInstaller's own runtime hooks for inspect, pkgutil,
# multiprocessing and setuptools, run when their module is first imported instead of at every start.
#
# Each of those hooks imports its module and patches it for frozen code (inspect.getsourcefile, pkgutil's
# module listing, multiprocessing's child processes, the distutils shim). Run at start, they cost every
# function the import of inspect, pkgutil, multiprocessing and setuptools, which most never use. The spec
# takes them out of the start-up scripts and bundles their files, unchanged, in _internal/deferred_rthooks/;
# this hook runs each one right after its module's first import, before the importer hands the module out.
#
# It also writes the first mark of lambda_bootstrap/phases.py (in that module's format): the spec runs this
# hook first, so it is the first Python code of the program after PyInstaller's own bootstrap.
#
# Runtime hooks run in the namespace of __main__, which the runtime's script shares: everything here lives
# inside functions, and the names are deleted at the end.

# Which of PyInstaller's runtime hooks wait, and the modules whose first import runs each. setuptools' hook
# installs its distutils shim, which a bare `import distutils` needs too.
DEFERRED_RTHOOKS = {
    "pyi_rth_inspect": ("inspect",),
    "pyi_rth_pkgutil": ("pkgutil",),
    "pyi_rth_multiprocessing": ("multiprocessing",),
    "pyi_rth_setuptools": ("setuptools", "distutils"),
}
DEFERRED_RTHOOKS_FOLDER = "deferred_rthooks"


def _mark_python_started():
    import os

    path = os.environ.get("LAMBDA_BOOTSTRAP_PHASES")
    if path:
        import time

        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, b"python %d\n" % time.monotonic_ns())
        finally:
            os.close(fd)


def _defer_rthooks(deferred, folder_name):
    import os
    import sys

    folder = os.path.join(getattr(sys, "_MEIPASS", ""), folder_name)
    try:
        present = set(os.listdir(folder))
    except OSError:
        return

    class Hook:
        def __init__(self, path):
            self.path, self.done = path, False

        def run(self):
            if not self.done:
                self.done = True
                with open(self.path, "rb") as f:
                    code = compile(f.read(), self.path, "exec")
                exec(code, {"__name__": "__main__", "__file__": self.path})  # noqa: S102 (PyInstaller's, bundled)

    class RunHookAfterLoad:
        """The module's own loader, with its hook run once the module has executed."""

        def __init__(self, loader, hook):
            self.loader, self.hook = loader, hook

        def __getattr__(self, name):
            return getattr(self.loader, name)

        def create_module(self, spec):
            return self.loader.create_module(spec)

        def exec_module(self, module):
            # The module sees its own loader (inspect, pkgutil and importlib.resources ask it for things).
            module.__spec__.loader = module.__loader__ = self.loader
            self.loader.exec_module(module)
            self.hook.run()

    class DeferredRuntimeHooks:
        """A meta-path finder that finds nothing itself: it gives a trigger module's spec, as the other
        finders find it, a loader that runs the module's hook after the module."""

        def __init__(self, triggers):
            self.triggers = triggers

        def find_spec(self, name, path=None, target=None):
            hook = self.triggers.get(name)
            if hook is None or hook.done:
                return None
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(name, path, target)
                if spec is not None:
                    if hasattr(spec.loader, "exec_module"):
                        spec.loader = RunHookAfterLoad(spec.loader, hook)
                    return spec
            return None

    triggers = {}
    for name, modules in deferred.items():
        if name + ".py" in present:
            triggers.update(dict.fromkeys(modules, Hook(os.path.join(folder, name + ".py"))))
    if triggers:
        sys.meta_path.insert(0, DeferredRuntimeHooks(triggers))


if __name__ == "__main__":  # as a runtime hook (the spec reads DEFERRED_RTHOOKS with runpy)
    _mark_python_started()
    _defer_rthooks(DEFERRED_RTHOOKS, DEFERRED_RTHOOKS_FOLDER)
    del DEFERRED_RTHOOKS, DEFERRED_RTHOOKS_FOLDER, _mark_python_started, _defer_rthooks
