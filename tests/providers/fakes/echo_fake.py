#!/usr/bin/python3
"""A test-only HTTP peer for the HTTP client's own tests: it echoes what it received.

  /echo          200, JSON {method, path, headers, body}
  /status/N      status N with a JSON error body
  /big/N         200 with N bytes
  /slow/MS       200 after MS milliseconds
  /retry-after/S 429 with Retry-After: S
Scripted faults, counters and connections come from fakecloud.py.
"""

import json
import time

import fakecloud


class EchoCloud(fakecloud.Cloud):
    def action_of(self, req):
        return req.path.split("?")[0].split("/")[1]

    def handle(self, req):
        parts = req.path.split("?")[0].split("/")
        kind = parts[1] if len(parts) > 1 else ""
        arg = parts[2] if len(parts) > 2 else ""
        if kind == "echo" or req.path.startswith("http://"):
            return fakecloud.Reply(200, json.dumps({
                "method": req.method, "path": req.path, "body": req.body.decode("latin-1"),
                "headers": {k.lower(): v for k, v in req.headers.items()}}))
        if kind == "status":
            return fakecloud.Reply(int(arg), json.dumps({"error": {"code": "Status" + arg, "message": "as asked"}}))
        if kind == "big":
            return fakecloud.Reply(200, b"x" * int(arg), content_type="application/octet-stream")
        if kind == "slow":
            time.sleep(int(arg) / 1000.0)
            return fakecloud.Reply(200, "{}")
        if kind == "retry-after":
            return fakecloud.Reply(429, "{}", {"Retry-After": arg})
        return fakecloud.Reply(404, "{}")


if __name__ == "__main__":
    fakecloud.serve(EchoCloud(fakecloud.arg_parser("echo fake").parse_args()))
