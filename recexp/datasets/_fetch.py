"""Find a dataset's files: offline directory, cache, or the publisher's download.

Order: ``$RECEXP_DATA_DIR/<folder>/`` (no network at all), then the cache
(``$RECEXP_CACHE_DIR``, default ``~/.cache/recexp``), then a download from the publisher,
checked against its checksum and moved into the cache in one rename, so a half-downloaded or
corrupt archive is never used. ``RECEXP_OFFLINE=1`` forbids the download.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

__all__ = ["ChecksumError", "DataNotFoundError", "Remote", "Source", "cache_dir", "data_dir",
           "locate"]


class DataNotFoundError(FileNotFoundError):
    """The files of a dataset are neither on disk nor downloadable here."""


@dataclass(frozen=True)
class Remote:
    """Where a publisher serves a dataset.

    Parameters
    ----------
    url : str
        The archive (``.zip``) or single file to download.
    checksum : str
        ``"md5:<hex>"`` or ``"sha256:<hex>"`` of the downloaded file, as the publisher gives it;
        ``"md5:url"`` for a release re-published in place: the digest is then read from the
        publisher's ``<url>.md5`` file at download time.
    members : str, optional
        Folder inside the archive that holds the files (e.g. ``"ml-100k"``).
    """

    url: str
    checksum: str
    members: str | None = None
    notes: str = ""


@dataclass(frozen=True)
class Source:
    """The files one dataset needs and where they come from."""

    folder: str
    required: tuple[str, ...]
    remote: Remote | None = None
    optional: tuple[str, ...] = field(default=())
    manual: str = ""


class ChecksumError(OSError):
    """A downloaded file does not match the publisher's checksum."""


def data_dir() -> Path | None:
    """``$RECEXP_DATA_DIR`` as a Path, or ``None`` when unset."""
    value = os.environ.get("RECEXP_DATA_DIR")
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """Where downloads are kept: ``$RECEXP_CACHE_DIR`` or ``~/.cache/recexp``."""
    value = os.environ.get("RECEXP_CACHE_DIR")
    return Path(value).expanduser() if value else Path.home() / ".cache" / "recexp"


def _has_all(folder: Path, names: Sequence[str]) -> bool:
    return all((folder / n).is_file() for n in names)


def locate(source: Source, *, download: bool = True, progress: bool = True) -> Path:
    """The folder holding ``source``'s required files, downloading them if allowed.

    Raises
    ------
    DataNotFoundError
        Offline (or the download failed) and the files are absent; the message lists which
        files to put where.
    """
    candidates = []
    if (root := data_dir()) is not None:
        candidates.append(root / source.folder)
    candidates.append(cache_dir() / source.folder)
    for folder in candidates:
        if _has_all(folder, source.required):
            return folder
    offline = os.environ.get("RECEXP_OFFLINE", "") not in ("", "0")
    reason = ""
    if source.remote is not None and download and not offline:
        try:
            return _download(source, cache_dir(), progress=progress)
        except (urllib.error.URLError, OSError, ChecksumError) as exc:
            reason = f"download from {source.remote.url} failed: {exc}. "
    elif source.remote is None:
        reason = "no public download exists for it. "
    elif offline:
        reason = "RECEXP_OFFLINE is set. "
    where = " or ".join(str(c) for c in candidates)
    how = f" {source.manual}" if source.manual else ""
    raise DataNotFoundError(
        f"dataset files not found: {reason}Put {', '.join(source.required)} in {where}"
        f" (set RECEXP_DATA_DIR to the folder that contains {source.folder}/).{how}"
    )


def file_digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _download(source: Source, cache: Path, *, progress: bool) -> Path:
    remote = source.remote
    if remote is None:
        raise DataNotFoundError(f"{source.folder}: nothing to download")
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / source.folder
    with tempfile.TemporaryDirectory(dir=cache, prefix=".partial-") as tmp:
        tmpdir = Path(tmp)
        archive = tmpdir / Path(remote.url).name
        request = urllib.request.Request(remote.url, headers={"User-Agent": "recexp"})
        with urllib.request.urlopen(request, timeout=60) as response, open(archive, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=archive.name,
                      disable=not progress) as bar:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    bar.update(len(block))
        algorithm, expected = remote.checksum.split(":", 1)
        if expected == "url":
            with urllib.request.urlopen(f"{remote.url}.{algorithm}", timeout=60) as response:
                expected = response.read().decode("ascii", "replace").split()[0]
        got = file_digest(archive, algorithm)
        if got != expected.lower():
            raise ChecksumError(f"{archive.name}: {algorithm} {got} != expected {expected}")
        staged = tmpdir / "staged"
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(staged)
            inner = staged / remote.members if remote.members else staged
        else:
            staged.mkdir()
            shutil.move(archive, staged / archive.name)
            inner = staged
        if not _has_all(inner, source.required):
            raise ChecksumError(f"{archive.name} does not contain {list(source.required)}")
        if target.exists():
            shutil.rmtree(target)
        os.replace(inner, target)  # one rename: a reader sees all of it or none of it
    return target
