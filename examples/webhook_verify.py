#!/usr/bin/env python3
"""Verifying a jobd webhook (X-Jobd-Signature v2) with Python's standard library.

verify() is what a receiver needs; README.md shows it. Run as a script, it reads
{"secret", "url", "headers", "body", "now"?} as JSON on stdin and exits 0 when the
request verifies, 1 when it does not (the tests use it as an implementation of the
check independent of jobd's).
"""
import hashlib
import hmac
import time


def verify(secret: bytes, url: str, headers, body: bytes, max_age=300, now=None) -> bool:
    """url: the URL this receiver published (the producer's "to"), byte for byte."""
    timestamp = headers.get("X-Jobd-Timestamp", "")
    if not timestamp.isdigit() or abs((now or time.time()) - int(timestamp)) > max_age:
        return False  # too old (or from the future): a replay, or a clock far off
    message = b"\n".join([b"v2", timestamp.encode(), b"POST", url.encode(),
                          headers.get("Idempotency-Key", "").encode(), body])
    expected = "v2=" + hmac.new(secret, message, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers.get("X-Jobd-Signature", ""))


if __name__ == "__main__":
    import json
    import sys

    request = json.load(sys.stdin)
    # Header names are case-insensitive; the sink records them in lower case.
    names = {"x-jobd-timestamp": "X-Jobd-Timestamp", "x-jobd-signature": "X-Jobd-Signature",
             "idempotency-key": "Idempotency-Key"}
    headers = {names.get(name.lower(), name): value for name, value in request["headers"].items()}
    ok = verify(request["secret"].encode(), request["url"], headers, request["body"].encode(), now=request.get("now"))
    sys.exit(0 if ok else 1)
