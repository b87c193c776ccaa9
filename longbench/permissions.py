"""File modes that follow the user's umask, as files created with ``open`` do (``mkstemp`` and ``mkdtemp``
make 0600 and 0700, which would lock a shared cache or output folder away from the user's group)."""

from __future__ import annotations

import os
from pathlib import Path


def current_umask() -> int:
    """The process's umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def follow_umask(path: Path, directory: bool = True) -> None:
    """Give ``path`` the mode a new folder (0777) or file (0666) would get under the current umask."""
    os.chmod(path, (0o777 if directory else 0o666) & ~current_umask())
