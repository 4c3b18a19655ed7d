#!/usr/bin/env python3
"""Time from process start to its first Kubernetes API request.

Listens on 127.0.0.1 (port 0), writes a kubeconfig whose server is that plain-HTTP address,
starts `BIN ARGS... --kubeconfig FILE`, and takes the time from just before the spawn to the
moment a complete request head arrives. Answers `/version` so the process can go on, then
stops it. Prints the median over --runs in milliseconds, and the first request line seen.

Usage: first_request.py [--runs N] BIN ARGS...
"""
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

VERSION = b'{"major":"1","minor":"32","gitVersion":"v1.32.0","platform":"linux/amd64"}'


def kubeconfig(port: int) -> str:
    return f"""apiVersion: v1
kind: Config
clusters:
- name: bench
  cluster:
    server: http://127.0.0.1:{port}
users:
- name: bench
  user:
    token: bench-token
contexts:
- name: bench
  context: {{cluster: bench, user: bench, namespace: default}}
current-context: bench
"""


def once(cmd: list[str]) -> tuple[float, str]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(10)
    with tempfile.NamedTemporaryFile("w", suffix=".kubeconfig", delete=False) as f:
        f.write(kubeconfig(srv.getsockname()[1]))
    env = dict(os.environ, KUBECONFIG=f.name)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd + ["--kubeconfig", f.name], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        conn, _ = srv.accept()
        conn.settimeout(10)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(4096)
            if not chunk:
                break
            head += chunk
        elapsed = time.perf_counter() - start
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                     + str(len(VERSION)).encode() + b"\r\nConnection: close\r\n\r\n" + VERSION)
        conn.close()
        return elapsed, head.split(b"\r\n", 1)[0].decode(errors="replace")
    finally:
        proc.kill()
        proc.wait()
        srv.close()
        os.unlink(f.name)


def main() -> None:
    args = sys.argv[1:]
    runs = 7
    if args[:1] == ["--runs"]:
        runs, args = int(args[1]), args[2:]
    results = [once(args) for _ in range(runs)]
    ms = statistics.median(r[0] for r in results) * 1000
    print(f"{ms:.1f} {results[0][1]}")


if __name__ == "__main__":
    main()
