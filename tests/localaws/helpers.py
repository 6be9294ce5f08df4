"""Helpers for localaws tests: deployment zips built from source text, IAM roles."""

from __future__ import annotations

import io
import zipfile


def zip_bytes(files: dict[str, str | bytes]) -> bytes:
    """A zip archive holding ``files`` (archive name -> content)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buf.getvalue()


def lambda_role(iam) -> str:
    """ARN of a role Lambda functions can be created with (created once)."""
    try:
        return iam.get_role(RoleName="localaws-test-lambda")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return iam.create_role(RoleName="localaws-test-lambda", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
