"""moto's S3 server on 127.0.0.1, started by the tests: a real HTTP S3 API, not a mock of the client."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import uuid

from trajgen import GenerationConfig

SMALL_RUN = GenerationConfig(n=40, checkpoint_every=10, seed=5, frames=6, size=16)  # bucket_run's config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def s3_environment(endpoint: str) -> dict[str, str]:
    """What a user of an S3-compatible store sets: credentials, region and the endpoint."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": endpoint,
    }


class S3Server:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> S3Server:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.process.kill()
        raise RuntimeError("moto's S3 server did not start in 30 s")

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()


def s3_client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, **_credentials())


def _credentials() -> dict:
    return {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}


def new_bucket(endpoint: str, name: str) -> str:
    """Create a bucket with a fresh name (from ``name``); its s3:// URL."""
    bucket = (re.sub(r"[^a-z0-9-]", "-", name.lower())[:40].strip("-") + "-" + uuid.uuid4().hex[:8]).lstrip("-")
    s3_client(endpoint).create_bucket(Bucket=bucket)
    return f"s3://{bucket}"


def object_names(endpoint: str, url: str) -> list[str]:
    """Every object key in the URL's bucket (under its prefix), listed with plain boto3."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    pages = s3_client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def pending_uploads(endpoint: str, url: str) -> list[str]:
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    found = s3_client(endpoint).list_multipart_uploads(Bucket=bucket, Prefix=prefix)
    return [u["Key"] for u in found.get("Uploads", [])]


def get_bytes(endpoint: str, url: str) -> bytes:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return s3_client(endpoint).get_object(Bucket=bucket, Key=key)["Body"].read()


def object_key(url: str, name: str) -> tuple[str, str]:
    """(bucket, key) of the object ``name`` of the run at ``url``."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    return bucket, f"{prefix}/{name}"


def put_object(endpoint: str, url: str, name: str, data: bytes) -> None:
    """Write the object ``name`` of the run at ``url`` with plain boto3 (not through trajgen)."""
    bucket, key = object_key(url, name)
    s3_client(endpoint).put_object(Bucket=bucket, Key=key, Body=data)
