#!/usr/bin/env python3
"""Benchmark of `imapref check`: N checks against the built-in lab in one process, beside two Python baselines over
the same account and server in the same run.

1. imapref check FILE --jobs 64, FILE holding N checks of the lab's home server (LOGIN, SELECT INBOX, LOGOUT each);
2. a sequential Python imaplib loop (connect, LOGIN, SELECT, LOGOUT, N times);
3. a hand-written Python asyncio client: 64 connections at once, each doing the same exchange pipelined (read the
   greeting; LOGIN, SELECT and LOGOUT in one write; read to the LOGOUT's completion).

Prints checks per second, imapref's peak RSS (from the kernel's rusage of the child), and how much CPU the lab server
(a separate process, sharing the same cores) used during each phase. Only loopback is used; the lab stops at the end.

    scripts/bench_check.py [--checks 1000] [--jobs 64] [--port-base 22100] [--binary target/release/imapref]
"""

import argparse
import asyncio
import imaplib
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time

USER = "DOMname/UserN/AliasN"
PASSWORD = "PASSword"


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def start_lab(binary, port_base):
    lab = subprocess.Popen(
        [binary, "lab", "--scenario", "kb", "--port-base", str(port_base), "--color", "never"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    home = None
    deadline = time.time() + 15
    while time.time() < deadline:
        line = lab.stdout.readline()
        if not line:
            break
        m = re.match(r"\s+home\s+plain\s+(127\.0\.0\.1):(\d+)", line)
        if m:
            home = (m.group(1), int(m.group(2)))
        if line.startswith("users"):
            break
    if home is None:
        lab.kill()
        sys.exit("bench_check: the lab did not start (is the port range free?)")
    return lab, home


def phase(name, lab_pid, fn, n):
    cpu0 = cpu_seconds(lab_pid)
    t0 = time.perf_counter()
    extra = fn()
    wall = time.perf_counter() - t0
    lab_cpu = cpu_seconds(lab_pid) - cpu0
    rate = n / wall
    print(f"{name:<44} {n:>6} checks in {wall:7.3f} s = {rate:8.0f} checks/s; "
          f"lab used {lab_cpu:6.3f} s CPU ({100 * lab_cpu / wall:5.1f}% of one core){extra or ''}")
    return rate


def imapref_check(binary, host, port, n, jobs):
    def run():
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "bench.toml")
            with open(path, "w") as f:
                f.write(f'[defaults]\nlogin = "{USER}"\npassword_env = "BENCH_PW"\ntimeout = 10\n\n')
                for i in range(n):
                    f.write(f'[[check]]\nname = "c{i}"\ntarget = "{host}:{port}"\n\n')
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            out = subprocess.run(
                [binary, "check", path, "--jobs", str(jobs), "--format", "nagios", "--max-time", "30"],
                env=dict(os.environ, BENCH_PW=PASSWORD, NO_COLOR="1"),
                capture_output=True,
                text=True,
            )
            # The largest child waited for so far: imapref is the first (the lab is waited for only at the end).
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            peak_kib = r1.ru_maxrss
            own_cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
            ok = sum(1 for line in out.stdout.splitlines()[1:] if line.startswith("OK "))
            if out.returncode != 0:
                sys.exit(f"bench_check: imapref check exited {out.returncode}:\n{out.stderr[-2000:]}")
            if ok != n:
                sys.exit(f"bench_check: only {ok} of {n} checks were OK")
            return f"; peak RSS {peak_kib / 1024:.1f} MiB; imapref used {own_cpu:.3f} s CPU"
    return run


def imaplib_loop(host, port, n):
    def run():
        for _ in range(n):
            c = imaplib.IMAP4(host, port)
            c.login(USER, PASSWORD)
            c.select("INBOX")
            c.logout()
    return run


async def pipelined_one(host, port):
    reader, writer = await asyncio.open_connection(host, port)
    greeting = await reader.readline()
    assert greeting.startswith(b"* OK"), greeting
    writer.write(f'a1 LOGIN "{USER}" {PASSWORD}\r\na2 SELECT INBOX\r\na3 LOGOUT\r\n'.encode())
    ok = {b"a1": False, b"a2": False}
    while True:
        line = await reader.readline()
        if not line:
            raise RuntimeError("closed before a3 completed")
        tag = line.split(b" ", 1)[0]
        if tag in ok:
            ok[tag] = line.split(b" ")[1] == b"OK"
        if tag == b"a3":
            break
    writer.close()
    try:
        await writer.wait_closed()
    except Exception:
        pass
    if not all(ok.values()):
        raise RuntimeError("LOGIN or SELECT failed")


def asyncio_pipelined(host, port, n, conns):
    async def main():
        sem = asyncio.Semaphore(conns)
        async def one():
            async with sem:
                await pipelined_one(host, port)
        await asyncio.gather(*(one() for _ in range(n)))
    return lambda: asyncio.run(main())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checks", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=64)
    ap.add_argument("--port-base", type=int, default=22100)
    ap.add_argument("--binary", default="target/release/imapref")
    args = ap.parse_args()
    lab, (host, port) = start_lab(args.binary, args.port_base)
    try:
        print(f"lab home server {host}:{port}; {os.cpu_count()} cores; Python {sys.version.split()[0]}")
        a = phase(f"imapref check --jobs {args.jobs}", lab.pid,
                  imapref_check(args.binary, host, port, args.checks, args.jobs), args.checks)
        b = phase("python imaplib, sequential", lab.pid, imaplib_loop(host, port, args.checks), args.checks)
        c = phase(f"python asyncio pipelined, {args.jobs} connections", lab.pid,
                  asyncio_pipelined(host, port, args.checks, args.jobs), args.checks)
        print(f"imapref check is {a / b:.1f}x the imaplib loop and {a / c:.1f}x the asyncio client")
    finally:
        lab.send_signal(signal.SIGINT)
        try:
            lab.wait(timeout=10)
        except subprocess.TimeoutExpired:
            lab.kill()
            lab.wait()


if __name__ == "__main__":
    main()
