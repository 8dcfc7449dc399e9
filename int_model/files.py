"""Writing files so that a reader (or a crash) never sees a half-written one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

# Results, checkpoints and caches are shared with the app and other users of the machine.
SHARED_FILE_MODE = 0o644


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object], *,
                 mode: int = SHARED_FILE_MODE) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path``, sync it, then rename it onto ``path``.

    The previous file at ``path`` stays intact until the rename; the temporary file is removed on failure.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)  # mkstemp creates owner-only files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


class OutsideRootError(ValueError):
    """A path built from a request resolves outside the folder it must stay in."""


def inside_root(path: str | os.PathLike, root: str | os.PathLike, *, what: str = "path",
                root_name: str | None = None) -> Path:
    """``path`` (relative: to ``root``) with every ``..`` and symlink resolved, required to lie inside ``root``.

    The one check for every path that comes from a client, a config or a file (session folders, dataset paths,
    server checkpoint paths, run names): reading, writing or deleting goes through the returned path only.
    Raises :class:`OutsideRootError` (a ``ValueError``) naming ``what`` and the root, never what lies outside.
    """
    root_path = Path(root).expanduser().resolve()
    candidate = Path(path).expanduser()
    resolved = (candidate if candidate.is_absolute() else root_path / candidate).resolve()
    if not resolved.is_relative_to(root_path):
        raise OutsideRootError(f"{what} {str(path)!r} is outside {root_name or 'its folder'} {root_path}")
    return resolved
