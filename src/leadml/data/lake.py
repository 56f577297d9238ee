"""Reading the four tables from an object store: Parquet under a prefix (``s3://bucket/crm/``,
``gs://bucket/crm/``), laid out as in a local folder, or from a web server
(``https://host/crm/``).

Through pyarrow's own filesystems (credentials, region and endpoint from the standard
environment variables, e.g. ``AWS_ENDPOINT_URL`` for an S3-compatible store), not DuckDB's
``httpfs`` extension, which is downloaded from DuckDB's server at run time. Each table is
``<prefix>/<table>.parquet`` or every ``.parquet`` file under ``<prefix>/<table>/`` (hive
partitions allowed), streamed into DuckDB in batches so it is held once.

A web server cannot list a folder, so over ``http(s)://`` each table is the one file
``<prefix>/<table>.parquet``, downloaded with the standard library into an anonymous temporary
file (Parquet is read from its end, which a download stream cannot seek to), streamed into
DuckDB from there and deleted.
"""

from __future__ import annotations

import shutil
import tempfile
import urllib.error
import urllib.request
from typing import BinaryIO

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from leadml.common.databases import first_line
from leadml.config.contract import TABLES
from leadml.data.readers import RawTables, ReadFailure, _describe, stream_in
from leadml.errors import DataError

#: Seconds an HTTP server may take to accept the connection or to send the next bytes.
HTTP_TIMEOUT = 60.0
_CHUNK = 1 << 20


def read_lake(raw: RawTables, uri: str) -> None:
    """Register every table found under ``uri`` as ``raw_<table>``; an absent table is left for
    validation, an unreadable one recorded in ``raw.unreadable``."""
    scheme = uri.split("://", 1)[0].lower()
    if scheme in ("http", "https"):
        read_http(raw, uri)
        return
    try:
        fs, root = pafs.FileSystem.from_uri(uri)
        root = root.rstrip("/")
        found = {
            name: fs.get_file_info([f"{root}/{name}.parquet", f"{root}/{name}"]) for name in TABLES
        }
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"cannot read {uri}: {first_line(exc)}") from None
    for name, (file, folder) in found.items():
        origin = raw.origins[name] = f"{scheme}://{folder.path}"
        if file.type == pafs.FileType.File and folder.type == pafs.FileType.Directory:
            raw.unreadable[name] = ReadFailure(
                f"{scheme}://{file.path} and {origin}/ are both there: keep one, leadml will "
                "not choose"
            )
            continue
        try:
            if file.type == pafs.FileType.File:
                raw.origins[name] = f"{scheme}://{file.path}"
                dataset = ds.dataset(file.path, filesystem=fs, format="parquet")
            elif folder.type == pafs.FileType.Directory:
                dataset = _folder(fs, folder.path)
                if dataset is None:
                    raw.unreadable[name] = ReadFailure(f"{origin}/ holds no .parquet files")
                    continue
            else:  # absent: validation says where it looked
                raw.origins[name] = f"{scheme}://{file.path} or {origin}/"
                continue
            stream_in(raw.con, f"raw_{name}", dataset.scanner().to_reader())
        except (OSError, pa.ArrowException, duckdb.Error) as exc:
            raw.unreadable[name] = ReadFailure(
                f"cannot read {raw.origins[name]}: {first_line(exc)}"
            )
            continue
        _describe(raw, name)


def _folder(fs: pafs.FileSystem, path: str) -> ds.Dataset | None:
    """Every ``.parquet`` file under ``path`` as one dataset (hive partitions as columns;
    files starting with ``_`` or ``.`` skipped, as Parquet readers do), or None."""
    files = sorted(
        info.path
        for info in fs.get_file_info(pafs.FileSelector(path, recursive=True))
        if info.type == pafs.FileType.File
        and info.base_name.endswith(".parquet")
        and not any(part.startswith(("_", ".")) for part in info.path[len(path) :].split("/"))
    )
    if not files:
        return None
    partitioning = ds.partitioning(flavor="hive")
    return ds.dataset(
        files, filesystem=fs, format="parquet", partitioning=partitioning, partition_base_dir=path
    )


def read_http(raw: RawTables, uri: str, timeout: float = HTTP_TIMEOUT) -> None:
    """Register ``<uri>/<table>.parquet`` of every table the server has as ``raw_<table>``.

    A 404 is an absent table (left for validation, which names the URL); any other HTTP error,
    an unreachable server or a ``timeout`` (seconds without a byte) is a :class:`DataError`
    naming the URL; a file that is not Parquet is recorded in ``raw.unreadable``.
    """
    root = uri.rstrip("/")
    for name in TABLES:
        url = f"{root}/{name}.parquet"
        raw.origins[name] = url
        with tempfile.TemporaryFile(prefix="leadml-http-") as local:
            if not _download(url, local, timeout):
                raw.origins[name] = (
                    f"{url}; over HTTP a table is one file <prefix>/{name}.parquet, as a web "
                    "server cannot list a folder"
                )
                continue
            try:
                parquet = pq.ParquetFile(local)
                batches = pa.RecordBatchReader.from_batches(
                    parquet.schema_arrow, parquet.iter_batches()
                )
                stream_in(raw.con, f"raw_{name}", batches)
            except (OSError, pa.ArrowException, duckdb.Error) as exc:
                raw.unreadable[name] = ReadFailure(f"cannot read {url}: {first_line(exc)}")
                continue
        _describe(raw, name)


def _download(url: str, into: BinaryIO, timeout: float) -> bool:
    """Copy ``url`` into the open binary file ``into``, chunk by chunk; False on a 404."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            shutil.copyfileobj(response, into, _CHUNK)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise DataError(f"cannot read {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:  # refused, unknown host, too slow
        why = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(why, TimeoutError):
            why = f"no answer within {timeout:g} s"
        raise DataError(f"cannot read {url}: {first_line(why)}") from None
    into.seek(0)
    return True
