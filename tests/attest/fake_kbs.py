#!/usr/bin/python3
"""TEST STAND-IN for a Trustee KBS: never use it to protect anything.

Speaks the RCAR protocol as trustee kbs/docs/kbs_attestation_protocol.md describes it (version
0.4.0) on 127.0.0.1 (or the one address --host names), well enough for the model loader's tests:
  POST /kbs/v0/auth      -> challenge {nonce, extra-params} + cookie kbs-session-id (expiring)
  POST /kbs/v0/attest    -> checks the session, the nonce and that the evidence's report data is
                            HASH(JCS(runtime-data)) zero-padded to 64 bytes; then the policy knob
  GET  /kbs/v0/resource/<repo>/<type>/<tag> -> the resource as a flattened-JSON JWE made by
                            jwcrypto (an implementation independent of ours), encrypted to the
                            tee-pubkey of the attested session (ECDH-ES+A256KW or RSA-OAEP-256, A256GCM)
  GET  /cdh/resource/<repo>/<type>/<tag>     -> (--cdh) the confidential data hub's local endpoint:
                            the plaintext resource
Evidence it understands: sample {"svn","report_data"}; and fake hardware flavours whose bytes the
tests write through a fake configfs-tsm tree: tdx {"quote"} with REPORTDATA at byte 568 of the quote
(48-byte header + TD report body offset 520, Intel TDX DCAP quote v4), snp {"attestation_report"}
with REPORT_DATA at byte 0x50 (AMD SEV-SNP ABI, ATTESTATION_REPORT). No signature is checked.
Errors are RFC 7807 bodies {"type","detail"} with 401/403/404, as Trustee sends them.

  GET  /stats                                -> {"events": [...]} what it did, in order: "attested"
                            (an attestation it accepted), "released <path>" (a key it sent),
                            "refused <path>" (a resource request it refused); for tests that must see
                            a successful attestation before the key left
  POST /policy  (body allow|deny)             -> sets the policy knob while it runs (--policy is the start)

Prints the port it listens on as the first line of stdout, then serves until killed. Every request
is logged on stderr as one line.
"""
import argparse
import base64
import hashlib
import http.server
import json
import os
import secrets
import sys
import threading
import time

from jwcrypto import jwe, jwk

ERR = "https://github.com/confidential-containers/kbs/errors/"


def b64u(b):
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def b64ud(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def trustee_layout_jwe(plaintext, pub):
    """ECDH-ES+A256KW + A256GCM built step by step with python3-cryptography, laid out as Trustee's
    kbs/src/jwe/mod.rs does: everything, epk included, in the protected header (jwcrypto puts epk
    in a per-recipient header instead). RFC 7518 sections 4.6 and 4.6.2, RFC 3394, RFC 7516 5.1."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.keywrap import aes_key_wrap
    peer = ec.EllipticCurvePublicNumbers(int.from_bytes(b64ud(pub["x"]), "big"),
                                         int.from_bytes(b64ud(pub["y"]), "big"), ec.SECP256R1()).public_key()
    eph = ec.generate_private_key(ec.SECP256R1())
    z = eph.exchange(ec.ECDH(), peer)
    n = eph.public_key().public_numbers()
    alg = b"ECDH-ES+A256KW"
    other = len(alg).to_bytes(4, "big") + alg + (0).to_bytes(4, "big") * 2 + (256).to_bytes(4, "big")
    kek = hashlib.sha256((1).to_bytes(4, "big") + z + other).digest()
    cek = secrets.token_bytes(32)
    header = {"alg": "ECDH-ES+A256KW", "enc": "A256GCM",
              "epk": {"kty": "EC", "crv": "P-256", "x": b64u(n.x.to_bytes(32, "big")), "y": b64u(n.y.to_bytes(32, "big"))}}
    protected = b64u(json.dumps(header).encode())
    iv = secrets.token_bytes(12)
    sealed = AESGCM(cek).encrypt(iv, plaintext, protected.encode())
    return json.dumps({"protected": protected, "encrypted_key": b64u(aes_key_wrap(kek, cek)), "iv": b64u(iv),
                       "ciphertext": b64u(sealed[:-16]), "tag": b64u(sealed[-16:])})


def b64d(s):
    return base64.b64decode(s, validate=True)


def jcs(value):
    # RFC 8785 for what runtime-data holds (ASCII strings in objects): sorted keys, no whitespace.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.sessions = {}  # id -> dict(nonce, expires, attested, pubkey, hash)
        self.count = 0
        self.events = []
        self.policy = args.policy
        self.failures_left = args.fail_first
        self.resources = {}
        for spec in args.resource:
            path, _, hexkey = spec.partition("=")
            self.resources[path] = bytes.fromhex(hexkey)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None

    def log_message(self, fmt, *a):
        sys.stderr.write("fake_kbs: " + (fmt % a) + "\n")

    def reply(self, status, body=b"", ctype="application/json", cookie=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if cookie:
            self.send_header("Set-Cookie", cookie)
        self.end_headers()
        self.wfile.write(body)

    def problem(self, status, kind, detail):
        self.reply(status, json.dumps({"type": ERR + kind, "detail": detail}).encode())

    def body(self):
        n = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(n)

    def session(self):
        cookie = self.headers.get("Cookie", "")
        for part in cookie.split(";"):
            name, _, value = part.strip().partition("=")
            if name == "kbs-session-id":
                return value, self.state.sessions.get(value)
        return None, None

    def failing(self):
        with self.state.lock:
            if self.state.failures_left > 0:
                self.state.failures_left -= 1
                self.problem(503, "ServiceUnavailable", "test stand-in: failing on purpose")
                return True
        return False

    def do_POST(self):
        if self.failing():
            return
        st, args = self.state, self.state.args
        data = self.body()
        if self.path == "/policy":
            if data.decode() not in ("allow", "deny"):
                return self.problem(400, "BadRequest", "policy is allow or deny")
            with st.lock:
                st.policy = data.decode()
            return self.reply(204)
        if self.path == "/kbs/v0/auth":
            req = json.loads(data)
            if req.get("version") != "0.4.0":
                return self.problem(401, "ProtocolVersion", "expected version 0.4.0")
            if req.get("tee") not in args.accept_tee.split(","):
                return self.problem(401, "UnsupportedTee", "tee not accepted by this KBS")
            sid = secrets.token_hex(16)
            nonce = base64.b64encode(secrets.token_bytes(32)).decode()
            with st.lock:
                st.count += 1
                expire_now = args.expire_sessions < 0 or st.count <= args.expire_sessions
                st.sessions[sid] = {"nonce": nonce, "expires": time.time() + args.cookie_ttl,
                                    "attested": False, "tee": req["tee"], "expire_on_resource": expire_now}
            extra = {"selected-hash-algorithm": args.hash} if args.hash else ""
            body = json.dumps({"nonce": nonce, "extra-params": extra}).encode()
            return self.reply(200, body, cookie=f"kbs-session-id={sid}; Path=/kbs/v0; HttpOnly")
        if self.path == "/kbs/v0/attest":
            sid, sess = self.session()
            if sess is None or sess["expires"] < time.time():
                return self.problem(401, "UnAuthenticated", "no valid session")
            att = json.loads(data)
            rd = att.get("runtime-data", {})
            expected_nonce = "wrong" if args.nonce_mismatch else sess["nonce"]
            if rd.get("nonce") != expected_nonce:
                return self.problem(401, "AttestationFailed", "nonce does not match the challenge")
            digest = hashlib.new(args.hash or "sha384", jcs(rd)).digest().ljust(64, b"\0")
            ev = att.get("tee-evidence", {}).get("primary_evidence", {})
            try:
                if sess["tee"] == "sample":
                    got = b64d(ev["report_data"])
                elif sess["tee"] == "tdx":
                    got = b64d(ev["quote"])[568:632]
                else:
                    got = b64d(ev["attestation_report"])[0x50:0x90]
            except (KeyError, ValueError, TypeError):
                return self.problem(401, "AttestationFailed", "evidence malformed")
            if got != digest:
                return self.problem(401, "AttestationFailed", "report data does not bind runtime-data")
            init = att.get("init-data")
            if args.require_initdata and (not init or init.get("format") != "toml" or not init.get("body")):
                return self.problem(401, "AttestationFailed", "init-data missing")
            sess["attested"] = True
            sess["pubkey"] = rd.get("tee-pubkey")
            with st.lock:
                st.events.append("attested")
            return self.reply(200, json.dumps({"token": "test-stand-in-token"}).encode())
        return self.problem(404, "NotFound", "no such endpoint")

    def do_GET(self):
        if self.failing():
            return
        st, args = self.state, self.state.args
        if self.path == "/stats":
            with st.lock:
                return self.reply(200, json.dumps({"events": st.events}).encode())
        if self.path.startswith("/cdh/resource/") and args.cdh:
            key = st.resources.get(self.path[len("/cdh/resource/"):])
            if key is None:
                return self.reply(500, b"get resource failed", ctype="text/plain")
            return self.reply(200, key, ctype="application/octet-stream")
        if not self.path.startswith("/kbs/v0/resource/"):
            return self.problem(404, "NotFound", "no such endpoint")
        sid, sess = self.session()
        if sess is None or sess["expires"] < time.time() or sess["expire_on_resource"]:
            return self.problem(401, "UnAuthenticated", "session expired or unknown; attest again")
        if not sess["attested"]:
            return self.problem(401, "UnAuthenticated", "session not attested")
        path = self.path[len("/kbs/v0/resource/"):]
        if st.policy == "deny":
            with st.lock:
                st.events.append("refused " + path)
            return self.problem(401, "PolicyDeny", "resource policy denied the request")
        if args.garbage:
            return self.reply(200, b'{"protected":"e30","ciphertext":"!!"}')
        key = st.resources.get(path)
        if key is None:
            return self.problem(404, "ResourceNotFound", "no such resource")
        pub = sess["pubkey"]
        alg = pub.get("alg", "ECDH-ES+A256KW")
        if args.trustee_layout and alg == "ECDH-ES+A256KW":
            out = trustee_layout_jwe(key, pub)
        else:
            token = jwe.JWE(key, protected=json.dumps({"alg": alg, "enc": "A256GCM"}))
            token.add_recipient(jwk.JWK(**pub))
            out = token.serialize(compact=False)
        if args.tamper:
            j = json.loads(out)
            ct = bytearray(base64.urlsafe_b64decode(j["ciphertext"] + "=" * (-len(j["ciphertext"]) % 4)))
            ct[0] ^= 1
            j["ciphertext"] = base64.urlsafe_b64encode(bytes(ct)).decode().rstrip("=")
            out = json.dumps(j)
        with st.lock:
            st.events.append("released " + path)
        self.reply(200, out.encode())


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--resource", action="append", default=[], help="repo/type/tag=HEX")
    p.add_argument("--policy", choices=["allow", "deny"], default="allow")
    p.add_argument("--accept-tee", default="sample,tdx,snp")
    p.add_argument("--cookie-ttl", type=float, default=300)
    p.add_argument("--expire-sessions", type=int, default=0,
                   help="the first N sessions are expired when they ask for a resource (-1: all)")
    p.add_argument("--nonce-mismatch", action="store_true", help="expect a nonce other than the one sent")
    p.add_argument("--hash", choices=["sha256", "sha384", "sha512"], help="selected-hash-algorithm")
    p.add_argument("--fail-first", type=int, default=0, help="answer 503 to the first N requests")
    p.add_argument("--garbage", action="store_true", help="answer resources with a malformed JWE")
    p.add_argument("--tamper", action="store_true", help="flip a ciphertext bit in the JWE")
    p.add_argument("--require-initdata", action="store_true")
    p.add_argument("--trustee-layout", action="store_true",
                   help="ECDH-ES JWEs with epk in the protected header, as Trustee lays them out")
    p.add_argument("--cdh", action="store_true", help="also serve /cdh/resource/ (a stand-in CDH)")
    p.add_argument("--host", default="127.0.0.1",
                   help="the one address to listen on (the libvirt e2e: the bridge its pod VMs reach)")
    p.add_argument("--tls-dir", help="serve HTTPS with a CA and certificate made here (ca.pem), as fakecloud.py does")
    args = p.parse_args()
    Handler.state = State(args)
    server = http.server.ThreadingHTTPServer((args.host, 0), Handler)
    server.daemon_threads = True
    if args.tls_dir:
        import ssl
        sys.dont_write_bytecode = True  # nothing written into the source tree
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "providers", "fakes"))
        from fakecloud import make_tls
        cert, key = make_tls(args.tls_dir)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
