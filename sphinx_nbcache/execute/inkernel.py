"""The in-kernel side: what a kernel records while a build runs it, and what it asks of the
build. One module, so that both sides agree on one layout.

:data:`TRACER` is run silently in every Python kernel a build starts (``execute._trace``
installs it and collects its notes): it keeps its state on a module object named
:data:`MODULE` in the kernel's ``sys.modules``. Code running in that kernel (the workflows:
``read_notebook``, ``run``, ...) reaches that state only through :class:`Tracer`, which is
typed and says what each field means::

    tracer = Tracer.current()          # None outside a notebook a build executes
    if tracer is not None:
        tracer.read_code(path, key)    # the reader depends on that notebook's code
        with tracer.waiting():         # give the executor our place while we wait
            ...

A kernel that waits for another page's result tells its executor so (:meth:`Tracer.waiting`):
it publishes a display message of type :data:`WAIT_MIME` (never shown: the executor takes it
out of the outputs), and the executor lends the kernel's place to the notebooks queued behind
it until a second message says the wait is over (Dask's ``secede``/``rejoin``, for kernels).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["MODULE", "TRACER", "WAIT_MIME", "Tracer"]

#: the name of the tracer's state in the kernel's ``sys.modules``
MODULE = "_nbcache_trace"
#: the display message by which a kernel tells its executor it waits (and no longer waits)
WAIT_MIME = "application/vnd.nbcache.wait+json"

#: Run silently in the kernel before the first cell. ``__ROOT__`` is the project folder as the
#: kernel sees it, ``__SCOPE__`` what to record of the environment. Everything it defines lives
#: on a module object in ``sys.modules``; the user's namespace is left as it was.
TRACER = r"""
def _nbcache_install(root, scope, store):
    import os, sys, types
    state = types.ModuleType("_nbcache_trace")
    state.root = os.path.realpath(root)
    state.scope = scope
    state.store = store  # where the build keeps results: for read_notebook
    state.opened = {}      # path -> [first mode ('r' or 'w'), cell]
    state.imported = {}    # module name -> cell
    state.before = set(sys.modules)
    shell = get_ipython()
    state.names = set(shell.user_ns)
    state.cell = 0  # code cells run so far (silent requests are not cells)
    state.variants = {}  # notebook -> digest of the variants the pages show (read_notebooks)
    state.code = {}  # notebook -> its key: notebooks whose results were read or called
    state.listings = {}  # folder or glob -> digest of the pages it listed (read_notebooks)
    state.read_packages = {}  # packages the results read depended on -> their version
    state.read_globs = {}  # declared globs of the results read (anchored "/...") -> digest

    def pre_run_cell(*args):
        state.cell += 1

    shell.events.register("pre_run_cell", pre_run_cell)

    def cell():
        return state.cell

    def hook(event, args, _isinstance=isinstance, _str=str):
        if event == "open":
            path, mode, flags = args
            if _isinstance(path, int) or path is None:
                return
            try:
                path = os.fspath(path)
                if _isinstance(path, bytes):
                    path = os.fsdecode(path)
            except TypeError:
                return
            if mode is None:
                writing = bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND))
            else:
                writing = any(c in mode for c in "wax+")
            if path not in state.opened:
                state.opened[path] = ["w" if writing else "r", cell()]
        elif event == "import":
            name = args[0]
            if _isinstance(name, _str) and name not in state.imported:
                state.imported[name] = cell()

    def report():
        import json, platform
        cwd = os.getcwd()
        files = {}
        for path, (mode, count) in state.opened.items():
            full = os.path.realpath(os.path.join(cwd, path))
            if full not in files:
                files[full] = [mode, count]
        modules = {}
        tops = set()  # packages the notebook itself brought in or uses
        kernel_tops = {n.split(".")[0] for n in state.before}
        for name in set(sys.modules) - state.before | set(state.imported):
            module = sys.modules.get(name)
            origin = getattr(module, "__file__", None) if module is not None else None
            modules[name] = [os.path.realpath(origin) if origin else None,
                             state.imported.get(name, 0)]
            if name.split(".")[0] not in kernel_tops:
                tops.add(name.split(".")[0])
        for key, value in list(shell.user_ns.items()):  # imported before the notebook ran
            if key in state.names or key.startswith("_"):
                continue
            name = getattr(value, "__name__", None) if isinstance(value, types.ModuleType) \
                else getattr(value, "__module__", None)
            if isinstance(name, str) and name in sys.modules:
                tops.add(name.split(".")[0])
                if name not in modules:
                    origin = getattr(sys.modules[name], "__file__", None)
                    modules[name] = [os.path.realpath(origin) if origin else None, 0]
        paths = [os.path.realpath(p or os.getcwd()) for p in sys.path if isinstance(p, str)]
        packages = {}
        if state.scope == "packages":
            from importlib import metadata
            local = {name.split(".")[0] for name, (origin, _) in modules.items()
                     if origin and origin.startswith(state.root + os.sep)}
            stdlib = set(getattr(sys, "stdlib_module_names", ()))  # the Python version says
            tops -= local | set(sys.builtin_module_names) | stdlib | {"_nbcache_trace", "__main__"}
            owners = None
            for top in sorted(tops):
                try:
                    names = [metadata.distribution(top).metadata["Name"]]
                except metadata.PackageNotFoundError:
                    if owners is None:
                        owners = metadata.packages_distributions()
                    names = owners.get(top, [])
                for dist in names:
                    try:
                        packages[dist] = metadata.version(dist)
                    except metadata.PackageNotFoundError:
                        pass
        return json.dumps({
            "cwd": os.path.realpath(cwd), "root": state.root, "files": files,
            "modules": modules, "path": paths, "packages": packages,
            "variants": state.variants, "code": state.code,
            "listings": state.listings, "read_packages": state.read_packages,
            "read_globs": state.read_globs,
            "python": platform.python_implementation() + " " + platform.python_version(),
        })

    state.report = report
    sys.modules["_nbcache_trace"] = state
    sys.addaudithook(hook)

_nbcache_install(__ROOT__, __SCOPE__, __STORE__)
del _nbcache_install
"""


class Tracer:
    """The tracer of the kernel this code runs in (typed access to its state)."""

    def __init__(self, state: Any) -> None:
        self._state = state

    @classmethod
    def current(cls) -> Tracer | None:
        """The tracer, when this code runs in a kernel a build executes; else None."""
        state = sys.modules.get(MODULE)
        return cls(state) if state is not None else None

    @property
    def root(self) -> Path:
        """The project folder, as this kernel sees it."""
        return Path(str(self._state.root))

    @property
    def store(self) -> dict[str, str]:
        """Where the build keeps its results: ``cache_path``, ``database``, ``blobs``."""
        store = getattr(self._state, "store", None)
        return {str(k): str(v) for k, v in (store or {}).items()}

    @property
    def waits(self) -> bool:
        """False in a notebook of a cycle (pages reading each other): its reads do not wait."""
        return self.store.get("wait") != "0"

    @property
    def link(self) -> Link | None:
        """The build's door for this kernel's reads and calls (None: the build gave none; a
        kernel running elsewhere reads the store with credentials of its own)."""
        store = self.store
        if not store.get("link"):
            return None
        return Link(store["link"], store.get("link_token", ""), self)

    # -- what the notebook depends on, besides what the audit hook sees -----------------------

    @contextlib.contextmanager
    def unrecorded(self) -> Iterator[None]:
        """Files opened and modules imported meanwhile are not recorded (a scan of the
        project, a look at the cache: the reader depends on what it found, recorded by the
        methods below; our own machinery's imports are not the notebook's)."""
        opened: dict[str, Any] = self._state.opened
        imported: dict[str, Any] = self._state.imported
        seen = set(opened), set(imported), set(sys.modules)
        try:
            yield
        finally:
            for path in set(opened) - seen[0]:
                opened.pop(path, None)
            for name in set(imported) - seen[1]:  # our own machinery's imports, not the
                imported.pop(name, None)  # notebook's: nor are they looked for in its folder
            self._state.before.update(set(sys.modules) - seen[2])

    def read_code(self, notebook: Path, key: str) -> None:
        """The notebook read the result (or called) ``notebook`` with this key: it depends on
        that notebook's code (a ``code:`` entry)."""
        self._state.code.setdefault(os.path.realpath(notebook), key)

    def read_variants(self, notebook: Path, digest: str) -> None:
        """It read the variants of ``notebook`` the project's pages show (a ``variants:``
        entry, whose digest is that of the directives showing them)."""
        self._state.variants.setdefault(os.path.realpath(notebook), digest)

    def listed(self, target: str | Path, digest: str) -> None:
        """It listed the notebook pages of a folder or glob (a ``pages:`` entry)."""
        self._state.listings[os.path.realpath(target)] = digest

    def read_packages(self, packages: Mapping[str, str]) -> None:
        """A result it read depended on these distributions (name -> version)."""
        for name, version in packages.items():
            self._state.read_packages.setdefault(name, version)

    def read_glob(self, anchored: str, digest: str) -> None:
        """A result it read declared this glob (anchored at the root: ``/...``)."""
        self._state.read_globs.setdefault(anchored, digest)

    def knows_glob(self, anchored: str) -> bool:
        return anchored in self._state.read_globs

    def read_file(self, path: Path) -> None:
        """It depends on a file (opened for the audit hook to see, not read)."""
        with contextlib.suppress(OSError):
            open(path, "rb").close()

    # -- asking the build ---------------------------------------------------------------------

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        """While this kernel waits for a result, the executor lends its place to others."""
        _signal(True)
        try:
            yield
        finally:
            _signal(False)


class Link:
    """Asks the build (a Unix socket the build serves, with a token for this build) for other
    notebooks' results and for calls: the kernel never holds the cache's credentials, and what
    it is given was looked up (and, for a call, run and stored) by the build itself. One JSON
    line out; back, an optional ``{"event": "waiting"}`` line (the build is running or waiting
    for it: this kernel lends its place meanwhile) and one answer line."""

    def __init__(self, path: str, token: str, tracer: Tracer) -> None:
        self.path = path
        self.token = token
        self.tracer = tracer

    def ask(self, op: str, **arguments: Any) -> dict[str, Any]:
        """The answer to ``op``; the build's error raised here as the same exception type."""
        import json
        import socket

        request = {"token": self.token, "op": op, "args": arguments}
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.connect(self.path)
            connection.sendall(json.dumps(request).encode("utf-8") + b"\n")
            lines = connection.makefile("rb")
            answer = json.loads(lines.readline() or b"null")
            if isinstance(answer, dict) and answer.get("event") == "waiting":
                with self.tracer.waiting():
                    answer = json.loads(lines.readline() or b"null")
        if not isinstance(answer, dict):
            raise ConnectionError("the build closed the link without answering")
        if "error" in answer:
            raise _error(answer["error"])
        found: dict[str, Any] = answer["ok"]
        return found


def _error(data: Any) -> Exception:
    """The build's exception, as the same type when it is one of ours."""
    from .. import errors

    kind = getattr(errors, str(data.get("type", "")), None) if isinstance(data, dict) else None
    arguments = data.get("args", []) if isinstance(data, dict) else []
    if isinstance(kind, type) and issubclass(kind, errors.NbcacheError):
        try:
            return kind(*arguments)
        except TypeError:
            pass
    return errors.NbcacheError(str(data))


def _signal(waiting: bool) -> None:
    display = sys.modules.get("IPython.display")
    if display is None:  # not an IPython kernel: nothing to tell
        return
    display.publish_display_data({WAIT_MIME: {"waiting": waiting}})
