#!/usr/bin/python3
"""peerpods-model-loader end to end on loopback: the sample TEE, the TEST STAND-IN KBS
(fake_kbs.py, JWE by jwcrypto), a model encrypted with peerpods-model, plaintext into tmpfs
(/dev/shm). Every refusal must leave no plaintext and exit with its own status.

usage: loader_test.py LOADER MODEL_CLI
"""
import base64
import gzip
import hashlib
import os
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
LOADER = MODEL_CLI = None
KEY_HEX = "11" * 16 + "22" * 16
KEY_ID = "kbs:///default/model-key/llama"
RESOURCE = "default/model-key/llama"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class FakeKbs:
    def __init__(self, *args):
        self.proc = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "fake_kbs.py"), *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.url = "http://127.0.0.1:" + self.proc.stdout.readline().decode().strip()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


class FileServer:
    """A loopback HTTP server for the encrypted model (a model registry / object store stand-in)."""

    CODE = ("import functools,http.server,sys\n"
            "h=functools.partial(http.server.SimpleHTTPRequestHandler,directory=sys.argv[1])\n"
            "h.func.log_message=lambda *a:None\n"
            "s=http.server.ThreadingHTTPServer(('127.0.0.1',0),h)\n"
            "print(s.server_address[1],flush=True)\n"
            "s.serve_forever()\n")

    def __init__(self, directory):
        self.proc = subprocess.Popen(["/usr/bin/python3", "-c", self.CODE, directory], stdout=subprocess.PIPE)
        self.url = "http://127.0.0.1:" + self.proc.stdout.readline().decode().strip()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


def initdata(kbs_url, extra_loader=""):
    loader = f'key-resource = "{KEY_ID}"\n' + extra_loader
    aa = f'[token_configs.kbs]\nurl = "{kbs_url}"\n'
    toml = ('version = "0.1.0"\nalgorithm = "sha384"\n[data]\n'
            f"\"aa.toml\" = '''\n{aa}'''\n\"model-loader.toml\" = '''\n{loader}'''\n")
    return base64.b64encode(gzip.compress(toml.encode())).decode()


class LoaderTest(unittest.TestCase):
    def setUp(self):
        self.disk = tempfile.TemporaryDirectory(prefix="pp-loader-")
        self.mem = tempfile.TemporaryDirectory(prefix="pp-loader-", dir="/dev/shm")
        self.plain = os.urandom(3 * 1024 * 1024 + 17)
        self.digest = hashlib.sha256(self.plain).hexdigest()
        d = self.disk.name
        with open(f"{d}/key", "w") as f:
            f.write(KEY_HEX + "\n")
        with open(f"{d}/model.bin", "wb") as f:
            f.write(self.plain)
        self.model = f"{d}/model.enc"
        subprocess.run([MODEL_CLI, "encrypt", "--key-file", f"{d}/key", "--key-id", KEY_ID,
                        "--chunk-size", "65536", f"{d}/model.bin", self.model], check=True)
        self.out = os.path.join(self.mem.name, "model.bin")

    def tearDown(self):
        self.mem.cleanup()
        self.disk.cleanup()

    def load(self, kbs_url, *flags, extra_loader="", model=None, out=None, cdh=None):
        path = os.path.join(self.disk.name, "initdata")
        with open(path, "w") as f:
            f.write(initdata(kbs_url, extra_loader))
        cmd = [LOADER, "--initdata", path, "--model", model or self.model, "--output", out or self.out,
               "--tsm-root", "/nonexistent", "--cdh-url", cdh or f"http://127.0.0.1:{free_port()}",
               "--timeout", "10", *flags]
        start = time.monotonic()
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        p.seconds = time.monotonic() - start
        return p

    def assert_refused(self, p, status, words):
        self.assertEqual(p.returncode, status, p.stderr)
        self.assertEqual(p.stdout, "")
        self.assertIn(words, p.stderr.splitlines()[-1])
        self.assertTrue(p.stderr.splitlines()[-1].startswith("peerpods-model-loader: "))
        self.assertFalse(os.path.exists(self.out))
        self.assertEqual(os.listdir(self.mem.name), [])  # no partial file either

    def test_success_ec(self):
        with FakeKbs("--resource", f"{RESOURCE}={KEY_HEX}", "--require-initdata") as kbs:
            p = self.load(kbs.url, "--allow-sample-tee")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), f"sha256={self.digest} size={len(self.plain)} path={self.out}")
        self.assertEqual(stat.S_IMODE(os.stat(self.out).st_mode), 0o440)
        with open(self.out, "rb") as f:
            self.assertEqual(f.read(), self.plain)

    def test_success_rsa_and_mode(self):
        with FakeKbs("--resource", f"{RESOURCE}={KEY_HEX}") as kbs:
            p = self.load(kbs.url, "--allow-sample-tee", "--mode", "0400",
                          extra_loader='tee-key-algorithm = "RSA-OAEP-256"\n')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(self.out).st_mode), 0o400)

    def test_key_withheld(self):
        with FakeKbs("--resource", f"{RESOURCE}={KEY_HEX}", "--policy", "deny") as kbs:
            p = self.load(kbs.url, "--allow-sample-tee")
        self.assert_refused(p, 3, "policy denied")

    def test_key_missing(self):
        with FakeKbs() as kbs:
            p = self.load(kbs.url, "--allow-sample-tee")
        self.assert_refused(p, 3, "no such resource")

    def test_no_tee_without_sample_flag(self):
        with FakeKbs("--resource", f"{RESOURCE}={KEY_HEX}") as kbs:
            p = self.load(kbs.url)
        self.assert_refused(p, 3, "no TEE found")

    def test_kbs_down(self):
        p = self.load(f"http://127.0.0.1:{free_port()}", "--allow-sample-tee")
        self.assert_refused(p, 4, "unreachable")
        self.assertLess(p.seconds, 8)

    def test_tampered_model(self):
        with open(self.model, "r+b") as f:
            f.seek(200000)
            b = f.read(1)
            f.seek(200000)
            f.write(bytes([b[0] ^ 0x40]))
        with FakeKbs("--resource", f"{RESOURCE}={KEY_HEX}") as kbs:
            p = self.load(kbs.url, "--allow-sample-tee")
        self.assert_refused(p, 5, "model")

    def test_wrong_key_released(self):
        with FakeKbs("--resource", f"{RESOURCE}={'33' * 32}") as kbs:
            p = self.load(kbs.url, "--allow-sample-tee")
        self.assert_refused(p, 5, "model")

    def test_key_id_mismatch(self):
        other = os.path.join(self.disk.name, "other.enc")
        subprocess.run([MODEL_CLI, "encrypt", "--key-file", f"{self.disk.name}/key", "--key-id",
                        "kbs:///default/model-key/other", f"{self.disk.name}/model.bin", other], check=True)
        with FakeKbs("--resource", f"{RESOURCE}={KEY_HEX}") as kbs:
            p = self.load(kbs.url, "--allow-sample-tee", model=other)
        self.assert_refused(p, 5, "encrypted for key 'kbs:///default/model-key/other'")

    def test_output_not_in_memory(self):
        with FakeKbs("--resource", f"{RESOURCE}={KEY_HEX}") as kbs:
            p = self.load(kbs.url, "--allow-sample-tee", out=os.path.join(self.disk.name, "plain.bin"))
        self.assertEqual(p.returncode, 6, p.stderr)
        self.assertIn("not tmpfs or ramfs", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.disk.name, "plain.bin")))

    def test_cdh_path(self):
        # The data hub answers: the key comes from it, and the (down) KBS is never needed.
        with FakeKbs("--resource", f"{RESOURCE}={KEY_HEX}", "--cdh") as cdh:
            p = self.load(f"http://127.0.0.1:{free_port()}", cdh=cdh.url)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(f"sha256={self.digest}", p.stdout)

    def test_model_from_url(self):
        with FakeKbs("--resource", f"{RESOURCE}={KEY_HEX}") as kbs, FileServer(self.disk.name) as files:
            p = self.load(kbs.url, "--allow-sample-tee", model=files.url + "/model.enc?sig=secret")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(f"sha256={self.digest}", p.stdout)

    def test_model_url_missing_or_down(self):
        with FakeKbs("--resource", f"{RESOURCE}={KEY_HEX}") as kbs, FileServer(self.disk.name) as files:
            p = self.load(kbs.url, "--allow-sample-tee", model=files.url + "/nothing.enc?sig=secret")
        self.assert_refused(p, 4, "HTTP 404")
        self.assertNotIn("secret", p.stderr)
        p = self.load("http://127.0.0.1:1", "--allow-sample-tee", model=f"http://127.0.0.1:{free_port()}/m.enc")
        self.assert_refused(p, 4, "model download")

    def test_usage(self):
        p = subprocess.run([LOADER, "--initdata", "/nonexistent", "--model", self.model, "--output", self.out],
                           capture_output=True, text=True)
        self.assert_refused(p, 2, "initdata")
        p = subprocess.run([LOADER], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)


if __name__ == "__main__":
    LOADER, MODEL_CLI = sys.argv[1], sys.argv[2]
    unittest.main(argv=sys.argv[:1], verbosity=2)
