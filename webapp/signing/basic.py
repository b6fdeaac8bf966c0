"""HTTP Basic authentication header (RFC 7617, UTF-8 credentials)."""
import base64


def authorization(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode("utf-8")).decode("ascii")
    return f"Basic {token}"
