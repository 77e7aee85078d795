"""Pieces the harness variants share: safe reading of data that comes as a folder or a zip archive,
and the error a model server answers with 400.

Archives are never extracted to disk: members are read into memory one at a time, so no entry name
can write outside the workspace. Names are still checked (absolute paths, '..', links, encryption) and
an archive larger than the limits allow, or one that inflates far beyond its size, is refused.
"""

import io
import os
import posixpath
import stat
import zipfile

MAX_MEMBERS = 200_000
MAX_MEMBER_BYTES = 64 * 1024 * 1024
MAX_TOTAL_BYTES = 4 * 1024 * 1024 * 1024
# Uncompressed over compressed size; images and CSVs stay far below this, zip bombs do not.
MAX_RATIO = 200
RATIO_CHECK_BYTES = 1024 * 1024


class RequestError(ValueError):
    """A request the model server cannot answer because of what it holds (HTTP 400)."""


class Entry:
    __slots__ = ("name", "size", "ref")

    def __init__(self, name, size, ref):
        self.name = name  # posix path relative to the source's root
        self.size = size
        self.ref = ref  # ZipInfo or an absolute path

    def __repr__(self):
        return f"Entry({self.name!r}, {self.size})"


def _error(message):
    import harness as H

    return H.HarnessError("value_error", message)


def _skip_name(name):
    """macOS resource forks and hidden files are not data."""
    parts = name.split("/")
    return "__MACOSX" in parts or any(p.startswith(".") for p in parts)


def _checked_name(raw, where):
    name = raw.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in name.split("/"):
        raise _error(f"{where} holds an entry with an unsafe path ({raw!r}); it was not read.")
    return posixpath.normpath(name)


class ZipSource:
    def __init__(self, path):
        self.path = path
        try:
            self.zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as e:
            raise _error(f"{path} is not a readable zip archive ({e}).")
        self._entries = None

    def entries(self):
        if self._entries is not None:
            return self._entries
        where = os.path.basename(self.path)
        infos = self.zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise _error(f"{where} holds {len(infos)} entries, over the limit of {MAX_MEMBERS}.")
        out, total = [], 0
        for info in infos:
            if info.is_dir():
                continue
            name = _checked_name(info.filename, where)
            if _skip_name(name):
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                raise _error(f"{where} holds a symbolic link ({info.filename}); links are not read from archives.")
            if info.flag_bits & 0x1:
                raise _error(f"{where} is encrypted ({info.filename}); send an archive without a password.")
            if info.file_size > MAX_MEMBER_BYTES:
                raise _error(f"{info.filename} in {where} is {info.file_size >> 20} MB, over the {MAX_MEMBER_BYTES >> 20} MB limit per file.")
            if info.file_size > RATIO_CHECK_BYTES and info.file_size > MAX_RATIO * max(1, info.compress_size):
                raise _error(f"{info.filename} in {where} inflates {info.file_size // max(1, info.compress_size)} times; the archive was refused.")
            total += info.file_size
            if total > MAX_TOTAL_BYTES:
                raise _error(f"{where} unpacks to more than {MAX_TOTAL_BYTES >> 30} GB; send a smaller archive.")
            out.append(Entry(name, info.file_size, info))
        self._entries = out
        return out

    def read(self, entry):
        with self.zf.open(entry.ref) as f:
            data = f.read(MAX_MEMBER_BYTES + 1)
        if len(data) > MAX_MEMBER_BYTES:
            raise _error(f"{entry.name} is larger than its archive entry says.")
        return data

    def close(self):
        self.zf.close()


class FolderSource:
    def __init__(self, path):
        self.path = os.path.abspath(path)
        self._entries = None
        self.links = 0

    def entries(self):
        if self._entries is not None:
            return self._entries
        out, total = [], 0
        for dirpath, dirnames, filenames in os.walk(self.path, followlinks=False):
            dirnames.sort()
            for fn in sorted(filenames):
                full = os.path.join(dirpath, fn)
                name = os.path.relpath(full, self.path).replace(os.sep, "/")
                if _skip_name(name):
                    continue
                if os.path.islink(full):
                    self.links += 1
                    continue
                size = os.path.getsize(full)
                if size > MAX_MEMBER_BYTES:
                    raise _error(f"{name} is {size >> 20} MB, over the {MAX_MEMBER_BYTES >> 20} MB limit per file.")
                total += size
                if total > MAX_TOTAL_BYTES or len(out) >= MAX_MEMBERS:
                    raise _error(f"{os.path.basename(self.path)} holds more than the limits allow ({MAX_MEMBERS} files, {MAX_TOTAL_BYTES >> 30} GB).")
                out.append(Entry(name, size, full))
        self._entries = out
        return out

    def read(self, entry):
        with open(entry.ref, "rb") as f:
            return f.read(MAX_MEMBER_BYTES + 1)[:MAX_MEMBER_BYTES]

    def close(self):
        pass


def open_source(path):
    """A zip archive or a folder of files, by what `path` is."""
    if not os.path.exists(path):
        raise _error(f"Data '{path}' was not found in the workspace.")
    if os.path.isdir(path):
        return FolderSource(path)
    if zipfile.is_zipfile(path):
        return ZipSource(path)
    raise _error(f"{os.path.basename(path)} is neither a folder nor a zip archive.")


def find_member(source, name):
    """The entry called `name` (exactly, or as the end of a longer path when that is unique)."""
    name = posixpath.normpath(name.replace("\\", "/"))
    entries = source.entries()
    for e in entries:
        if e.name == name:
            return e
    tail = [e for e in entries if e.name.endswith("/" + name)]
    if len(tail) == 1:
        return tail[0]
    raise _error(f"{name} is not in {os.path.basename(source.path)}.")


def read_csv_bytes(data, name, sep=None):
    """A CSV held in memory (an archive member) as a DataFrame, with the harness's error messages."""
    import pandas as pd

    if not data.strip():
        raise _error(f"{name} is empty: it has no rows.")
    last = None
    for encoding in ("utf-8", "latin-1"):
        try:
            return pd.read_csv(io.BytesIO(data), sep=sep or ",", encoding=encoding, low_memory=False)
        except UnicodeDecodeError as e:
            last = e
        except (pd.errors.ParserError, ValueError) as e:
            raise _error(f"{name} could not be parsed as CSV: {e}")
    raise _error(f"{name} could not be decoded as text: {last}")


def read_table(path, member=None, sep=","):
    """A CSV from the workspace, or a member of an archive in the workspace."""
    import harness as H

    if not member:
        return H.read_csv(path, sep)
    source = open_source(path)
    try:
        entry = find_member(source, member)
        return read_csv_bytes(source.read(entry), entry.name, sep)
    finally:
        source.close()


def stratified_pick(labels, limit, seed):
    """Sorted positions of `limit` items, sampled per label so that every label keeps its share."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    try:
        pick, _ = train_test_split(idx, train_size=limit, random_state=seed, stratify=labels)
    except ValueError:  # a label too rare to stratify
        pick = np.random.default_rng(seed).choice(idx, limit, replace=False)
    return np.sort(pick)
