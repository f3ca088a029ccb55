"""Published models fetched from PyPI: a pinned wheel installed without its dependencies into the cache folder.

Why one place: `make frontends` (onnx-asr, openWakeWord, Silero VAD) and the wake-word pipeline's stage files
(openWakeWord) both read models their publishers ship inside wheels, never into the repository.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from toolkit.errors import ToolkitError
from toolkit.profiling.emulate import cache_dir
from toolkit.terminal import progress


def installed(name: str, version: str, marker: str, cache: Path | None = None, fix: str = "") -> Path:
    """`name==version` installed under the cache folder (first when `marker`, a path inside it, is missing)."""
    spec = f"{name}=={version}"
    target = (cache or cache_dir()) / f"{name}-{version}"
    if not (target / marker).exists():
        progress(f"pip install --no-deps {spec} into {target}")
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                               str(target), spec], check=False)
        if done.returncode != 0:
            raise ToolkitError(f"pip could not install {spec} (exit {done.returncode}); its messages are above"
                               f"{'; or ' + fix if fix else ''}")
    return target
