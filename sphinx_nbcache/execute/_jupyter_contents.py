"""A job's files on a Jupyter server, through its contents API (``/api/contents``).

The page's folder is uploaded into a run folder of its own before the kernel starts there, and
the run folder is deleted after. A kernel gateway has no contents API: nothing is uploaded.
"""

from __future__ import annotations

import asyncio
import base64
import io
import tarfile
from pathlib import PurePosixPath

from ._job import Job
from ._jupyter_client import JupyterAPI, ServerError

__all__ = ["delete_folder", "shipped_files", "upload"]


def shipped_files(job: Job) -> list[tuple[str, bytes]]:
    """(relative path, content) of the files shipped with ``job``: what
    :meth:`ProjectFiles.pack` ships, less names starting with a dot (the contents API hides
    them and refuses to write them)."""
    if job.in_temp or job.files is None:
        return []
    packed, _left_out = job.files.pack(job.folder)
    files = []
    with tarfile.open(fileobj=io.BytesIO(packed), mode="r:gz") as tar:
        for member in tar:
            name = PurePosixPath(member.name)
            handle = tar.extractfile(member) if member.isfile() else None
            if handle is None or any(p.startswith(".") for p in name.parts):
                continue
            files.append((name.as_posix(), handle.read()))
    return files


async def upload(api: JupyterAPI, path: str, files: list[tuple[str, bytes]]) -> None:
    """Make the folder ``path`` (its parent must exist) holding ``files``."""
    await api.call("PUT", f"api/contents/{path}", {"type": "directory"})
    folders = {str(p) for name, _ in files for p in PurePosixPath(name).parents} - {"."}
    for folder in sorted(folders, key=lambda f: f.count("/")):  # parents first
        await api.call("PUT", f"api/contents/{path}/{folder}", {"type": "directory"})
    await asyncio.gather(*(_put_file(api, f"{path}/{name}", data) for name, data in files))


async def _put_file(api: JupyterAPI, path: str, content: bytes) -> None:
    body = {"type": "file", "format": "base64", "content": base64.b64encode(content).decode()}
    await api.call("PUT", f"api/contents/{path}", body)


async def delete_folder(api: JupyterAPI, path: str) -> None:
    """Delete the folder ``path``: at once, or, on a server that refuses to delete folders
    that are not empty (``delete_to_trash=False`` without ``always_delete_dir``), its contents
    first. A folder that is gone already is fine; :class:`ServerError` otherwise."""
    try:
        try:
            await api.call("DELETE", f"api/contents/{path}")
        except ServerError as exc:
            if exc.status != 400:
                raise
            await _delete_tree(api, path)
    except ServerError as exc:
        if exc.status != 404:
            raise


async def _delete_tree(api: JupyterAPI, path: str) -> None:
    model = await api.call("GET", f"api/contents/{path}")
    for entry in model.get("content") or ():
        if entry.get("type") == "directory":
            await _delete_tree(api, entry["path"])
        else:
            await api.call("DELETE", f"api/contents/{entry['path']}")
    await api.call("DELETE", f"api/contents/{path}")
