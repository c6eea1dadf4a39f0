#!/usr/bin/env python3
"""Independent check of deaddrop's Sphinx packet processing (docs/protocol/mixnet.md, v1).

Written from the specification alone, with PyPI `cryptography` (X25519, HKDF, HMAC, AES-CTR).
Reads the committed vectors, processes every packet hop by hop with each hop's private key, and
prints, as JSON on stdout, what it computed: each hop's output, whether a second processing of the
same packet under the same replay cache is refused, whether each public key matches its private key,
and for reply vectors the replier's packet rebuilt from the SURB and the body the creator reads.
The TypeScript test compares that with the vectors; this script asserts nothing itself.

Usage: sphinx_check.py VECTORS.json
"""
import hmac as std_hmac
import json
import sys

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SLOT = 64
BETA = 5 * SLOT
HEADER = 32 + BETA + 16
PACKET = HEADER + 2048
RELAY, DELIVER, DELIVER_REPLY = 1, 2, 3


def x25519(scalar, point):
    """X25519 per RFC 7748 (the library clamps); None when the result is all zeros."""
    try:
        return X25519PrivateKey.from_private_bytes(scalar).exchange(X25519PublicKey.from_public_bytes(point))
    except ValueError:
        return None


def x25519_base(scalar):
    return X25519PrivateKey.from_private_bytes(scalar).public_key().public_bytes_raw()


def hkdf(ikm, salt, info, length):
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def mac16(key, *parts):
    h = hmac.HMAC(key, hashes.SHA256())
    for p in parts:
        h.update(p)
    return h.finalize()[:16]


def ctr(key, data):
    enc = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
    return enc.update(data) + enc.finalize()


def hop_keys(secret, alpha):
    okm = hkdf(secret, alpha, b"deaddrop-mix-v1 hop", 144)
    return {
        "rho": okm[0:16], "mu": okm[16:48], "pi": okm[48:64],
        "tau": okm[64:96], "blind": okm[96:128], "replay": okm[128:144],
    }


def process(packet, private_key, seen):
    """One hop. Returns (output dict, keys or None)."""
    if len(packet) != PACKET:
        return {"result": "reject", "reason": "size"}, None
    alpha, beta, gamma = packet[:32], packet[32:32 + BETA], packet[32 + BETA:HEADER]
    s = x25519(private_key, alpha)
    if s is None:
        return {"result": "reject", "reason": "point"}, None
    k = hop_keys(s, alpha)
    if not std_hmac.compare_digest(mac16(k["mu"], alpha, beta), gamma):
        return {"result": "reject", "reason": "mac"}, None
    if k["replay"] in seen:
        return {"result": "reject", "reason": "replay"}, None
    seen.add(k["replay"])
    d = ctr(k["rho"], beta + bytes(SLOT))
    slot = d[:SLOT]
    command, delay, address, field = slot[0], int.from_bytes(slot[1:5], "big"), slot[5:37], slot[37:53]
    payload = ctr(k["pi"], packet[HEADER:])
    base = {"delayMs": delay, "replayTag": k["replay"].hex()}
    if command == RELAY:
        nxt = x25519(k["blind"], alpha)
        if nxt is None:
            return {"result": "reject", "reason": "point"}, None
        out = nxt + d[SLOT:SLOT + BETA] + field + payload
        return {"result": "relay", "next": address.hex(), **base, "packet": out.hex()}, k
    if command == DELIVER:
        tag, body = payload[:16], payload[16:]
        if not std_hmac.compare_digest(mac16(k["tau"], body), tag):
            return {"result": "reject", "reason": "payload"}, None
        return {"result": "deliver", "mailbox": address.hex(), **base, "body": body.hex()}, k
    if command == DELIVER_REPLY:
        return {"result": "reply", "mailbox": address.hex(), **base, "surbId": field.hex(), "payload": payload.hex()}, k
    return {"result": "reject", "reason": "command"}, None


def surb_keys(key):
    okm = hkdf(key, b"", b"deaddrop-mix-v1 surb", 48)
    return okm[:16], okm[16:48]


def check(vector):
    out = {"name": vector["name"], "processing": [], "replayRefused": [], "publicKeysMatch": True}
    packet = bytes.fromhex(vector["packet"])
    pis = []
    for hop in vector["hops"]:
        priv = bytes.fromhex(hop["privateKey"])
        if x25519_base(priv).hex() != hop["publicKey"]:
            out["publicKeysMatch"] = False
        seen = set()
        result, keys = process(packet, priv, seen)
        out["processing"].append(result)
        if keys is None:
            break
        again, _ = process(packet, priv, seen)
        out["replayRefused"].append(again == {"result": "reject", "reason": "replay"})
        pis.append(keys["pi"])
        if result["result"] != "relay":
            break
        packet = bytes.fromhex(result["packet"])
    if vector["kind"] == "reply":
        surb = bytes.fromhex(vector["surb"])
        first_hop, header, key = surb[:32], surb[32:32 + HEADER], surb[32 + HEADER:]
        pi_k, tau_k = surb_keys(key)
        body = bytes.fromhex(vector["body"]).ljust(2032, b"\0")
        rebuilt = header + ctr(pi_k, mac16(tau_k, body) + body)
        out["surbFirstHopMatches"] = first_hop.hex() == vector["hops"][0]["address"]
        out["surbPacketMatches"] = rebuilt.hex() == vector["packet"]
        last = out["processing"][-1]
        if last["result"] == "reply" and last["surbId"] == vector["surbId"]:
            p = bytes.fromhex(last["payload"])
            for pi in pis:
                p = ctr(pi, p)
            p = ctr(pi_k, p)
            if std_hmac.compare_digest(mac16(tau_k, p[16:]), p[:16]):
                out["openedBody"] = p[16:].hex()
    return out


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        doc = json.load(f)
    results = [check(v) for v in doc["vectors"]]
    json.dump({"checker": "sphinx_check.py", "vectors": results}, sys.stdout)


if __name__ == "__main__":
    main()
