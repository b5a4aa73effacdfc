#!/usr/bin/python3
"""What streamlog's shared-memory counters cost (issue 15): the same loads
with streamlog.track_metrics on and off, alternating (on, off, then off,
on, ...) so that drift of the machine falls on both alike, in one run.

Started by bench/metrics/run.sh, which provides the server through PGHOST,
PGPORT, PGUSER and PGDATABASE, its Kafka listener (--brokers) and a built
slbench (--slbench).  Each round, into a topic of its own:

  1. Kafka produce, 100-byte values, acks=all, 4 partitions (librdkafka)
  2. Kafka consume of what 1 wrote, from the start
  3. SQL produce: N records in one transaction
  4. SQL read of what 3 wrote, one read() per 10,000 records

Reported for each mode: the median records/s, and the median CPU time the
serving processes spent per record (the broker workers for Kafka, the
backend for SQL, from /proc/PID/schedstat): on a shared machine the CPU time per record
moves much less with the load than the wall-clock rate does.  The cost of
counting is (on - off) / off of each, from the medians of the runs paired
one on with one off in the same round; target at most 2%.  The load
average is given at the start and the end.
"""

import os
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchlib import (Driver, driver_arguments, log, parse_result,  # noqa: E402
                      fmt_int, verdict, table)

PARTITIONS = 4
SIZE = 100
TARGET_OVERHEAD = 2.0       # percent
SQL_READ_CHUNK = 10_000


def median(values):
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def api_versions_frame():
    """ApiVersions v0 with client id "mbench": a request every broker answers"""
    body = struct.pack(">hhi", 18, 0, 1) + struct.pack(">h", 6) + b"mbench"
    return struct.pack(">i", len(body)) + body


def cpu_seconds(pids):
    """CPU seconds the processes pids ran, to the nanosecond (the first
    field of /proc/PID/schedstat; /proc/PID/stat counts 10 ms ticks, too
    coarse for runs of a second)"""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/schedstat") as f:
            total += int(f.read().split()[0])
    return total / 1e9


class MetricsBench(Driver):
    def __init__(self, args):
        super().__init__(args)
        self.kafka_records = 300_000 if self.quick else 2_000_000
        self.sql_records = 100_000 if self.quick else 500_000
        self.rounds = 3 if self.quick else 6
        self.runs = {}          # (measure, mode) -> [(records/s, CPU us per record)]
        self.topic_seq = 0
        self.requests = {}      # api -> [requests of each run with counters on]

    def run_client(self, what, cmd):
        p = subprocess.run(cmd, capture_output=True, text=True)
        res = parse_result(p.stdout)
        self.note_log(what)
        if res is None or p.returncode != 0:
            raise RuntimeError(f"{what}: failed (exit {p.returncode})\n{p.stdout}\n{p.stderr}")
        return res

    def slbench(self, *args):
        return [self.args.slbench, *map(str, args)]

    def ask_broker(self):
        host, port = self.args.brokers.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(api_versions_frame())
            size = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
            s.recv(size, socket.MSG_WAITALL)

    def api_requests(self, api):
        return self.q1("SELECT coalesce(sum(requests), 0) FROM streamlog.stat_api "
                       "WHERE api = %s", (api,))

    def counted_api_versions(self):
        return self.q1("SELECT coalesce(sum(requests), 0) FROM streamlog.stat_api "
                       "WHERE api = 'ApiVersions'")

    def set_mode(self, on):
        """track_metrics on or off everywhere: reload, then wait until the
        broker workers count (or do not count) a request, as the server says"""
        self.q(f"ALTER SYSTEM SET streamlog.track_metrics = {'on' if on else 'off'}")
        self.q("SELECT pg_reload_conf()")
        deadline = time.monotonic() + 60
        while True:
            # every worker must have taken it: ask each, several times
            seen = []
            for _ in range(8):
                before = self.counted_api_versions()
                self.ask_broker()
                time.sleep(0.05)
                seen.append(self.counted_api_versions() > before)
            if all(seen) if on else not any(seen):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the broker workers did not take track_metrics={on}")
            time.sleep(0.2)

    def new_topic(self, prefix, partitions):
        self.topic_seq += 1
        name = f"{prefix}_{self.topic_seq}"
        self.q("SELECT streamlog.create_topic(%s, %s)", (name, partitions))
        return name

    def record(self, measure, mode, rate, cpu_s, n):
        self.runs.setdefault((measure, mode), []).append((rate, cpu_s / n * 1e6))

    def one_round(self, mode):
        on = mode == "on"
        # --same-both: an A/A run, counters on in both columns, to show the
        # noise of the method on this machine
        self.set_mode(on or self.args.same_both)
        brokers = self.broker_pids()
        n = self.kafka_records
        topic = self.new_topic("mb_kafka", PARTITIONS)
        self.settle()
        log(f"Kafka produce {fmt_int(n)} x {SIZE} B, counters {mode}")
        reqs0 = self.api_requests("Produce")
        cpu0 = cpu_seconds(brokers)
        res = self.run_client("produce", self.slbench(
            "produce", "--brokers", self.args.brokers, "--topic", topic, "--records", n,
            "--size", SIZE, "--acks", "all", "--compression", "none"))
        self.record("Kafka produce", mode, res["records_per_s"], cpu_seconds(brokers) - cpu0, n)
        if on:
            self.requests.setdefault("Produce", []).append(self.api_requests("Produce") - reqs0)
        self.settle()
        log(f"Kafka consume {fmt_int(n)}, counters {mode}")
        reqs0 = self.api_requests("Fetch")
        cpu0 = cpu_seconds(brokers)
        res = self.run_client("consume", self.slbench(
            "consume", "--brokers", self.args.brokers, "--topic", topic,
            "--partitions", PARTITIONS, "--records", n))
        self.record("Kafka consume", mode, res["steady_records_per_s"],
                    cpu_seconds(brokers) - cpu0, n)
        if on:
            self.requests.setdefault("Fetch", []).append(self.api_requests("Fetch") - reqs0)

        m = self.sql_records
        topic = self.new_topic("mb_sql", 1)
        backend = [self.q1("SELECT pg_backend_pid()")]
        self.settle()
        log(f"SQL produce {fmt_int(m)} x {SIZE} B in one transaction, counters {mode}")
        cpu0 = cpu_seconds(backend)
        t0 = time.perf_counter()
        self.q("SELECT count(streamlog.produce(%s, NULL, repeat('x', %s), partition => 0)) "
               "FROM generate_series(1, %s)", (topic, SIZE, m))
        self.record("SQL produce", mode, m / (time.perf_counter() - t0),
                    cpu_seconds(backend) - cpu0, m)
        self.settle()
        log(f"SQL read {fmt_int(m)}, counters {mode}")
        cpu0 = cpu_seconds(backend)
        t0 = time.perf_counter()
        got = 0
        while got < m:
            got += self.q1("SELECT count(*) FROM streamlog.read(%s, 0, %s, %s, 'read_uncommitted')",
                           (topic, got, SQL_READ_CHUNK))
        self.record("SQL read", mode, m / (time.perf_counter() - t0),
                    cpu_seconds(backend) - cpu0, m)

    def run(self):
        self.q("CREATE EXTENSION IF NOT EXISTS streamlog")
        facts = self.emit_head("streamlog counters benchmark: track_metrics on vs off"
                               + (" (--same-both: on in both columns, an A/A run)"
                                  if self.args.same_both else ""))
        self.emit(f"  sizes       Kafka {fmt_int(self.kafka_records)} records of {SIZE} B "
                  f"({PARTITIONS} partitions, acks=all), SQL {fmt_int(self.sql_records)} records; "
                  f"{self.rounds} rounds of each mode, alternating; medians")
        for r in range(self.rounds):
            order = ("on", "off") if r % 2 == 0 else ("off", "on")
            for mode in order:
                self.one_round(mode)
        self.set_mode(True)
        end_load = os.getloadavg()
        self.emit(f"  load        {facts['load'][0]:.2f} at start, {end_load[0]:.2f} at the end "
                  f"(1-minute load average; {os.cpu_count()} CPUs)")
        self.emit()
        rows = []
        verdicts = []
        for measure in ("Kafka produce", "Kafka consume", "SQL produce", "SQL read"):
            on = self.runs[(measure, "on")]
            off = self.runs[(measure, "off")]
            # each round ran one of each: compare them pairwise
            rate_cost = median([(b[0] - a[0]) / b[0] * 100 for a, b in zip(on, off)])
            cpu_cost = median([(a[1] - b[1]) / b[1] * 100 for a, b in zip(on, off)])
            rows.append([measure, fmt_int(median([r[0] for r in off])),
                         fmt_int(median([r[0] for r in on])), f"{rate_cost:+.1f}%",
                         f"{median([r[1] for r in off]):.2f}", f"{median([r[1] for r in on]):.2f}",
                         f"{cpu_cost:+.1f}%"])
            verdicts.append(f"{measure}: CPU per record {cpu_cost:+.1f}%, rate {rate_cost:+.1f}% "
                            f"(target: CPU per record <= {TARGET_OVERHEAD:.0f}%: "
                            f"{verdict(cpu_cost <= TARGET_OVERHEAD)})")
        self.emit(table(["", "records/s off", "on", "cost", "CPU us/record off", "on", "cost"],
                        rows))
        self.emit()
        self.emit("  cost = median over the rounds of (on - off) / off, one run of each per round")
        self.emit("  (for records/s: the rate lost); negative: on did better, i.e. noise.  CPU =")
        self.emit("  the time the broker workers (Kafka) or the backend (SQL) ran on a CPU.")
        for api, runs in sorted(self.requests.items()):
            self.emit(f"  {api} requests per run (counters on): median {fmt_int(median(runs))}, "
                      f"{fmt_int(self.kafka_records / median(runs))} records per request")
        for v in verdicts:
            self.emit("  " + v)
        for n in self.notes:
            self.emit("  note: " + n)
        self.publish("\n".join(self.out) + "\n")


def main():
    ap = driver_arguments(__doc__, "the server's data directory", "the server's log file")
    ap.add_argument("--brokers", required=True, help="the Kafka listener, host:port")
    ap.add_argument("--slbench", required=True, help="the built slbench program")
    ap.add_argument("--work-dir", required=True, help="a scratch directory")
    ap.add_argument("--same-both", action="store_true",
                    help="counters on in both columns (an A/A run: the method's noise)")
    args = ap.parse_args()
    MetricsBench(args).run()


if __name__ == "__main__":
    main()
