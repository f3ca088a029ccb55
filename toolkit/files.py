"""Atomic writes, one place for all of them: readers never see half a file, and an interrupted run leaves the
previous file (or folder) in place. (runner.py keeps its own copy: it must run on a board without the toolkit.)
Also the stage files' strict JSON, written and read here for every stage."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from toolkit.errors import ToolkitError

Json = dict[str, Any]
FILE_MODE = 0o644  # mkstemp makes 0600; variant files are copied to boards and read by other users


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temp path in `path`'s folder for a writer that only takes a file name; replaces `path` on success."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=target.suffix)
    os.close(handle)
    try:
        yield Path(temp_name)
        os.chmod(temp_name, FILE_MODE)
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` atomically, flushed to disk before it replaces the old file."""
    with atomic_path(path) as temp, open(temp, "wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """UTF-8 text, atomically; returns the path."""
    write_bytes_atomic(path, text.encode("utf-8"))
    return Path(path)


def write_json_atomic(path: str | os.PathLike[str], document: Any) -> None:
    write_bytes_atomic(path, json.dumps(document, indent=1).encode("utf-8"))


def swap_in_dir(staging: Path, out: Path) -> None:
    """Replace folder `out` with the finished `staging` folder; the old one is removed only afterwards."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(staging, out)
    if old:
        shutil.rmtree(old)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def names_in(folder: Path) -> list[str]:
    """The names of a data folder's TOML files (targets/, pipelines/): what a name may be."""
    return sorted(p.stem for p in folder.glob("*.toml"))


def named_file(kind: str, name_or_path: str | os.PathLike[str], folder: Path) -> Path:
    """`folder`/<name>.toml, or the file given; an unknown one is an error listing the known `kind`s."""
    text = str(name_or_path)
    path = Path(text) if text.endswith(".toml") or os.sep in text else folder / f"{text}.toml"
    if not path.is_file():
        raise ToolkitError(f"unknown {kind} {text!r}; known {kind}s: {', '.join(names_in(folder)) or 'none'} "
                           f"(files in {folder})")
    return path


def strict(value: Any) -> Any:
    """JSON has no inf or nan: write them as the strings "inf", "-inf", "nan" (recursively)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): strict(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(item) for item in value]
    return value


def write_json(path: Path, document: Any) -> None:
    """Strict JSON (see strict()), written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, json.dumps(strict(document), indent=1, allow_nan=False).encode())


def read_json(path: Path, what: str) -> Json:
    """A JSON file this pipeline wrote, or one line saying which stage makes it."""
    if not path.is_file():
        raise ToolkitError(f"{path} is missing; run `python -m toolkit profile` for this target first ({what})")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:  # cut short by a crash, or edited by hand
        raise ToolkitError(f"{path} is not valid JSON ({error}); it should hold {what}: make it again") from None
