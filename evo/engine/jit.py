"""numba's on-disk cache keys a compiled kernel on its own source file only. A kernel that calls
kernels from another file (a family's fused pass calls the engine's simulation) would keep running
stale machine code after that other file changes. `drop_stale_cache` removes such a module's
cached kernels when one of its dependencies changed since they were compiled."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def _cache_dirs(module_file: Path) -> list[Path]:
    dirs = [module_file.parent / "__pycache__"]
    user = os.environ.get("NUMBA_CACHE_DIR")
    if user:
        dirs.append(Path(user))
    return dirs


def drop_stale_cache(module_file: str, *dependencies: str) -> None:
    module = Path(module_file)
    digest = hashlib.sha256()
    for dep in dependencies:
        digest.update(Path(dep).read_bytes())
    stamp_value = digest.hexdigest()
    for d in _cache_dirs(module):
        stamp = d / f"{module.stem}.deps"
        try:
            if stamp.exists() and stamp.read_text() == stamp_value:
                continue
            for f in list(d.glob(f"{module.stem}.*.nbi")) + list(d.glob(f"{module.stem}.*.nbc")):
                f.unlink(missing_ok=True)
            d.mkdir(parents=True, exist_ok=True)
            stamp.write_text(stamp_value)
        except OSError:
            pass  # a read-only install: numba then caches elsewhere or not at all
