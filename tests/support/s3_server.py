"""A real S3-compatible server for tests: moto's server as a child process on 127.0.0.1.

    with S3Server() as s3:
        bucket_url = s3.create_bucket("hooks")          # http://127.0.0.1:PORT/hooks
        access_key_id, secret = s3.credentials()
        ...deliver to bucket_url...
        s3.get_object("hooks", "webhooks/2024/01/01/checkout-1.json")

moto accepts any signature unless told otherwise. ``S3Server`` first creates an IAM
user with an access key and an ``s3:*`` policy while checks are still off, then turns
signature checking on (``POST /moto-api/reset-auth`` with ``0``: no more free actions).
From then on every request must be signed with that key: a wrong secret gets
``403 SignatureDoesNotMatch``, an unknown key ``403 InvalidAccessKeyId``.
The helpers below use the real key too, so they work with checks on.

moto re-verifies with botocore's S3 signer and does not compare the body with
``x-amz-content-sha256``; it proves the signature, not the payload hash.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import botocore.session
import requests
from botocore.config import Config

from tests.support.waiting import wait_until

HOST = "127.0.0.1"
IAM_USER = "webhook-delivery"
ALLOW_S3 = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class S3Server:
    """``python -m moto.server`` on a free loopback port, with signature checks on."""

    def __init__(self, region: str = "eu-west-1", check_signatures: bool = True, start_timeout: float = 30.0):
        self.region = region
        self.check_signatures = check_signatures
        self.start_timeout = start_timeout
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.process: subprocess.Popen | None = None
        self._log_dir = tempfile.TemporaryDirectory(prefix="moto-")
        self.log_path = Path(self._log_dir.name) / "moto.log"
        self._access_key: tuple[str, str] | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "S3Server":
        env = {**os.environ}
        env.pop("INITIAL_NO_AUTH_ACTION_COUNT", None)  # checks start off; turned on after setup
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )
        try:
            wait_until(self._answers, timeout=self.start_timeout, interval=0.05,
                       message=f"moto server on {self.url} did not answer")
            self._access_key = self._create_iam_key()
            if self.check_signatures:
                self._require_signatures()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers; always reap the process."""
        process = self.process
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self._log_dir.cleanup()

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> "S3Server":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<S3Server {self.url}>"

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(
                f"moto server exited with code {self.process.returncode}:\n{self.output()}"
            )
        try:
            return requests.get(f"{self.url}/moto-api/data.json", timeout=1).ok
        except requests.ConnectionError:
            return False

    # ------------------------------------------------------------------ setup

    def _client(self, service: str, access_key_id: str, secret: str):
        return botocore.session.get_session().create_client(
            service, region_name=self.region, endpoint_url=self.url,
            aws_access_key_id=access_key_id, aws_secret_access_key=secret,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def _create_iam_key(self) -> tuple[str, str]:
        """An IAM user allowed s3:*, and its access key (made while checks are off)."""
        iam = self._client("iam", "setup", "setup")
        iam.create_user(UserName=IAM_USER)
        iam.put_user_policy(UserName=IAM_USER, PolicyName="allow-s3", PolicyDocument=json.dumps(ALLOW_S3))
        key = iam.create_access_key(UserName=IAM_USER)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def _require_signatures(self) -> None:
        # A form Content-Type would make moto parse the body as a form and fail.
        response = requests.post(f"{self.url}/moto-api/reset-auth", data=b"0",
                                 headers={"Content-Type": "text/plain"}, timeout=5)
        assert response.status_code == 200, f"reset-auth answered {response.status_code}: {response.text}"

    # ------------------------------------------------------------------ helpers

    def credentials(self) -> tuple[str, str]:
        """(access key id, secret) of the IAM user moto verifies signatures against."""
        assert self._access_key is not None, "start() the server first"
        return self._access_key

    def s3(self):
        """A botocore S3 client signing with the real key (path-style addressing)."""
        return self._client("s3", *self.credentials())

    def create_bucket(self, name: str) -> str:
        """Create a bucket; return its path-style URL ``http://127.0.0.1:PORT/name``."""
        options = {}
        if self.region != "us-east-1":
            options["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        self.s3().create_bucket(Bucket=name, **options)
        return f"{self.url}/{name}"

    def get_object(self, bucket: str, key: str) -> bytes:
        return self.s3().get_object(Bucket=bucket, Key=key)["Body"].read()

    def head_object(self, bucket: str, key: str) -> dict:
        """Stored object metadata: ``ContentType``, ``Metadata`` (x-amz-meta-*), ``ContentLength``."""
        return self.s3().head_object(Bucket=bucket, Key=key)

    def list_keys(self, bucket: str) -> list[str]:
        found = self.s3().list_objects_v2(Bucket=bucket).get("Contents", [])
        return sorted(item["Key"] for item in found)
