"""What a kernel runs on, seen from the build: its spec, its Python, its packages' versions.

A result records the kernel spec's fingerprint, the kernel's Python version and the versions
of the distributions the notebook imported (``nbcache_environment``). To check them later the
build asks the same questions here: in this process when the kernel spec runs this very
interpreter (the common case: ``python -m ipykernel install --sys-prefix``), otherwise once
per interpreter through a subprocess. Answers are kept for the life of the process.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterable
from importlib import metadata

__all__ = ["KernelEnvironment", "Stamp", "installed_version", "kernel_fingerprint", "stamp_holds"]

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


def _spec(name: str) -> tuple[list[str], str, dict[str, str]] | None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        return None
    return list(spec.argv), str(spec.language or ""), dict(spec.env or {})


def kernel_fingerprint(name: str) -> str:
    """The kernel spec of ``name`` in a few characters: its command, language and
    environment ("missing" when it is not installed)."""
    return _fingerprint(name, _spec(name))


def _fingerprint(name: str, spec: tuple[list[str], str, dict[str, str]] | None) -> str:
    if spec is None:
        return "missing"
    argv, language, env = spec
    text = json.dumps([argv, language, env], sort_keys=True)
    return f"{name}:{hashlib.sha256(text.encode()).hexdigest()[:16]}"


class KernelEnvironment:
    """Python and package versions as a kernel would find them (cached per interpreter)."""

    def __init__(self) -> None:
        self._probes: dict[str, dict[str, object]] = {}
        self._specs: dict[str, tuple[list[str], str, dict[str, str]] | None] = {}
        self._versions: dict[str, str | None] = {}
        self._local_programs: dict[str, bool] = {}
        self._pythons: dict[str, str | None] = {}

    def _spec(self, kernel: str) -> tuple[list[str], str, dict[str, str]] | None:
        if kernel not in self._specs:
            self._specs[kernel] = _spec(kernel)
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
        removes its ``*.dist-info`` folder there, which changes the folder's time). None
        when a kernel does not run this interpreter: the packages it sees are not ours to
        watch. ``scope`` is ``nbcache_environment``: a stamp vouches only for what was
        checked under the same scope."""
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
        from jupyter_core.paths import jupyter_path

        manager = KernelSpecManager()
        paths = list(jupyter_path("kernels"))
        for kernel in sorted(set(kernels)):
            program = self.interpreter(kernel)
            if program is None or not self._local(program):
                return None
            try:
                paths.append(
                    os.path.join(manager.get_kernel_spec(kernel).resource_dir, "kernel.json")
                )
            except NoSuchKernel:
                return None
        here = os.path.realpath(os.getcwd())  # the project, where builds write: not packages
        paths.extend(folder for folder in sys.path if folder and os.path.realpath(folder) != here)
        return (_variables(scope), tuple((path, _mtime(path)) for path in paths))


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
