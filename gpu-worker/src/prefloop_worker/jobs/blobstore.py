"""Blob URIs: ``file:///abs/path`` and ``s3://bucket/key``, read, written and listed the same way.

S3 goes through boto3 with its ordinary configuration (``AWS_ENDPOINT_URL`` for an emulator).
Writes are atomic per object: files are written to a temporary name and renamed; S3 PUTs are
atomic by nature. Publishing a folder writes every file before its ``manifest.json``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse


def _s3():
    import boto3

    return boto3.client("s3")


def split_s3(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def file_path(uri: str) -> Path:
    parsed = urlparse(uri)
    return Path(unquote(parsed.netloc + parsed.path) if parsed.netloc not in ("", "localhost") else unquote(parsed.path))


def join(prefix: str, *parts: str) -> str:
    return "/".join([prefix.rstrip("/"), *(p.strip("/") for p in parts)])


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def read_bytes(uri: str) -> bytes:
    if is_s3(uri):
        bucket, key = split_s3(uri)
        return _s3().get_object(Bucket=bucket, Key=key)["Body"].read()
    return file_path(uri).read_bytes()


def exists(uri: str) -> bool:
    if is_s3(uri):
        from botocore.exceptions import ClientError

        bucket, key = split_s3(uri)
        try:
            _s3().head_object(Bucket=bucket, Key=key)
            return True
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
    return file_path(uri).is_file()


def write_bytes(uri: str, data: bytes) -> None:
    if is_s3(uri):
        bucket, key = split_s3(uri)
        _s3().put_object(Bucket=bucket, Key=key, Body=data)
        return
    path = file_path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def upload_file(local: str | os.PathLike, uri: str) -> None:
    if is_s3(uri):
        bucket, key = split_s3(uri)
        _s3().upload_file(str(local), bucket, key)
        return
    path = file_path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    shutil.copyfile(local, tmp)
    os.replace(tmp, path)


def delete(uri: str) -> None:
    if is_s3(uri):
        bucket, key = split_s3(uri)
        _s3().delete_object(Bucket=bucket, Key=key)
        return
    path = file_path(uri)
    path.unlink(missing_ok=True)
    try:  # no empty folders left behind (S3 has none either)
        path.parent.rmdir()
    except OSError:
        pass


def list_keys(prefix_uri: str) -> list[str]:
    """Relative names of every object under a prefix (recursively)."""
    if is_s3(prefix_uri):
        bucket, key = split_s3(prefix_uri)
        key = key.rstrip("/") + "/" if key else ""
        out = []
        for page in _s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
            out += [obj["Key"][len(key):] for obj in page.get("Contents", [])]
        return sorted(out)
    root = file_path(prefix_uri)
    if root.is_file():
        return [""]
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def fetch(uri: str, cache_root: str | os.PathLike) -> Path:
    """A local path for ``uri``: ``file://`` as is; S3 objects/prefixes downloaded under ``cache_root``."""
    if not is_s3(uri):
        return file_path(uri)
    bucket, key = split_s3(uri)
    dest = Path(cache_root) / bucket / key.rstrip("/")
    names = list_keys(uri)
    client = _s3()
    if names == [] :
        # a single object (list_keys of "a/b.parquet" lists "a/b.parquet/…", i.e. nothing)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.exists():
            if not exists(uri):  # a failed job should say what was missing, not "HeadObject: Not Found"
                raise FileNotFoundError(f"nothing at {uri} (neither an object nor a prefix)")
            tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
            client.download_file(bucket, key, str(tmp))
            os.replace(tmp, dest)
        return dest
    for name in names:
        target = dest / name
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        client.download_file(bucket, f"{key.rstrip('/')}/{name}", str(tmp))
        os.replace(tmp, target)
    return dest
