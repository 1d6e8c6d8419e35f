"""Shared machinery of the loopback cloud fakes: test-only stand-ins for EC2, Azure Resource Manager
and Compute Engine, with no cloud reachable from a test.

Each fake (ec2_fake.py, arm_fake.py, gce_fake.py) subclasses Cloud and implements handle(); this
module gives them:
  - HTTPS on 127.0.0.1 with a certificate from a CA it makes (--tls-dir: ca.pem for the client's
    CA bundle), HTTP/1.1 keep-alive so that connection reuse is visible, the port in --port-file;
  - a per-request latency (--latency-ms) to stand in for a real cloud's round trip;
  - counters: calls by action, connections accepted, throttling answers given;
  - scripted faults: POST /_fake/faults with a JSON list of rules
      {"action": "<the fake's action name>", "count": N, "status": 503, "body": "...",
       "headers": {...}, "delay_ms": M, "drop": false}
    each answering the next N matching calls (drop: close the connection without an answer);
  - a rate limit (--rate-limit R per second per action, token bucket of --rate-burst tokens): past
    it the fake answers with its cloud's throttling error, as the real one does;
  - GET /_fake/stats -> {"calls": {...}, "connections": n, "throttled": n, "instances": [...]};
  - an instance runner (--runner CMD): when an instance starts running the fake runs
    `CMD start <ip> <user-data file>`, and `CMD stop <ip>` when it is deleted, so that an
    end-to-end test can run the pod VM's processes on the instance's loopback address.
Run with Debian's /usr/bin/python3: the oracles (botocore, azure) are Debian packages.
"""

import argparse
import datetime
import http.server
import ipaddress
import json
import os
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time


def make_tls(tls_dir):
    """A CA and a server certificate for 127.0.0.1/localhost in tls_dir (made once)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    cert_path = os.path.join(tls_dir, "server.pem")
    key_path = os.path.join(tls_dir, "server.key")
    if os.path.exists(cert_path):
        return cert_path, key_path
    os.makedirs(tls_dir, exist_ok=True)
    now = datetime.datetime.utcnow()
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake cloud test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    with open(os.path.join(tls_dir, "ca.pem"), "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


class Reply:
    def __init__(self, status, body=b"", headers=None, content_type="application/json"):
        self.status = status
        self.body = body.encode() if isinstance(body, str) else body
        self.headers = dict(headers or {})
        if content_type and "Content-Type" not in self.headers:
            self.headers["Content-Type"] = content_type


class Cloud:
    """Base of a fake: state under self.lock, counters, faults, rate limit, instance runner."""

    def __init__(self, args):
        self.args = args
        self.lock = threading.RLock()
        self.calls = {}
        self.connections = 0
        self.throttled = 0
        self.faults = []
        self.buckets = {}
        self.next_ip = 2
        self.runner_dir = tempfile.mkdtemp(prefix="fakecloud-")

    # --- for subclasses -------------------------------------------------------------------------
    def handle(self, req):
        """Returns a Reply for req (a Request). Runs on the request's thread; take self.lock."""
        raise NotImplementedError

    def action_of(self, req):
        """The name faults and counters use for req (e.g. "RunInstances", "PUT virtualMachines")."""
        return req.method + " " + req.path.split("?")[0]

    def throttle_reply(self, req):
        """This cloud's throttling answer."""
        return Reply(429, json.dumps({"error": {"code": "TooManyRequests", "message": "slow down"}}),
                     {"Retry-After": "1"})

    def instances(self):
        """Every live instance as JSON-able dicts, for /_fake/stats."""
        return []

    def control(self, req):
        """A fake's own /_fake/... endpoint (a Reply), or None for 404."""
        return None

    def new_ip(self):
        """A loopback address of its own for each instance: 127.0.<n/250>.<n%250+2>."""
        with self.lock:
            n = self.next_ip
            self.next_ip += 1
        return "127.0.%d.%d" % (1 + n // 250, 2 + n % 250)

    def run_instance(self, ip, user_data):
        """Starts the instance's processes (when a runner is configured)."""
        if not self.args.runner:
            return
        path = os.path.join(self.runner_dir, ip + ".user-data")
        with open(path, "wb") as f:
            f.write(user_data if isinstance(user_data, bytes) else user_data.encode())
        subprocess.run([self.args.runner, "start", ip, path], check=False)

    def stop_instance(self, ip):
        if self.args.runner and ip:
            subprocess.run([self.args.runner, "stop", ip], check=False)

    # --- machinery ------------------------------------------------------------------------------
    def count(self, action):
        with self.lock:
            self.calls[action] = self.calls.get(action, 0) + 1

    def take_fault(self, action):
        with self.lock:
            for rule in self.faults:
                if rule.get("action") in (action, "*") and rule.get("count", 1) > 0:
                    rule["count"] = rule.get("count", 1) - 1
                    return rule
        return None

    def over_rate(self, action):
        rate = self.args.rate_limit
        if not rate:
            return False
        burst = self.args.rate_burst or rate
        now = time.monotonic()
        with self.lock:
            tokens, last = self.buckets.get(action, (burst, now))
            tokens = min(burst, tokens + (now - last) * rate)
            if tokens < 1:
                self.buckets[action] = (tokens, now)
                self.throttled += 1
                return True
            self.buckets[action] = (tokens - 1, now)
        return False

    def stats(self):
        with self.lock:
            return {"calls": dict(self.calls), "connections": self.connections,
                    "throttled": self.throttled, "instances": self.instances()}


class Request:
    def __init__(self, handler, body):
        self.method = handler.command
        self.path = handler.path
        self.headers = handler.headers
        self.body = body
        self.handler = handler


def make_handler(cloud):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 120  # an idle keep-alive connection is closed after this long

        def setup(self):
            # The TLS handshake runs here, on the connection's own thread, so that a client that
            # never completes it cannot stall the accepting thread.
            if isinstance(self.request, ssl.SSLSocket):
                self.request.settimeout(self.timeout)
                self.request.do_handshake()
            super().setup()

        def log_message(self, fmt, *a):
            if cloud.args.verbose:
                sys.stderr.write("fake: " + (fmt % a) + "\n")

        def _serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            req = Request(self, body)
            if self.path.startswith("/_fake/"):
                return self._control(req)
            if cloud.args.latency_ms:
                time.sleep(cloud.args.latency_ms / 1000.0)
            action = cloud.action_of(req)
            cloud.count(action)
            rule = cloud.take_fault(action)
            if rule:
                if rule.get("delay_ms"):
                    time.sleep(rule["delay_ms"] / 1000.0)
                if rule.get("drop"):
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if "status" in rule:
                    return self._send(Reply(rule["status"], rule.get("body", ""), rule.get("headers")))
            if cloud.over_rate(action):
                return self._send(cloud.throttle_reply(req))
            try:
                reply = cloud.handle(req)
            except Exception as e:  # a bug in the fake: say so loudly, answer 500
                import traceback
                traceback.print_exc()
                reply = Reply(500, json.dumps({"error": {"code": "FakeBug", "message": str(e)}}))
            self._send(reply)

        def _control(self, req):
            if self.path == "/_fake/stats":
                return self._send(Reply(200, json.dumps(cloud.stats())))
            if self.path == "/_fake/faults" and self.command == "POST":
                with cloud.lock:
                    cloud.faults = json.loads(req.body or b"[]")
                return self._send(Reply(204, b"", content_type=None))
            reply = cloud.control(req)
            return self._send(reply if reply else Reply(404, "{}"))

        def _send(self, reply):
            self.send_response(reply.status)
            for k, v in reply.headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    return Handler


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, cloud, address, handler):
        self.cloud = cloud
        super().__init__(address, handler)

    def handle_error(self, request, client_address):
        # Connection-level errors (a client that refused our certificate, hung up mid-answer) are
        # what some tests do on purpose: one line, not a traceback. Bugs in handle() print theirs.
        sys.stderr.write("fake: connection from %s:%d ended: %s\n"
                         % (client_address[0], client_address[1], sys.exc_info()[1]))

    def process_request(self, request, client_address):
        with self.cloud.lock:
            self.cloud.connections += 1
        super().process_request(request, client_address)


def arg_parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--port-file", required=True, help="where to write the port the fake listens on")
    p.add_argument("--tls-dir", help="serve HTTPS with a CA and certificate kept here (ca.pem)")
    p.add_argument("--latency-ms", type=float, default=0, help="added to every call")
    p.add_argument("--rate-limit", type=float, default=0, help="calls per second per action before throttling")
    p.add_argument("--rate-burst", type=float, default=0,
                   help="the token bucket's size (default: one second's worth); EC2's bucket for "
                        "non-mutating actions holds 100 tokens refilled at 20 a second")
    p.add_argument("--runner", help="command run as `CMD start IP USERDATA` / `CMD stop IP`")
    p.add_argument("--verbose", action="store_true")
    return p


def serve(cloud):
    """Serves until SIGTERM/SIGINT; stops every instance's processes on the way out."""
    import signal
    server = Server(cloud, ("127.0.0.1", 0), make_handler(cloud))
    if cloud.args.tls_dir:
        cert, key = make_tls(cloud.args.tls_dir)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    tmp = cloud.args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, cloud.args.port_file)

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever(poll_interval=0.2)
    for inst in cloud.instances():
        if inst.get("ip"):
            cloud.stop_instance(inst["ip"])
