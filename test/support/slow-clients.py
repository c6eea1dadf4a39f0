"""Hostile, slow clients for load tests (real sockets, held open by a separate process).

usage: slow-clients.py <mode> <host> <port> <count> [path] [token] [source address]

  stalled-ws  websocket upgrades of `path` with a 2 KiB receive buffer; after the 101 answer the
              client never reads again, so the server's writes pile up on its side.
  slowloris   HTTP requests whose headers never complete: one header line a second.
  half-open   websocket upgrades of `path` that never send a byte after the 101 (a peer that
              never starts its handshake); each one the server drops is opened again.

Prints "ready <n>" once all connections are open (n may be lower when the server refuses some),
then "closed <n>" lines (a running total) as the server drops them. Runs until killed.
"""
import base64
import os
import socket
import sys
import time

mode, host, port, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
path = sys.argv[5] if len(sys.argv) > 5 else "/"
token = sys.argv[6] if len(sys.argv) > 6 else ""
source = sys.argv[7] if len(sys.argv) > 7 else ""


def upgrade_request() -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{auth}\r\n").encode()


def read_head(s: socket.socket) -> bool:
    """Reads the response head byte by byte (never more), True on a 101."""
    head = b""
    s.settimeout(10)
    try:
        while b"\r\n\r\n" not in head:
            b = s.recv(1)
            if not b:
                return False
            head += b
    except OSError:
        return False
    finally:
        s.settimeout(None)
    return head.startswith(b"HTTP/1.1 101")


def open_one():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if mode == "stalled-ws":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    try:
        if source:
            s.bind((source, 0))
        s.connect((host, port))
        if mode == "slowloris":
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n".encode())
        else:
            s.sendall(upgrade_request())
            if not read_head(s):
                s.close()
                return None
        return s
    except OSError:
        s.close()
        return None


socks = [s for s in (open_one() for _ in range(count)) if s is not None]

def server_closed(s: socket.socket) -> bool:
    """True when the server closed (or answered, e.g. 408) without us reading its data."""
    try:
        s.setblocking(False)
        return s.recv(1, socket.MSG_PEEK) == b"" or mode == "slowloris"
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        s.setblocking(True)


if mode == "slowloris":
    # Connections refused at once (over a cap) are closed before their first line is read.
    time.sleep(0.3)
    kept = [s for s in socks if not server_closed(s)]
    for s in socks:
        if s not in kept:
            s.close()
    socks = kept
print(f"ready {len(socks)}", flush=True)

open_socks = list(socks)
closed_total = 0
n = 0
while open_socks:
    time.sleep(1 if mode == "slowloris" else 0.2)
    still = []
    for s in open_socks:
        alive = True
        if mode == "slowloris":
            try:
                s.sendall(f"X-a-{n}: b\r\n".encode())
            except OSError:
                alive = False
            alive = alive and not server_closed(s)
        elif mode == "half-open":
            alive = not server_closed(s)
        if alive:
            still.append(s)
        else:
            s.close()
    n += 1
    if len(still) != len(open_socks):
        closed_total += len(open_socks) - len(still)
        print(f"closed {closed_total}", flush=True)
    if mode == "half-open":
        # A persistent attacker: every connection the server drops is opened again at once.
        for _ in range(min(50, count - len(still))):
            s = open_one()
            if s is None:
                break
            still.append(s)
    open_socks = still
time.sleep(3600)
