"""What a kernel runs on, seen from the build: its spec, its Python, its packages' versions.

A result records the kernel spec's fingerprint, the kernel's Python version and the versions
of the distributions the notebook imported (``nbcache_environment``). To check them later the
build asks the same questions here: in this process when the kernel spec runs this very
interpreter (the common case: ``python -m ipykernel install --sys-prefix``), otherwise once
per interpreter through a subprocess. Answers are kept for the life of the process, and, for
kernels that run this interpreter, in the cache folder (``environment.json``) under a stamp of
what would change them (:meth:`KernelEnvironment.stamp`): a later build on the same machine
with the same packages (a build folder deleted, CI with its cache and environment restored)
recalls them with a few ``stat`` calls instead of asking ``jupyter_client`` and the package
metadata again. A stamp that no longer holds is never used; the answers are found out again.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterable
from contextlib import suppress
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

from .._json import canonical_json

__all__ = [
    "MEMORY_NAME",
    "KernelEnvironment",
    "Stamp",
    "installed_version",
    "kernel_fingerprint",
    "stamp_holds",
]

#: The file in the cache folder that keeps the answers (one entry per interpreter).
MEMORY_NAME = "environment.json"
_MEMORY_FORMAT = 1
_MEMORY_ENTRIES = 8  # interpreters (venvs, nox sessions) remembered side by side
_MEMORY_SCOPE = "answers"  # the scope of a memory's stamp: answers do not depend on one

Spec = tuple[list[str], str, dict[str, str]]  # argv, language, env

_PROBE = (
    "import json, platform\n"
    "from importlib import metadata\n"
    "versions = {}\n"
    "for dist in metadata.distributions():\n"
    "    name = dist.metadata['Name']\n"
    "    if name: versions[name.lower().replace('_', '-')] = dist.version\n"
    "print(json.dumps({'python': platform.python_implementation() + ' ' + "
    "platform.python_version(), 'packages': versions}))\n"
)


def _spec(name: str, manager: Any = None) -> tuple[Spec, str] | None:
    """The kernel spec of ``name`` and the path of its ``kernel.json`` (None: no such kernel)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = (manager or KernelSpecManager()).get_kernel_spec(name)
    except NoSuchKernel:
        return None
    found = (list(spec.argv), str(spec.language or ""), dict(spec.env or {}))
    return found, os.path.join(spec.resource_dir, "kernel.json")


def kernel_fingerprint(name: str) -> str:
    """The kernel spec of ``name`` in a few characters: its command, language and
    environment ("missing" when it is not installed)."""
    found = _spec(name)
    return _fingerprint(name, found[0] if found is not None else None)


def _fingerprint(name: str, spec: Spec | None) -> str:
    if spec is None:
        return "missing"
    argv, language, env = spec
    text = canonical_json([argv, language, env])
    return f"{name}:{hashlib.sha256(text.encode()).hexdigest()[:16]}"


class KernelEnvironment:
    """Python and package versions as a kernel would find them (cached per interpreter, and
    in the cache folder's ``memory`` file under a stamp, see :meth:`remember`)."""

    def __init__(self, memory: Path | None = None) -> None:
        self._probes: dict[str, dict[str, object]] = {}
        self._specs: dict[str, Spec | None] = {}
        self._spec_files: dict[str, tuple[str, int]] = {}  # kernel -> its kernel.json, mtime
        self._versions: dict[str, str | None] = {}
        self._local_programs: dict[str, bool] = {}
        self._pythons: dict[str, str | None] = {}
        self._manager: Any = None
        self._memory = memory
        self._recalled = memory is None  # the memory was read (or there is none)
        #: the folders a stamp watches, with their times from before the first answer
        self._watched: tuple[tuple[str, int], ...] | None = None
        self._learned = False  # an answer was found out in this process, not recalled

    def _spec(self, kernel: str) -> Spec | None:
        if kernel not in self._specs:
            self._recall()
        if kernel not in self._specs:
            self._learning()
            if self._manager is None:
                from jupyter_client.kernelspec import KernelSpecManager

                self._manager = KernelSpecManager()
            found = _spec(kernel, self._manager)
            self._specs[kernel] = found[0] if found is not None else None
            if found is not None:
                self._spec_files[kernel] = (found[1], _mtime(found[1]))
        return self._specs[kernel]

    def fingerprint(self, kernel: str) -> str:
        """:func:`kernel_fingerprint`, asked once per kernel."""
        return _fingerprint(kernel, self._spec(kernel))

    def interpreter(self, kernel: str) -> str | None:
        """The Python a kernel runs (None: not a Python kernel, or not installed)."""
        spec = self._spec(kernel)
        if spec is None or not spec[0]:
            return None
        program = spec[0][0]
        if "python" not in os.path.basename(program).lower():
            return None
        return program

    def _local(self, program: str) -> bool:
        """Does this interpreter run here (the build's own)? Asked once per program."""
        if program not in self._local_programs:
            try:
                same = os.path.realpath(program) == os.path.realpath(sys.executable)
                self._local_programs[program] = same or os.path.samefile(program, sys.executable)
            except OSError:
                self._local_programs[program] = False
        return self._local_programs[program]

    def _probe(self, program: str) -> dict[str, object]:
        if program not in self._probes:
            try:
                done = subprocess.run(
                    [program, "-c", _PROBE], capture_output=True, text=True, timeout=60
                )
                self._probes[program] = json.loads(done.stdout) if done.returncode == 0 else {}
            except (OSError, ValueError, subprocess.TimeoutExpired):
                self._probes[program] = {}
        return self._probes[program]

    def python(self, kernel: str) -> str | None:
        """``CPython 3.11.7`` for the kernel's interpreter (None: unknown)."""
        if kernel not in self._pythons:
            self._pythons[kernel] = self._python(kernel)
        return self._pythons[kernel]

    def _python(self, kernel: str) -> str | None:
        program = self.interpreter(kernel)
        if program is None:
            return None
        if self._local(program):
            return f"{platform.python_implementation()} {platform.python_version()}"
        found = self._probe(program).get("python")
        return str(found) if found else None

    def version(self, kernel: str, distribution: str) -> str | None:
        """The installed version of ``distribution`` for the kernel (None: not installed)."""
        program = self.interpreter(kernel)
        if program is None or self._local(program):
            if distribution not in self._versions:
                self._learning()
                self._versions[distribution] = installed_version(distribution)
            return self._versions[distribution]
        packages = self._probe(program).get("packages")
        if not isinstance(packages, dict):
            return None
        found = packages.get(distribution.lower().replace("_", "-"))
        return str(found) if found is not None else None

    def stamp(self, kernels: Iterable[str], scope: str) -> Stamp | None:
        """What would show a change of these kernels' environments, for a later cheap look
        (:func:`stamp_holds`): the variables that choose kernels and interpreters, the
        modification times of the kernel spec files, of the folders kernels are found in, of
        the folders on ``sys.path`` (installing, upgrading or removing a distribution adds or
        removes its ``*.dist-info`` folder there, which changes the folder's time), as they
        were before the first answer was found out (a change since then shows). None when a
        kernel does not run this interpreter: the packages it sees are not ours to watch.
        ``scope`` is ``nbcache_environment``: a stamp vouches only for what was checked
        under the same scope."""
        files = []
        for kernel in sorted(set(kernels)):
            if not self._runs_here(kernel):
                return None
            files.append(self._spec_files[kernel])
        watched = self._watched if self._watched is not None else _watch()
        return (_variables(scope), (*watched, *files))

    def _runs_here(self, kernel: str) -> bool:
        program = self.interpreter(kernel)
        return program is not None and self._local(program)

    # -- the memory in the cache folder ---------------------------------------------------------

    def _learning(self) -> None:
        """An answer is about to be found out: note the watched folders' times first."""
        self._learned = True
        if self._watched is None:
            self._watched = _watch()

    def _recall(self) -> None:
        """Take the answers kept in the memory file, if its stamp for this interpreter holds
        (and watches every folder this process finds packages in)."""
        if self._recalled:
            return
        self._recalled = True
        variables = _variables(_MEMORY_SCOPE)
        for entry in map(_parse, _read_memory(self._memory)):
            if entry is None or entry.variables != variables:
                continue  # damaged (found out again, and written anew), or another interpreter
            folders = {path for path, _ in entry.watched}
            if not all(path in folders for path, _ in _watch()):
                return  # this process finds packages where the stamp did not look
            if not stamp_holds((variables, (*entry.watched, *entry.files.values())), _MEMORY_SCOPE):
                return
            self._watched = entry.watched
            self._specs.update(entry.specs)
            self._spec_files.update(entry.files)
            self._versions.update(entry.versions)
            return

    def remember(self) -> None:
        """Keep the answers found out here in the memory file, stamped with the watched
        folders' times from before they were found out (a change meanwhile makes the stamp
        fail next time, never vouch for an old answer). Only for kernels that run this
        interpreter; nothing is written when every answer was recalled."""
        if self._memory is None or not self._learned:
            return
        kernels = [kernel for kernel in self._specs if self._runs_here(kernel)]
        stamp = self.stamp(kernels, _MEMORY_SCOPE) if kernels else None
        if stamp is None:
            return
        variables, _ = stamp
        entry = {
            "variables": [list(pair) for pair in variables],
            "watched": [list(pair) for pair in self._watched or ()],
            "files": {kernel: list(self._spec_files[kernel]) for kernel in kernels},
            "specs": {kernel: self._specs[kernel] for kernel in kernels},
            "versions": self._versions,
        }
        kept = [
            e
            for e in _read_memory(self._memory)
            if (parsed := _parse(e)) is not None and parsed.variables != variables
        ]
        entries = [entry, *kept][:_MEMORY_ENTRIES]
        _write_memory(self._memory, {"format": _MEMORY_FORMAT, "entries": entries})


class _Entry(NamedTuple):
    """One interpreter's answers in the memory file, with the stamp they hold under."""

    variables: tuple[tuple[str, str], ...]
    watched: tuple[tuple[str, int], ...]
    files: dict[str, tuple[str, int]]  # kernel -> its kernel.json and that file's time
    specs: dict[str, Spec]
    versions: dict[str, str | None]


def _parse(entry: dict[str, Any]) -> _Entry | None:
    """An entry as written by :meth:`KernelEnvironment.remember`; None when damaged."""
    try:
        parsed = _Entry(
            tuple((str(name), str(value)) for name, value in entry["variables"]),
            tuple((str(path), int(time)) for path, time in entry["watched"]),
            {str(k): (str(path), int(time)) for k, (path, time) in entry["files"].items()},
            {str(k): _as_spec(v) for k, v in entry["specs"].items()},
            {str(k): None if v is None else str(v) for k, v in entry["versions"].items()},
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return parsed if set(parsed.specs) == set(parsed.files) else None


def _as_spec(value: Any) -> Spec:
    argv, language, env = value
    return [str(a) for a in argv], str(language), {str(k): str(v) for k, v in env.items()}


def _read_memory(path: Path | None) -> list[dict[str, Any]]:
    """The entries of a memory file; none when it is missing, damaged or of another format."""
    if path is None:
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict) or data.get("format") != _MEMORY_FORMAT:
        return []
    entries = data.get("entries")
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def _write_memory(path: Path, data: dict[str, Any]) -> None:
    """Replace the memory file at once (two builds writing: the last one wins, whole). A cache
    folder that does not exist (yet) or cannot be written keeps no memory: nothing is lost."""
    if not path.parent.is_dir():
        return
    from .._atomic import write_atomically  # here: a build that recalls the answers needs none

    with suppress(OSError):
        write_atomically(path, json.dumps(data).encode("utf-8"))


def _watch() -> tuple[tuple[str, int], ...]:
    """The folders kernels are found in and those on ``sys.path``, with their times now."""
    from jupyter_core.paths import jupyter_path

    paths = list(jupyter_path("kernels"))
    here = os.path.realpath(os.getcwd())  # the project, where builds write: not packages
    paths.extend(folder for folder in sys.path if folder and os.path.realpath(folder) != here)
    return tuple((path, _mtime(path)) for path in dict.fromkeys(paths))


def installed_version(distribution: str) -> str | None:
    """The version of ``distribution`` installed here (None: not installed), as
    ``importlib.metadata.version`` says, read from the ``Version:`` line of the metadata's
    headers: ``version()`` parses the whole file through the ``email`` package, which a build
    would import for this alone (~16 M instructions, more than the rest of the check)."""
    try:
        found = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return None
    text = found.read_text("METADATA") or found.read_text("PKG-INFO") or ""
    for line in text.splitlines():
        if not line.strip():
            break  # the end of the headers
        if line.startswith("Version:"):
            return line[len("Version:") :].strip()
    return found.version  # no Version header where expected: ask the long way


Stamp = tuple[tuple[tuple[str, str], ...], tuple[tuple[str, int], ...]]
_VARIABLES = ("JUPYTER_PATH", "JUPYTER_DATA_DIR", "JUPYTER_PLATFORM_DIRS", "PYTHONPATH",
              "PYTHONHOME", "VIRTUAL_ENV", "CONDA_PREFIX", "PATH")  # fmt: skip


def stamp_holds(stamp: Stamp, scope: str) -> bool:
    """Nothing :meth:`KernelEnvironment.stamp` watched changed (a few ``stat`` calls; no
    kernel spec, no package metadata is read)."""
    variables, paths = stamp
    if variables != _variables(scope):
        return False
    return all(_mtime(path) == mtime for path, mtime in paths)


def _variables(scope: str) -> tuple[tuple[str, str], ...]:
    return (("scope", scope), ("sys", f"{sys.executable}|{sys.prefix}|{platform.python_version()}"),
            *((name, os.environ.get(name, "")) for name in _VARIABLES))  # fmt: skip


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1
