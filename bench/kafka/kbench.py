#!/usr/bin/python3
"""streamlog Kafka-protocol benchmark: librdkafka clients against the
streamlog broker, next to librdkafka's mock cluster, SQL COPY and
LISTEN/NOTIFY, same server, same run.

Started by bench/kafka/run.sh, which provides the server through PGHOST,
PGPORT, PGUSER and PGDATABASE, its Kafka listener (--brokers) and a built
slbench (--slbench).  Sections, for 100-byte and 1 KiB values:

  1. produce throughput, acks=all, librdkafka default batching: streamlog,
     the mock cluster (the client's own ceiling), COPY into a table
  2. consume throughput from the start of the topics written in 1
  3. end-to-end latency at a fixed rate, next to INSERT + NOTIFY -> LISTEN
"""

import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time

import psycopg

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchlib import (Driver, driver_arguments, log, parse_result, sh,  # noqa: E402
                      fmt_int, fmt_mb, fmt_ratio, verdict, table)

MB = 1_000_000
HERE = os.path.dirname(os.path.abspath(__file__))

CPU_LEGEND = ("  CPU%        CPU seconds per second of wall time, 100 = one core; server = every PostgreSQL "
              "process;\n              broker = the broker workers; (a+b) = the busiest worker's time on a "
              "CPU + time runnable\n              but waiting for a CPU, in % of wall time (a+b near 100: "
              "the worker is CPU-bound)")

# streamlog produce records/s / mock cluster records/s, one producer, by value size
TARGET_PRODUCE = {100: 0.6, 1024: 0.3}
TARGET_CONSUME = {100: 3_000_000, 1024: 2_000_000}  # records/s, by value size
TARGET_LATENCY = 3.0        # streamlog p99 / NOTIFY round trip p99

PARTITIONS = 4              # throughput topics
MULTI_PRODUCERS = 4         # producers of the several-producer run (1b)
MULTI_PARTITIONS = 8        # and the partitions of its topic
LAT_RATE = 10_000           # records/s in the latency runs
NOTIFY_BATCH = 1000         # most records per NOTIFY transaction (grouped peer)
NOTIFY_CONNS = 32           # connections of the one-transaction-per-record run


def fmt_ms(x):
    """Latencies to 0.01 ms; the clients report -1 for what they could not measure."""
    return f"{x:.2f}" if x is not None and x >= 0 else "-"


def size_label(size):
    return "1 KiB" if size == 1024 else f"{size} B"


class CpuMeter:
    """CPU seconds of the server's processes (broker workers apart) and of
    the client processes this script waits for, over one measurement.
    Server processes are sampled every 0.2 s while a measurement runs, so
    that backends that come and go within it are counted too (less their
    last 0.2 s at most)."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, postmaster, brokers):
        self.postmaster = postmaster
        self.brokers = brokers
        self.seen = {}
        self.written = {}
        self.sampling = None

    @staticmethod
    def proc_cpu(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / CpuMeter.TICK
        except (OSError, IndexError, ValueError):
            return 0.0

    @staticmethod
    def sched(pid):
        """(ns on a CPU, ns runnable but waiting for one)"""
        try:
            with open(f"/proc/{pid}/schedstat") as f:
                on, wait = f.read().split()[:2]
            return int(on), int(wait)
        except (OSError, ValueError):
            return 0, 0

    def server_pids(self):
        pids = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == self.postmaster:
                pids.append(int(d))
        return pids + [self.postmaster]

    @staticmethod
    def proc_written(pid):
        """bytes the process caused to be written to storage (/proc/<pid>/io)"""
        try:
            with open(f"/proc/{pid}/io") as f:
                for line in f:
                    if line.startswith("write_bytes:"):
                        return int(line.split()[1])
        except (OSError, ValueError):
            pass
        return 0

    def sample(self):
        for pid in self.server_pids():
            self.seen[pid] = self.proc_cpu(pid)
            self.written[pid] = self.proc_written(pid)

    def sampler(self, stop):
        while not stop.wait(0.2):
            self.sample()

    def snapshot(self):
        self.seen = {}
        self.written = {}
        self.sample()
        per = dict(self.seen)
        self.written0 = dict(self.written)
        stop = threading.Event()
        thread = threading.Thread(target=self.sampler, args=(stop,), daemon=True)
        thread.start()
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        sched = {pid: self.sched(pid) for pid in self.brokers}
        return time.perf_counter(), per, ru.ru_utime + ru.ru_stime, (stop, thread), sched

    def since(self, snap):
        t0, per0, client0, (stop, thread), sched0 = snap
        stop.set()
        thread.join()
        self.sample()
        t1 = time.perf_counter()
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        client1 = ru.ru_utime + ru.ru_stime
        per1 = self.seen
        wall = max(t1 - t0, 1e-9)
        server = sum(v - per0.get(p, 0.0) for p, v in per1.items())
        broker = [per1.get(p, 0.0) - per0.get(p, 0.0) for p in self.brokers]
        sched = []
        for p in self.brokers:
            on, wait = self.sched(p)
            sched.append(((on - sched0[p][0]) / 1e9, (wait - sched0[p][1]) / 1e9))
        busiest = max(sched, key=lambda x: x[0], default=(0.0, 0.0))
        written = sum(v - self.written0.get(p, 0) for p, v in self.written.items())
        return {"server_pct": 100 * server / wall,
                "disk_mb": written / MB,
                "broker_pct": 100 * sum(broker) / wall,
                "busiest_on_pct": 100 * busiest[0] / wall,
                "busiest_wait_pct": 100 * busiest[1] / wall,
                "client_pct": 100 * (client1 - client0) / wall}

    @staticmethod
    def fmt_broker(c):
        """'total (busiest worker on CPU + waiting for a CPU)'"""
        return f"{c['broker_pct']:.0f} ({c['busiest_on_pct']:.0f}+{c['busiest_wait_pct']:.0f})"


class Profiler:
    """perf record on the broker workers while a client runs."""

    def __init__(self, work_dir, pids):
        self.work_dir = work_dir
        self.pids = pids
        self.reports = []

    def start(self, label):
        path = os.path.join(self.work_dir, f"perf-{len(self.reports)}.data")
        proc = subprocess.Popen(
            ["perf", "record", "-q", "-F", "999", "-o", path, "-p", ",".join(map(str, self.pids))],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(0.3)  # perf attaches before the client starts
        return (label, path, proc)

    def stop(self, handle, top=25):
        label, path, proc = handle
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            err = "perf record did not stop"
        rep = subprocess.run(
            ["perf", "report", "-i", path, "--stdio", "--no-children", "--sort", "dso,sym",
             "--percent-limit", "0.7"], capture_output=True, text=True)
        lines = [ln.rstrip() for ln in rep.stdout.splitlines()
                 if ln.strip() and not ln.startswith("#")]
        samples = re.search(r"# Samples: (\S+)", rep.stdout)
        head = f"{label} ({samples.group(1) if samples else '?'} samples)"
        if not lines:
            lines = [f"(no samples: {err.strip() or rep.stderr.strip()})"]
        self.reports.append((head, lines[:top]))
        try:
            os.unlink(path)
        except OSError:
            pass


class KBench(Driver):
    # the broker workers' own messages too: what a Kafka client did to them
    LOG_KEEP = Driver.LOG_KEEP + ("streamlog broker",)

    def __init__(self, args):
        super().__init__(args)
        self.sizes = (100, 1024)
        self.records = {100: 1_000_000, 1024: 200_000} if self.quick else \
            {100: 10_000_000, 1024: 1_000_000}
        self.lat_secs = 3 if self.quick else 10
        self.reps = 1 if self.quick else 3
        self.client_msgs = []
        self.results = {}

    # -- helpers ---------------------------------------------------------

    def run_client(self, what, cmd, profile=None, check=True):
        """Run slbench or notify_latency.py; returns (result dict, cpu dict).
        With check, a client that reports errors gets a note."""
        prof = self.profiler.start(profile) if profile and self.profiler else None
        snap = self.cpu.snapshot()
        p = subprocess.run(cmd, capture_output=True, text=True)
        cpu = self.cpu.since(snap)
        if prof:
            self.profiler.stop(prof)
        res = parse_result(p.stdout)
        msgs = [ln for ln in p.stderr.splitlines()
                if ln.strip() and "Mock cluster enabled" not in ln]
        if msgs and check:
            self.client_msgs.append((what, msgs))
        self.note_log(what)
        if res is None:
            raise RuntimeError(f"{what}: no result (exit {p.returncode})\n{p.stdout}\n{p.stderr}")
        if p.returncode != 0 and check:
            self.notes.append(f"{what}: the client reported errors (exit {p.returncode}): "
                              + "; ".join(msgs[:3]))
        res["ok"] = p.returncode == 0
        return res, cpu

    def slbench(self, *args):
        return [self.args.slbench, *map(str, args)]

    @staticmethod
    def stats_summary(path, role, request):
        """Requests of one type and the broker round trip, from librdkafka's
        last statistics snapshot (taken up to 1 s before the end of the run)."""
        try:
            with open(path) as f:
                st = json.load(f).get(role)
        except (OSError, ValueError):
            return None
        if not st:
            return None
        for b in st.get("brokers", {}).values():
            if b.get("nodeid", -1) < 0:
                continue
            rtt = b.get("rtt", {})
            return {"requests": b.get("req", {}).get(request, 0),
                    "txbytes": b.get("txbytes", 0), "rxbytes": b.get("rxbytes", 0),
                    "rtt_avg_ms": rtt.get("avg", 0) / 1000, "rtt_p99_ms": rtt.get("p99", 0) / 1000,
                    "rtt_cnt": rtt.get("cnt", 0)}
        return None

    def median_run(self, runs, key):
        runs = sorted(runs, key=lambda r: r[key])
        return runs[len(runs) // 2]

    # -- setup -----------------------------------------------------------

    def setup(self):
        log("setting up the extension, topics and tables")
        self.q("CREATE EXTENSION IF NOT EXISTS streamlog")
        for size in self.sizes:
            self.q("SELECT streamlog.create_topic(%s, %s)", (f"kb_{size}", PARTITIONS))
            self.q("SELECT streamlog.create_topic(%s, 1)", (f"kb_lat_{size}",))
            self.q("SELECT streamlog.create_topic(%s, %s)", (f"kb_multi_{size}", MULTI_PARTITIONS))
        self.q("CREATE TABLE plain (id bigserial PRIMARY KEY, k text, v text)")
        self.q("CREATE TABLE notify_events (id bigserial PRIMARY KEY, v text)")
        brokers = self.broker_pids()
        with open(os.path.join(self.args.data_dir, "postmaster.pid")) as f:
            postmaster = int(f.readline())
        self.brokers = brokers
        self.cpu = CpuMeter(postmaster, brokers)
        self.profiler = Profiler(self.args.work_dir, brokers) if self.args.profile else None
        # wait until the broker answers
        res, _ = self.run_client("broker check", self.slbench(
            "produce", "--brokers", self.args.brokers, "--topic", "kb_lat_100", "--records", 1,
            "--timeout", 30))
        if not res["ok"]:
            raise RuntimeError("the broker does not accept a produce request")

    def facts(self):
        settings = self.pg_settings(
            "max_wal_size", "checkpoint_timeout", "synchronous_commit", "fsync", "wal_sync_method",
            "full_page_writes", "streamlog.broker_workers", "commit_delay", "wal_init_zero",
            "wal_recycle", "wal_segment_size", "wal_compression")
        ext = self.q1("SELECT extversion FROM pg_extension WHERE extname = 'streamlog'")

        facts = self.emit_head("streamlog Kafka-protocol benchmark")
        self.emit(f"  extension   streamlog {ext} (git {facts['rev']}"
                  f"{', uncommitted changes' if facts['dirty'] else ''}), "
                  f"{settings['streamlog.broker_workers']} broker workers (pids "
                  f"{', '.join(map(str, self.brokers))})")
        self.emit(f"  client      librdkafka {sh(['pkg-config', '--modversion', 'rdkafka'])} (slbench), "
                  f"psycopg {psycopg.__version__}")
        self.emit(f"  settings    shared_buffers={self.shared_buffers_mb()}MB max_wal_size={settings['max_wal_size']} "
                  f"checkpoint_timeout={settings['checkpoint_timeout']} "
                  f"synchronous_commit={settings['synchronous_commit']} fsync={settings['fsync']} "
                  f"wal_sync_method={settings['wal_sync_method']} "
                  f"full_page_writes={settings['full_page_writes']} commit_delay={settings['commit_delay']}\n"
                  f"              wal_init_zero={settings['wal_init_zero']} wal_recycle={settings['wal_recycle']} "
                  f"wal_segment_size={settings['wal_segment_size']} "
                  f"wal_compression={settings['wal_compression']}")
        self.emit(f"  sizes       produce/consume {fmt_int(self.records[100])} x 100 B and "
                  f"{fmt_int(self.records[1024])} x 1 KiB, {PARTITIONS} partitions; latency "
                  f"{fmt_int(LAT_RATE)} records/s for {self.lat_secs} s (after 1 s warm-up), 1 partition; "
                  f"consume and latency: median of {self.reps}; MB = 10^6 bytes of value payload")
        self.emit(CPU_LEGEND)
        self.emit()

    # -- 1. produce ------------------------------------------------------

    def copy_plain(self, n, size):
        """COPY n rows of size-byte values into plain in one transaction."""
        chunk_rows = max(1, (1 << 20) // (size + 4))
        rnd = random.Random(size)
        letters = "abcdefghijklmnopqrstuvwxyz"
        pool = "".join(rnd.choice(letters) for _ in range(size + 4096))
        chunk = "".join("\\N\t" + pool[(i * 7919) % 4096:][:size] + "\n"
                        for i in range(chunk_rows)).encode()
        tail = chunk[: (n % chunk_rows) * (size + 4)]
        rows, secs, _ = self.timed_copy("COPY plain (k, v) FROM STDIN", chunk, n // chunk_rows, tail)
        if rows != n:
            raise RuntimeError(f"COPY: {rows} rows, expected {n}")
        return secs

    def bench_produce(self):
        rows = []
        verdicts = []
        client_rows = []
        for size in self.sizes:
            n = self.records[size]
            stats = os.path.join(self.args.work_dir, f"produce-{size}.json")

            self.settle()
            log(f"1. produce {fmt_int(n)} x {size_label(size)} to streamlog (acks=all)")
            lsn = self.wal_lsn()
            stored0 = self.topic_bytes(f"kb_{size}")
            sl, sl_cpu = self.run_client(
                f"produce {size_label(size)}",
                self.slbench("produce", "--brokers", self.args.brokers, "--topic", f"kb_{size}",
                             "--records", n, "--size", size, "--acks", "all", "--compression", "none",
                             "--stats", stats),
                profile=f"produce, {size_label(size)} values")
            sl_wal = self.wal_since(lsn) / MB
            sl_stored = (self.topic_bytes(f"kb_{size}") - stored0) / MB
            self.results[("produce", size)] = sl
            st = self.stats_summary(stats, "producer", "Produce")

            self.settle()
            log(f"1. produce {fmt_int(n)} x {size_label(size)} to the librdkafka mock cluster")
            mock, mock_cpu = self.run_client(
                f"produce {size_label(size)} (mock)",
                self.slbench("produce", "--mock", "--partitions", PARTITIONS, "--topic", f"kb_{size}",
                             "--records", n, "--size", size, "--acks", "all", "--compression", "none"))

            self.q("TRUNCATE plain RESTART IDENTITY")
            self.settle()
            log(f"1. COPY {fmt_int(n)} x {size_label(size)} into a table")
            lsn = self.wal_lsn()
            snap = self.cpu.snapshot()
            secs = self.copy_plain(n, size)
            copy_cpu = self.cpu.since(snap)
            copy_wal = self.wal_since(lsn) / MB
            copy_stored = self.q1("SELECT pg_total_relation_size('plain')") / MB
            copy_rps = n / secs
            self.note_log(f"COPY {size_label(size)}")

            ratio = sl["records_per_s"] / mock["records_per_s"]
            target = TARGET_PRODUCE[size]
            verdicts.append(f"{size_label(size)}: {fmt_ratio(ratio, target)} "
                            f"(target >= {target:.1f}x {verdict(ratio >= target)})")
            srv = lambda c: f"{c['server_pct']:.0f}"
            brk = CpuMeter.fmt_broker
            rows.append([size_label(size), "streamlog, Kafka Produce", fmt_int(sl["records_per_s"]),
                         fmt_mb(sl["mb_per_s"]), f"{sl['seconds']:.2f}", srv(sl_cpu), brk(sl_cpu),
                         f"{sl_cpu['client_pct']:.0f}", fmt_mb(sl_wal), fmt_mb(sl_cpu["disk_mb"]),
                         fmt_mb(sl_stored), fmt_ratio(ratio, target),
                         f">= {target:.1f}x {verdict(ratio >= target)}"])
            rows.append([size_label(size), "librdkafka mock cluster", fmt_int(mock["records_per_s"]),
                         fmt_mb(mock["mb_per_s"]), f"{mock['seconds']:.2f}", "-", "-",
                         f"{mock_cpu['client_pct']:.0f}", "-", "-", "-", "1.00x", ""])
            rows.append([size_label(size), "COPY FROM STDIN, 1 transaction", fmt_int(copy_rps),
                         fmt_mb(copy_rps * size / MB), f"{secs:.2f}", srv(copy_cpu), "-",
                         f"{copy_cpu['client_pct']:.0f}", fmt_mb(copy_wal), fmt_mb(copy_cpu["disk_mb"]),
                         fmt_mb(copy_stored),
                         fmt_ratio(copy_rps / mock["records_per_s"]), ""])
            if st and st["requests"]:
                client_rows.append([size_label(size), fmt_int(st["requests"]),
                                    fmt_int(n / max(st["requests"], 1)) if st["requests"] else "-",
                                    fmt_mb(st["txbytes"] / st["requests"] / 1000),
                                    fmt_ms(st["rtt_avg_ms"]), fmt_ms(st["rtt_p99_ms"]),
                                    fmt_int(sl["queue_full_waits"])])

        self.emit("1. Produce throughput: acks=all, no compression, librdkafka default batching "
                  f"(linger.ms=5, batch.size=1000000), one producer, {PARTITIONS} partitions")
        self.emit(table(["size", "method", "records/s", "MB/s", "s", "server CPU%", "broker CPU% (busiest)",
                         "client CPU%", "WAL MB", "disk MB", "stored MB", "vs mock", "target"], rows,
                        "ll" + "r" * 11))
        self.emit("  (stored MB: the topic's segments, streamlog.partitions.bytes, or the table with its "
                  "TOAST and index, pg_total_relation_size; disk MB: what the server's processes wrote "
                  "to storage meanwhile, /proc/<pid>/io write_bytes: the WAL, new WAL segments "
                  "zero-filled, pages written out)")
        self.emit("  streamlog / mock cluster, records/s: " + "; ".join(verdicts))
        if client_rows:
            self.emit("  client view of the streamlog runs (librdkafka statistics, last 1 s window "
                      "for the round trips):")
            self.emit(table(["size", "Produce requests", "records/request", "kB/request",
                             "rtt avg ms", "rtt p99 ms", "queue-full waits"], client_rows))
        self.emit()

    # -- 1b. several producers ----------------------------------------------

    def run_clients(self, what, cmds, profile=None):
        """Run several slbench processes at once; (their results, cpu dict)."""
        prof = self.profiler.start(profile) if profile and self.profiler else None
        snap = self.cpu.snapshot()
        procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for c in cmds]
        outs = [p.communicate() for p in procs]
        cpu = self.cpu.since(snap)
        if prof:
            self.profiler.stop(prof)
        self.note_log(what)
        results = []
        for p, (out, err) in zip(procs, outs):
            res = parse_result(out)
            if res is None:
                raise RuntimeError(f"{what}: no result (exit {p.returncode})\n{out}\n{err}")
            if p.returncode != 0:
                self.notes.append(f"{what}: a client reported errors (exit {p.returncode}): "
                                  + "; ".join(err.splitlines()[:3]))
            results.append(res)
        return results, cpu

    def bench_produce_many(self):
        """MULTI_PRODUCERS producers at once, each its own process and
        connection, on a topic of MULTI_PARTITIONS partitions; records/s is
        all records over the slowest producer's time"""
        rows = []
        for size in self.sizes:
            n = self.records[size] // MULTI_PRODUCERS
            total = n * MULTI_PRODUCERS
            self.settle()
            log(f"1b. produce {MULTI_PRODUCERS} x {fmt_int(n)} x {size_label(size)} to streamlog")
            lsn = self.wal_lsn()
            sl, sl_cpu = self.run_clients(
                f"produce x{MULTI_PRODUCERS} {size_label(size)}",
                [self.slbench("produce", "--brokers", self.args.brokers, "--topic", f"kb_multi_{size}",
                              "--records", n, "--size", size, "--acks", "all", "--compression", "none")
                 for _ in range(MULTI_PRODUCERS)],
                profile=f"produce, {MULTI_PRODUCERS} producers, {size_label(size)} values")
            sl_wal = self.wal_since(lsn) / MB
            self.settle()
            log(f"1b. produce {MULTI_PRODUCERS} x {fmt_int(n)} x {size_label(size)} to mock clusters")
            mock, mock_cpu = self.run_clients(
                f"produce x{MULTI_PRODUCERS} {size_label(size)} (mock)",
                [self.slbench("produce", "--mock", "--partitions", MULTI_PARTITIONS,
                              "--topic", f"kb_multi_{size}", "--records", n, "--size", size,
                              "--acks", "all", "--compression", "none")
                 for _ in range(MULTI_PRODUCERS)])
            sl_secs = max(r["seconds"] for r in sl)
            mock_secs = max(r["seconds"] for r in mock)
            sl_rps, mock_rps = total / sl_secs, total / mock_secs
            self.results[("produce_many", size)] = sl_rps
            rows.append([size_label(size), f"streamlog, {MULTI_PRODUCERS} producers", fmt_int(sl_rps),
                         fmt_mb(sl_rps * size / MB), f"{sl_secs:.2f}", f"{sl_cpu['server_pct']:.0f}",
                         CpuMeter.fmt_broker(sl_cpu), f"{sl_cpu['client_pct']:.0f}", fmt_mb(sl_wal),
                         fmt_mb(sl_cpu["disk_mb"]), fmt_ratio(sl_rps / mock_rps)])
            rows.append([size_label(size), f"{MULTI_PRODUCERS} mock clusters", fmt_int(mock_rps),
                         fmt_mb(mock_rps * size / MB), f"{mock_secs:.2f}", "-", "-",
                         f"{mock_cpu['client_pct']:.0f}", "-", "-", "1.00x"])
        self.emit(f"1b. Produce throughput, {MULTI_PRODUCERS} producers at once (a process and a "
                  f"connection each), one topic of {MULTI_PARTITIONS} partitions, as in 1")
        self.emit(table(["size", "method", "records/s", "MB/s", "s", "server CPU%", "broker CPU% (busiest)",
                         "client CPU%", "WAL MB", "disk MB", "vs mock"], rows, "ll" + "r" * 9))
        self.emit("  (records/s: all records over the slowest producer's time; the mock clusters run "
                  "in the producers' processes, one each; server CPU% above 100 uses both cores)")
        self.emit()

    # -- 2. consume ------------------------------------------------------

    def bench_consume(self):
        rows = []
        verdicts = []
        for size in self.sizes:
            n = self.records[size]
            runs = []
            for rep in range(self.reps):
                stats = os.path.join(self.args.work_dir, f"consume-{size}-{rep}.json")
                self.settle()
                log(f"2. consume {fmt_int(n)} x {size_label(size)} from the start"
                    + (f" [{rep + 1}/{self.reps}]" if self.reps > 1 else ""))
                res, cpu = self.run_client(
                    f"consume {size_label(size)}",
                    self.slbench("consume", "--brokers", self.args.brokers, "--topic", f"kb_{size}",
                                 "--partitions", PARTITIONS, "--records", n, "--stats", stats),
                    profile=f"consume, {size_label(size)} values" if rep == 0 else None)
                res["cpu"] = cpu
                res["stats"] = self.stats_summary(stats, "consumer", "Fetch")
                runs.append(res)
            r = self.median_run(runs, "steady_records_per_s")
            self.results[("consume", size)] = r
            st = r["stats"]
            target = TARGET_CONSUME[size]
            ok = r["steady_records_per_s"] >= target
            verdicts.append(f"{size_label(size)}: {fmt_int(r['steady_records_per_s'])} records/s "
                            f"(target >= {fmt_int(target)} {verdict(ok)})")
            rows.append([size_label(size), fmt_int(r["consumed"]), fmt_int(r["steady_records_per_s"]),
                         fmt_mb(r["steady_mb_per_s"]), fmt_int(r["records_per_s"]),
                         f"{r['seconds']:.2f}", f"{r['first_record_ms']:.0f}",
                         f"{r['cpu']['server_pct']:.0f}",
                         CpuMeter.fmt_broker(r["cpu"]),
                         f"{r['cpu']['client_pct']:.0f}",
                         fmt_int(st["requests"]) if st else "-",
                         fmt_mb(st["rxbytes"] / st["requests"] / 1000) if st and st["requests"] else "-",
                         fmt_ms(st["rtt_avg_ms"]) if st and st["rtt_cnt"] else "-",
                         f">= {fmt_int(target)} {verdict(ok)}"])
        self.emit(f"2. Consume throughput from the start of the topics written in 1: one consumer "
                  f"(manual assignment of all {PARTITIONS} partitions, librdkafka defaults: "
                  f"fetch.max.bytes 50 MB, 1 MB per partition), warm cache, median of {self.reps}")
        self.emit(table(["size", "records", "records/s", "MB/s", "incl. start", "s", "1st record ms",
                         "server CPU%",
                         "broker CPU% (busiest)", "client CPU%", "Fetch requests", "kB/fetch",
                         "fetch rtt avg ms", "target"], rows))
        self.emit("  consume, records/s: " + "; ".join(verdicts))
        self.emit("  (records/s and MB/s: from the first records handed to the application to the last; "
                  "'incl. start' and s: from the start of the assignment, with the offset lookups and the "
                  "first fetch)")
        self.emit("  (Fetch requests and kB/fetch from librdkafka's last statistics snapshot, taken up "
                  "to 1 s before the end; '-' when the run was shorter than 1 s)")
        self.emit()

    # -- 3. latency ------------------------------------------------------

    def bench_latency(self):
        rows = []
        verdicts = []
        for size in self.sizes:
            sl_runs, nt_runs = [], []
            for rep in range(self.reps):
                suffix = f" [{rep + 1}/{self.reps}]" if self.reps > 1 else ""
                self.settle()
                log(f"3. latency, streamlog, {size_label(size)}, {fmt_int(LAT_RATE)}/s for "
                    f"{self.lat_secs} s{suffix}")
                res, cpu = self.run_client(
                    f"latency {size_label(size)}",
                    self.slbench("latency", "--brokers", self.args.brokers, "--topic", f"kb_lat_{size}",
                                 "--rate", LAT_RATE, "--seconds", self.lat_secs, "--size", size),
                    profile=f"latency, {size_label(size)} values" if size == 100 and rep == 0 else None)
                res["cpu"] = cpu
                sl_runs.append(res)

                self.settle()
                log(f"3. latency, INSERT + NOTIFY, {size_label(size)}, {fmt_int(LAT_RATE)}/s for "
                    f"{self.lat_secs} s{suffix}")
                res, cpu = self.run_client(
                    f"NOTIFY latency {size_label(size)}",
                    ["/usr/bin/python3", os.path.join(HERE, "notify_latency.py"), "--rate", str(LAT_RATE),
                     "--seconds", str(self.lat_secs), "--size", str(size), "--batch", str(NOTIFY_BATCH),
                     "--connections", "1", "--table", "notify_events", "--channel", "kb_notify"])
                res["cpu"] = cpu
                nt_runs.append(res)
            sl = self.median_run(sl_runs, "p99_ms")
            nt = self.median_run(nt_runs, "p99_ms")
            self.results[("latency", size)] = sl
            ratio = sl["p99_ms"] / nt["p99_ms"] if nt["p99_ms"] > 0 and sl["p99_ms"] >= 0 else float("inf")
            ok = ratio <= TARGET_LATENCY and sl["lost"] == 0
            verdicts.append(f"{size_label(size)}: {fmt_ratio(ratio, TARGET_LATENCY)} "
                            f"(target <= {TARGET_LATENCY:.0f}x {verdict(ok)})")
            rows.append([size_label(size), "streamlog: Produce (linger.ms=0) -> Fetch",
                         fmt_int(sl["send_rate"]), fmt_int(sl["received"]), fmt_int(sl["lost"]),
                         fmt_ms(sl["p50_ms"]), fmt_ms(sl["p99_ms"]), fmt_ms(sl["p999_ms"]),
                         fmt_ms(sl["max_ms"]), f"{fmt_ms(sl['ack_p50_ms'])} / {fmt_ms(sl['ack_p99_ms'])}",
                         f"{sl['cpu']['server_pct']:.0f}", CpuMeter.fmt_broker(sl["cpu"]),
                         f"{sl['cpu']['client_pct']:.0f}",
                         fmt_ratio(ratio, TARGET_LATENCY), f"<= {TARGET_LATENCY:.0f}x {verdict(ok)}"])
            rows.append([size_label(size), "INSERT + NOTIFY -> LISTEN, grouped",
                         fmt_int(nt["send_rate"]), fmt_int(nt["received"]), fmt_int(nt["lost"]),
                         fmt_ms(nt["p50_ms"]), fmt_ms(nt["p99_ms"]), fmt_ms(nt["p999_ms"]),
                         fmt_ms(nt["max_ms"]), "-", f"{nt['cpu']['server_pct']:.0f}", "-",
                         f"{nt['cpu']['client_pct']:.0f}", "1.00x", ""])
            if sl["late_sends"]:
                self.notes.append(f"latency {size_label(size)}: the producer thread was late for "
                                  f"{fmt_int(sl['late_sends'])} sends (by up to {sl['late_max_ms']:.1f} ms): "
                                  "the client did not get the CPU in time")

        # one transaction per record: how far NOTIFY goes
        self.settle()
        log(f"3. INSERT + NOTIFY, one transaction per record, {NOTIFY_CONNS} connections (saturation)")
        sat, _ = self.run_client(
            "NOTIFY saturation",
            ["/usr/bin/python3", os.path.join(HERE, "notify_latency.py"), "--rate", str(LAT_RATE),
             "--seconds", "3", "--warmup", "0", "--size", "100", "--batch", "1",
             "--connections", str(NOTIFY_CONNS), "--drain-timeout", "0",
             "--table", "notify_events", "--channel", "kb_notify_sat"], check=False)

        self.emit(f"3. End-to-end latency at {fmt_int(LAT_RATE)} records/s for {self.lat_secs} s, "
                  f"ms from the producer handing a record over to the consumer receiving it, "
                  f"1 partition, median run of {self.reps} by p99")
        self.emit(table(["size", "path", "sent/s", "received", "lost", "p50", "p99", "p99.9", "max",
                         "ack p50/p99", "server CPU%", "broker CPU% (busiest)", "client CPU%",
                         "p99 vs NOTIFY", "target"], rows, "ll" + "r" * 13))
        self.emit("  streamlog p99 / NOTIFY p99: " + "; ".join(verdicts))
        self.emit("  streamlog: acks=all, linger.ms=0 producer; consumer on its own connection from the end "
                  "of the partition, fetch.wait.max.ms=100, fetch.error.backoff.ms=10; 'ack' = produce to "
                  "delivery report.")
        self.emit(f"  NOTIFY: autocommit transactions INSERT INTO notify_events (v) VALUES (...)[, ...]; "
                  f"NOTIFY kb_notify, '<seq> <t>'[; ...], one row and one notification per record, "
                  f"one sending connection taking every record waiting (up to {NOTIFY_BATCH}) per "
                  "transaction; LISTEN in another process.")
        self.emit(f"  One transaction per record does not reach this rate: with {NOTIFY_CONNS} connections "
                  f"it committed {fmt_int(sat['send_rate'])} records/s (100 B) - committing a transaction "
                  "that notified holds a database-wide lock until its commit record is flushed, so such "
                  "commits, and their WAL flushes, go one at a time.")
        self.emit()

    # -- driver ------------------------------------------------------------

    def run(self):
        t0 = time.time()
        self.setup()
        self.facts()
        self.bench_produce()
        self.bench_produce_many()
        if not self.args.produce_only:
            self.bench_consume()
            self.bench_latency()
        self.finish(t0, f"targets (reported, not asserted): produce >= "
                    f"{TARGET_PRODUCE[100]}x (100 B) and {TARGET_PRODUCE[1024]}x (1 KiB) the mock "
                    f"cluster's records/s, one producer; consume >= {fmt_int(TARGET_CONSUME[100])} "
                    f"(100 B) and {fmt_int(TARGET_CONSUME[1024])} (1 KiB) records/s; "
                    f"end-to-end p99 <= {TARGET_LATENCY:.0f}x the INSERT + NOTIFY round trip p99")

    def finish(self, t0, targets):
        """The report's end: the targets, the load, notes and client
        messages, the profile if one was taken; then publish it"""
        load = os.getloadavg()
        self.emit(targets)
        self.emit(f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
                  f"(nproc={os.cpu_count()}; the machine may be shared: compare figures of the same run)")
        for what, msgs in self.client_msgs:
            self.notes.append(f"{what}: client messages: " + " | ".join(msgs[:4])
                              + (f" (+{len(msgs) - 4} more)" if len(msgs) > 4 else ""))
        for n in self.notes:
            self.emit(f"note: {n}")
        if self.profiler and self.profiler.reports:
            self.emit()
            self.emit("Broker profile (perf record -F 999 on the broker workers, flat, by DSO and symbol)")
            for head, lines in self.profiler.reports:
                self.emit(f"  {head}")
                for ln in lines:
                    self.emit(f"    {ln.strip()}")
        self.emit(f"total benchmark time {time.time() - t0:.0f} s")
        self.publish("\n".join(self.out) + "\n")


def main():
    ap = driver_arguments(__doc__, "server data directory", "server log file (broker errors are reported)")
    ap.add_argument("--profile", action="store_true", help="perf-sample the broker workers")
    ap.add_argument("--brokers", required=True, help="host:port of the streamlog Kafka listener")
    ap.add_argument("--slbench", required=True, help="the built slbench program")
    ap.add_argument("--work-dir", required=True, help="scratch directory (statistics, profiles)")
    ap.add_argument("--produce-only", action="store_true",
                    help="sections 1 and 1b only (comparing server settings)")
    args = ap.parse_args()
    if args.profile and not shutil.which("perf"):
        sys.exit("kbench: --profile needs perf")
    KBench(args).run()


if __name__ == "__main__":
    main()
