#!/usr/bin/env python3
"""Load on `imapref exporter` against the built-in lab (the KB scenario): sequential scrapes for latency, then
concurrent scrapes for throughput, and the exporter's peak RSS. Every answer must say probe_success 1.

Run through scripts/bench-exporter.sh (which builds the release binary). Loopback only; everything it starts it stops.
"""
import argparse
import concurrent.futures
import http.client
import os
import re
import signal
import statistics
import subprocess
import tempfile
import time


def start(cmd, env, pattern, stream):
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    source = proc.stdout if stream == "stdout" else proc.stderr
    deadline = time.time() + 20
    lines = []
    while time.time() < deadline:
        line = source.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(pattern, line)
        if m:
            return proc, m
    proc.kill()
    raise SystemExit(f"{cmd[1]} did not start: {''.join(lines)}")


def scrape(addr, target):
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    started = time.perf_counter()
    conn.request("GET", f"/probe?target={target}&module=kb")
    body = conn.getresponse().read().decode()
    took = time.perf_counter() - started
    conn.close()
    if "\nprobe_success 1\n" not in body:
        raise SystemExit(f"a probe failed:\n{body}")
    return took


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/release/imapref")
    ap.add_argument("--sequential", type=int, default=300)
    ap.add_argument("--concurrent", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=16)
    args = ap.parse_args()
    env = dict(os.environ, LAB_PW="PASSword", NO_COLOR="1")
    lab, m = start([args.binary, "lab"], env, r"front\s+plain (127\.0\.0\.1:\d+)", "stdout")
    front = m.group(1)
    with tempfile.TemporaryDirectory() as d:
        config = os.path.join(d, "exporter.toml")
        with open(config, "w") as f:
            f.write('[module.kb]\nlogin = "DOMname/UserN/AliasN"\npassword_env = "LAB_PW"\nexpect_hops = 1\n')
        exporter, m = start([args.binary, "exporter", "--listen", "127.0.0.1:0", "--config", config,
                             "--max-concurrent", str(args.clients), "--history-limit", "100"],
                            env, r"listening on http://([^/]+)/", "stderr")
        addr = m.group(1)
        # The exporter logs a line per probe; drain it so it never blocks.
        drain = concurrent.futures.ThreadPoolExecutor(1)
        drain.submit(lambda: [None for _ in exporter.stderr])
        try:
            for _ in range(20):
                scrape(addr, front)
            lat = sorted(scrape(addr, front) for _ in range(args.sequential))
            q = statistics.quantiles(lat, n=100)
            print(f"sequential: {args.sequential} scrapes, median {statistics.median(lat) * 1000:.2f} ms, "
                  f"p99 {q[98] * 1000:.2f} ms")
            started = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
                list(pool.map(lambda _: scrape(addr, front), range(args.concurrent)))
            took = time.perf_counter() - started
            print(f"concurrent: {args.concurrent} scrapes from {args.clients} clients in {took:.2f} s, "
                  f"{args.concurrent / took:.0f} scrapes/s")
            print(f"exporter peak RSS: {peak_rss_kib(exporter.pid) / 1024:.1f} MiB")
        finally:
            for proc in (exporter, lab):
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=10)
            drain.shutdown(wait=False)


if __name__ == "__main__":
    main()
