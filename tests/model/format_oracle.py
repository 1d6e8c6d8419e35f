#!/usr/bin/python3
"""An independent implementation of model/FORMAT.md, written from that page with
python3-cryptography (Debian), so that the format is not checked only against our own C++.

  format_oracle.py decrypt KEYFILE IN OUT     exit 0 and OUT written only if IN is authentic
  format_oracle.py encrypt KEYFILE KEYID CHUNK IN OUT [--unknown-size]

Holds the whole file in memory: it is for test-sized inputs.
"""
import hashlib
import hmac
import os
import struct
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"PPMODEL\x00"
UNKNOWN = 2**64 - 1
TAG = 16


def keys(k, salt):
    def hkdf(info):
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(k)
    return hkdf(b"peerpods-model v1 chunk key"), hkdf(b"peerpods-model v1 header key")


def read_key(path):
    raw = open(path, "rb").read()
    if len(raw) == 32:
        return raw
    return bytes.fromhex(raw.decode().strip())


def decrypt(k, data):
    if data[:8] != MAGIC:
        raise ValueError("magic")
    version, cipher, chunk, size = struct.unpack(">HHIQ", data[8:24])
    if version != 1 or cipher != 1 or not 4096 <= chunk <= 64 << 20:
        raise ValueError("header field")
    salt, prefix = data[24:56], data[56:64]
    (klen,) = struct.unpack(">H", data[64:66])
    if klen > 256:
        raise ValueError("key id length")
    end = 66 + klen
    header, mac = data[:end], data[end:end + 32]
    data_key, header_key = keys(k, salt)
    if not hmac.compare_digest(hmac.new(header_key, header, hashlib.sha256).digest(), mac):
        raise ValueError("header mac")
    digest = hashlib.sha256(header + mac).digest()
    body = data[end + 32:]
    records = [body[i:i + chunk + TAG] for i in range(0, len(body), chunk + TAG)] or [b""]
    gcm = AESGCM(data_key)
    out = []
    for i, rec in enumerate(records):
        final = i == len(records) - 1
        nonce = prefix + struct.pack(">I", i)
        aad = digest + struct.pack(">QB", i, 1 if final else 0)
        out.append(gcm.decrypt(nonce, rec, aad))  # raises InvalidTag
    plain = b"".join(out)
    if size != UNKNOWN and size != len(plain):
        raise ValueError("size")
    return plain


def encrypt(k, key_id, chunk, plain, unknown_size):
    salt, prefix = os.urandom(32), os.urandom(8)
    size = UNKNOWN if unknown_size else len(plain)
    kid = key_id.encode()
    header = MAGIC + struct.pack(">HHIQ", 1, 1, chunk, size) + salt + prefix + struct.pack(">H", len(kid)) + kid
    data_key, header_key = keys(k, salt)
    mac = hmac.new(header_key, header, hashlib.sha256).digest()
    digest = hashlib.sha256(header + mac).digest()
    pieces = [plain[i:i + chunk] for i in range(0, len(plain), chunk)] or [b""]
    gcm = AESGCM(data_key)
    out = [header, mac]
    for i, piece in enumerate(pieces):
        final = i == len(pieces) - 1
        out.append(gcm.encrypt(prefix + struct.pack(">I", i), piece, digest + struct.pack(">QB", i, 1 if final else 0)))
    return b"".join(out)


def main(argv):
    if argv[1] == "decrypt":
        k = read_key(argv[2])
        try:
            plain = decrypt(k, open(argv[3], "rb").read())
        except Exception as e:  # noqa: BLE001 - any failure is a refusal
            print("oracle: refused: %s" % type(e).__name__, file=sys.stderr)
            return 1
        open(argv[4], "wb").write(plain)
        return 0
    if argv[1] == "encrypt":
        k = read_key(argv[2])
        data = encrypt(k, argv[3], int(argv[4]), open(argv[5], "rb").read(), "--unknown-size" in argv)
        open(argv[6], "wb").write(data)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
