"""Reading the four tables from an object store: Parquet under a prefix (``s3://bucket/crm/``,
``gs://bucket/crm/``), laid out as in a local folder.

Through pyarrow's own filesystems (credentials, region and endpoint from the standard
environment variables, e.g. ``AWS_ENDPOINT_URL`` for an S3-compatible store), not DuckDB's
``httpfs`` extension, which is downloaded from DuckDB's server at run time. Each table is
``<prefix>/<table>.parquet`` or every ``.parquet`` file under ``<prefix>/<table>/`` (hive
partitions allowed), streamed into DuckDB in batches so it is held once.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from leadml.common.databases import first_line
from leadml.config.contract import TABLES
from leadml.data.readers import RawTables, ReadFailure, _describe, stream_in
from leadml.errors import DataError


def read_lake(raw: RawTables, uri: str) -> None:
    """Register every table found under ``uri`` as ``raw_<table>``; an absent table is left for
    validation, an unreadable one recorded in ``raw.unreadable``."""
    scheme = uri.split("://", 1)[0]
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
