#!/usr/bin/python3
"""The failover test's probes (python3 standard library only; copied to the hosts under test).

    serve PORT                     TCP echo server (one line back for each line), every address
    client HOST PORT LOG           one long-lived connection: a numbered line every 0.1 s, each echo
                                   logged as "<unix time> <n>"; "error <why>" and exit 2 when it breaks
    watch-vips OUT VIP [VIP ...]   write the unix time at which this host holds every VIP to OUT
                                   (polls every 20 ms; "timeout" after --timeout seconds)
    gaps LOG [--after T]           JSON summary of a client log: echoes, echoes after T, the longest
                                   silence between two echoes and when it ended, errors
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import socketserver
import subprocess
import sys
import time


class _Echo(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        for line in self.rfile:
            self.wfile.write(line)
            self.wfile.flush()


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def serve(port: int) -> int:
    with _Server(("0.0.0.0", port), _Echo) as server:  # noqa: S104 - the test's server answers on the zone's address
        server.serve_forever()
    return 0


def client(host: str, port: int, log: str, interval: float, patience: float) -> int:
    with open(log, "a", buffering=1) as out:
        try:
            sock = socket.create_connection((host, port), timeout=10)
        except OSError as exc:
            out.write(f"error connect {host}:{port}: {exc}\n")
            return 2
        # A failover stalls the connection for a few seconds: TCP retransmits meanwhile. Only a
        # silence longer than `patience` counts as broken.
        sock.settimeout(patience)
        reader = sock.makefile("rb")
        n = 0
        while True:
            n += 1
            try:
                sock.sendall(f"{n}\n".encode())
                line = reader.readline()
            except OSError as exc:
                out.write(f"error after {n - 1} echoes: {exc}\n")
                return 2
            if line.strip() != str(n).encode():
                out.write(f"error echo {line!r} for {n}: the connection was closed or mixed up\n")
                return 2
            out.write(f"{time.time():.3f} {n}\n")
            time.sleep(interval)


def _addresses() -> set[str]:
    out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=False).stdout
    return set(re.findall(r"inet ([0-9.]+)/", out))


def watch_vips(target: str, vips: list[str], timeout: float) -> int:
    deadline = time.time() + timeout
    wanted = set(vips)
    while time.time() < deadline:
        if wanted <= _addresses():
            _write(target, f"{time.time():.3f}\n")
            return 0
        time.sleep(0.02)
    _write(target, "timeout\n")
    return 1


def _write(path: str, text: str) -> None:
    with open(f"{path}.new", "w") as out:
        out.write(text)
    # Rename: a reader never sees a half-written file.
    os.replace(f"{path}.new", path)


def gaps(log: str, after: float) -> int:
    times, errors = [], []
    try:
        with open(log) as f:
            for line in f:
                if line.startswith("error"):
                    errors.append(line.strip())
                elif line.strip():
                    times.append(float(line.split()[0]))
    except FileNotFoundError:
        pass
    longest, ended = 0.0, None
    for a, b in zip(times, times[1:], strict=False):
        if b - a > longest:
            longest, ended = b - a, b
    print(json.dumps({"echoes": len(times), "echoes_after": sum(1 for t in times if t > after), "last": times[-1] if times else None,
                      "longest_silence": round(longest, 3), "longest_silence_ended": ended, "errors": errors}))
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve")
    p.add_argument("port", type=int)
    p = sub.add_parser("client")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("log")
    p.add_argument("--interval", type=float, default=0.1)
    p.add_argument("--patience", type=float, default=60.0)
    p = sub.add_parser("watch-vips")
    p.add_argument("out")
    p.add_argument("vips", nargs="+")
    p.add_argument("--timeout", type=float, default=60.0)
    p = sub.add_parser("gaps")
    p.add_argument("log")
    p.add_argument("--after", type=float, default=0.0)
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args.port)
    if args.command == "client":
        return client(args.host, args.port, args.log, args.interval, args.patience)
    if args.command == "watch-vips":
        return watch_vips(args.out, args.vips, args.timeout)
    return gaps(args.log, args.after)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
