#!/usr/bin/python3
"""What streamlog's shared-memory counters cost (issue 15): the same loads
with streamlog.track_metrics on and off, many short runs interleaved in one
invocation, measured as the CPU time the serving processes spent per record.

Started by bench/metrics/run.sh, which provides the server through PGHOST,
PGPORT, PGUSER and PGDATABASE, its Kafka listener (--brokers) and a built
slbench (--slbench).

Each round runs three arms: counters on ("on"), off ("off") and on again
("on'"), in an order that turns from round to round (every arm takes every
place), so that drift of the machine falls on all alike.  "on' vs on" is an
A/A comparison: what the method shows where there is nothing to show, the
noise floor to read "on vs off" against.  Each arm, into topics of its own:

  Kafka produce, large: the same Produce v3 request, 4 partitions x a batch
      of 1,000 records of 100 B, acks=all, one at a time (rawload.py)
  Kafka produce, small: the same, batches of 10 records (what the
      per-request counting costs most per record)
  Kafka fetch, large: Fetch v4 of what the large produce wrote, 1 MiB per
      partition and request
  Kafka fetch, small: of what the small produce wrote, 2 KiB per partition
      and request (about one batch of 10)
  Kafka metadata: the same Metadata v1 request for the large topic (an
      API whose answers are read back for their error codes); per request
  SQL produce: N records in one transaction
  SQL read: of what SQL produce wrote, one read() per 10,000 records
  (--librdkafka adds slbench produce and consume, real clients, whose
  batching, and so CPU per record, moves with the load of the machine)

Measured: the CPU time of the serving processes (the broker workers for
Kafka, the backend for SQL; /proc/PID/schedstat, to the nanosecond) per
record.  CPU time moves much less with what else runs on the machine than
the wall clock does, and fixed requests make the work per record the same
in every run.  The machine may be shared with other work: many short runs,
interleaved, compared pairwise within their round, and medians.

Reported for each load: the median CPU time per record of each arm, the
cost on vs off (median over the rounds of (on - off) / off), with its 95%
confidence interval (bootstrap of the rounds' pairs) and its interquartile
range, and the same for on' vs on.  Target: the cost at most 2%, shown when
the interval's upper end is at most 2%.

On a machine shared with other work the CPU time of a run moves with what
runs beside it (caches, the other hyperthread), run to run, by more than
2%.  So the counting is also measured from inside, where that noise falls
on both sides of a ratio: after the rounds, --profile-rounds more rounds
with the counters on run under perf (cpu-clock samples of the same
processes), and the share of the samples in the counting code (the
functions of COUNTING, below) is reported: what the counters cost as a
part of the serving processes' CPU time, with its sampling interval.  That
share counts everything those functions do, also what they do with the
counters off (taking the times a request is counted by, which the slow
request log needs too): an upper bound of the cost of counting.
"""

import collections
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (Driver, driver_arguments, log, parse_result,  # noqa: E402
                      fmt_int, table)
import rawload  # noqa: E402

PARTITIONS = 4
SIZE = 100
TARGET_OVERHEAD = 2.0       # percent
SQL_READ_CHUNK = 10_000
LARGE_BATCH = 1000
SMALL_BATCH = 10
LARGE_FETCH_BYTES = 1024 * 1024
SMALL_FETCH_BYTES = 2048


# The counting code: the functions of src/metrics/, src/server/request_metrics.c
# and src/sqlapi/sql_read_metrics.c (by name: the static ones inline into these)
COUNTING = ("SlMetrics", "SlHistogram", "SlRequestMetrics", "SlRecordCountOfBatches",
            "SlSqlReadCount", "SlPartitionMetricsKey", "SlConnActivity", "door_counters",
            "histogram_add", "partition_hash", "slot_state_settled", "api_cell_of",
            "find_slot", "count_answer_errors", "note_error_code", "SlResponseErrorCodes",
            "CountErrors")


def is_counting(sym):
    """A function of the counting code; on one node, response decoders run
    only to read answers back for their error codes (request_metrics.c)"""
    return sym.startswith(COUNTING) or (sym.startswith("Sl") and sym.endswith("ResponseDecode")) \
        or (sym.startswith("Decode") and "Response" in sym)
PERF_HZ = 10000
MIN_ROUNDS_SHOWN = 5        # rounds for the CPU time comparison to show anything
# every arm in every place once in three rounds
ORDERS = (("on", "off", "on'"), ("off", "on'", "on"), ("on'", "on", "off"))


def median(values):
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def quantile(values, q):
    """Linear interpolation between the order statistics"""
    values = sorted(values)
    pos = (len(values) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


def bootstrap_median_ci(values, level=0.95, draws=4000):
    """The interval of the median of values (rounds resampled with
    replacement; a fixed seed, so that one run's figures are reproducible
    from its numbers)"""
    rng = random.Random(15)
    n = len(values)
    meds = sorted(median([values[rng.randrange(n)] for _ in range(n)]) for _ in range(draws))
    return quantile(meds, (1 - level) / 2), quantile(meds, 1 - (1 - level) / 2)


def wilson_interval(k, n, z=1.96):
    """The 95% interval, in percent, of a share of k samples in n (Wilson's
    score interval: sound also for k = 0 or few)"""
    if n == 0:
        return 0.0, 100.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return max(centre - half, 0) * 100, min(centre + half, 1) * 100


def api_versions_frame():
    """ApiVersions v0 with client id "mbench": a request every broker answers"""
    body = struct.pack(">hhi", 18, 0, 1) + struct.pack(">h", 6) + b"mbench"
    return struct.pack(">i", len(body)) + body


def cpu_seconds(pids):
    """CPU seconds the processes pids ran, to the nanosecond (the first
    field of /proc/PID/schedstat; /proc/PID/stat counts 10 ms ticks, too
    coarse for short runs)"""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/schedstat") as f:
            total += int(f.read().split()[0])
    return total / 1e9


class MetricsBench(Driver):
    def __init__(self, args):
        super().__init__(args)
        self.pause = 0.2
        scale = 0.25 if self.quick else 1.0
        # about a quarter of a second of CPU time each on the machine of
        # bench/README.md: long enough for the scheduler's accounting, short
        # enough for many rounds
        self.large_requests = int(200 * scale)     # x 4 x 1,000 records
        self.small_requests = int(1500 * scale)    # x 4 x 10 records
        self.sql_records = int(400_000 * scale)
        self.kafka_records = int(300_000 * scale)  # --librdkafka
        self.rounds = args.rounds or (3 if self.quick else 12)
        self.loads = ["Kafka produce, large", "Kafka produce, small",
                      "Kafka fetch, large", "Kafka fetch, small", "Kafka metadata",
                      "SQL produce", "SQL read"]
        self.metadata_requests = int(2000 * scale)
        if args.librdkafka:
            self.loads += ["librdkafka produce", "librdkafka consume"]
        self.runs = {}          # (load, arm) -> [(records/s, CPU us per record)], by round
        self.requests = {}      # load -> [Kafka requests of each run]
        self.topic_seq = 0
        self.mode = None
        self.profile = None     # while profiling: load -> [counting samples, all samples]
        self.profile_syms = {}  # load -> Counter of the counting samples' functions
        self.perf = shutil.which("perf")

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

    def counted_api_versions(self):
        return self.q1("SELECT coalesce(sum(requests), 0) FROM streamlog.stat_api "
                       "WHERE api = 'ApiVersions'")

    def set_mode(self, on):
        """track_metrics on or off everywhere: reload, then wait until the
        broker workers count (or do not count) a request, as the server says"""
        if self.mode == on:
            return
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
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the broker workers did not take track_metrics={on}")
            time.sleep(0.2)
        # this backend's own setting (SQL loads): reloaded at its next query
        self.q("SELECT 1")
        if self.q1("SHOW streamlog.track_metrics") != ("on" if on else "off"):
            raise RuntimeError(f"this backend did not take track_metrics={on}")
        self.mode = on

    def new_topic(self, prefix, partitions):
        self.topic_seq += 1
        name = f"{prefix}_{self.topic_seq}"
        self.q("SELECT streamlog.create_topic(%s, %s)", (name, partitions))
        return name

    def record(self, load, arm, records, seconds, cpu_s):
        self.runs.setdefault((load, arm), []).append((records / seconds, cpu_s / records * 1e6))

    def measured(self, load, arm, pids, records, fn):
        """Run fn() and record its rate and the CPU time of pids per record
        (or, in the profiled rounds, the samples of pids it took)"""
        if self.profile is not None:
            self.profiled(load, pids, fn)
            return
        cpu0 = cpu_seconds(pids)
        t0 = time.perf_counter()
        requests = fn()
        seconds = time.perf_counter() - t0
        self.record(load, arm, records, seconds, cpu_seconds(pids) - cpu0)
        if requests:
            self.requests.setdefault(load, []).append(requests)
        self.note_log(load)

    @staticmethod
    def perf_enable(perf, ctl, ack):
        """Turn perf's events on through its control fifo and wait for its
        ack; raise if perf exits first (not allowed to attach, say)"""
        deadline = time.monotonic() + 60
        while True:
            # non-blocking: the fifo has no reader until perf opened it
            try:
                fd = os.open(ctl, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError:
                if perf.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("perf record did not start: "
                                       + perf.stderr.read().decode(errors="replace"))
                time.sleep(0.02)
        try:
            os.write(fd, b"enable\n")
        finally:
            os.close(fd)
        # perf holds the ack fifo open for writing from the start
        with open(ack) as a:
            if a.readline().strip() != "ack":
                raise RuntimeError("perf record did not turn its events on")

    def profiled(self, load, pids, fn):
        """Run fn() under perf record of pids; add its samples in the
        counting code, and all its samples, to self.profile[load]"""
        data = os.path.join(self.args.work_dir, "perf.data")
        ctl = os.path.join(self.args.work_dir, "perf.ctl")
        ack = os.path.join(self.args.work_dir, "perf.ack")
        for fifo in (ctl, ack):
            if not os.path.exists(fifo):
                os.mkfifo(fifo)
        # started with its events off, turned on through its control fifo
        # once attached: what fn() does is sampled from its start
        perf = subprocess.Popen([self.perf, "record", "-q", "-e", "cpu-clock", "-F", str(PERF_HZ),
                                 "-D", "-1", "--control", f"fifo:{ctl},{ack}",
                                 "-p", ",".join(map(str, pids)), "-o", data],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            self.perf_enable(perf, ctl, ack)
            fn()
        finally:
            if perf.poll() is None:
                perf.send_signal(signal.SIGINT)
            perf.wait()
        if perf.returncode not in (0, -signal.SIGINT):
            raise RuntimeError(f"perf record failed: {perf.stderr.read().decode()}")
        # one line a sample: its address and symbol ("[unknown]" if none)
        lines = subprocess.run([self.perf, "script", "-i", data, "-F", "ip,sym"],
                               capture_output=True, text=True).stdout.splitlines()
        syms = [(ln.split(None, 1) + [""])[1].strip() for ln in lines if ln.strip()]
        counting = [sym for sym in syms if is_counting(sym)]
        self.profile_syms.setdefault(load, collections.Counter()).update(counting)
        counting = len(counting)
        seen = self.profile.setdefault(load, [0, 0])
        seen[0] += counting
        seen[1] += len(syms)
        os.unlink(data)

    def kafka_loads(self, arm, brokers):
        b = self.args.brokers
        large = self.new_topic("mb_large", PARTITIONS)
        small = self.new_topic("mb_small", PARTITIONS)
        n_large = self.large_requests * LARGE_BATCH
        n_small = self.small_requests * SMALL_BATCH
        self.measured("Kafka produce, large", arm, brokers, n_large * PARTITIONS,
                      lambda: rawload.produce(b, large, PARTITIONS, LARGE_BATCH, SIZE,
                                              self.large_requests))
        self.measured("Kafka produce, small", arm, brokers, n_small * PARTITIONS,
                      lambda: rawload.produce(b, small, PARTITIONS, SMALL_BATCH, SIZE,
                                              self.small_requests))
        self.measured("Kafka fetch, large", arm, brokers, n_large * PARTITIONS,
                      lambda: rawload.fetch(b, large, PARTITIONS, n_large, LARGE_FETCH_BYTES))
        self.measured("Kafka fetch, small", arm, brokers, n_small * PARTITIONS,
                      lambda: rawload.fetch(b, small, PARTITIONS, n_small, SMALL_FETCH_BYTES))
        # per request, not record: the answer of one topic of 4 partitions
        self.measured("Kafka metadata", arm, brokers, self.metadata_requests,
                      lambda: rawload.metadata(b, large, self.metadata_requests))

    def sql_loads(self, arm):
        m = self.sql_records
        topic = self.new_topic("mb_sql", 1)
        backend = [self.q1("SELECT pg_backend_pid()")]

        def produce():
            self.q("SELECT count(streamlog.produce(%s, NULL, repeat('x', %s), partition => 0)) "
                   "FROM generate_series(1, %s)", (topic, SIZE, m))
        self.measured("SQL produce", arm, backend, m, produce)

        def read():
            got = 0
            while got < m:
                got += self.q1("SELECT count(*) FROM streamlog.read(%s, 0, %s, %s, "
                               "'read_uncommitted')", (topic, got, SQL_READ_CHUNK))
        self.measured("SQL read", arm, backend, m, read)

    def librdkafka_loads(self, arm, brokers):
        n = self.kafka_records
        topic = self.new_topic("mb_kafka", PARTITIONS)

        def produce():
            self.run_client("librdkafka produce", self.slbench(
                "produce", "--brokers", self.args.brokers, "--topic", topic, "--records", n,
                "--size", SIZE, "--acks", "all", "--compression", "none"))
        self.measured("librdkafka produce", arm, brokers, n, produce)

        def consume():
            self.run_client("librdkafka consume", self.slbench(
                "consume", "--brokers", self.args.brokers, "--topic", topic,
                "--partitions", PARTITIONS, "--records", n))
        self.measured("librdkafka consume", arm, brokers, n, consume)

    def one_arm(self, arm):
        self.set_mode(arm != "off")
        brokers = self.broker_pids()
        # what the last arm wrote is vacuumed and checkpointed before, not
        # during, this one's measurements
        self.settle()
        self.kafka_loads(arm, brokers)
        self.sql_loads(arm)
        if self.args.librdkafka:
            self.librdkafka_loads(arm, brokers)

    def compare(self, load, a, b):
        """(on - off) / off of each round's pair, in percent"""
        return [(x[1] - y[1]) / y[1] * 100
                for x, y in zip(self.runs[(load, a)], self.runs[(load, b)])]

    def run(self):
        self.q("CREATE EXTENSION IF NOT EXISTS streamlog")
        facts = self.emit_head("streamlog counters benchmark: track_metrics on vs off, "
                               "CPU time per record")
        self.emit(f"  loads       Kafka: {PARTITIONS} partitions x batches of {LARGE_BATCH} "
                  f"(large) or {SMALL_BATCH} (small) records of {SIZE} B per request, "
                  f"{fmt_int(self.large_requests)} large and {fmt_int(self.small_requests)} "
                  f"small Produce requests (acks=all), then Fetch of them; SQL "
                  f"{fmt_int(self.sql_records)} records")
        self.emit(f"  rounds      {self.rounds}, each with the arms on, off and on' in turning "
                  f"order")
        loads_seen = []
        t_start = time.monotonic()
        for r in range(self.rounds):
            for arm in ORDERS[r % len(ORDERS)]:
                log(f"round {r + 1}/{self.rounds}, counters {arm}")
                self.one_arm(arm)
            loads_seen.append(os.getloadavg()[0])
        if self.args.profile_rounds and self.perf:
            self.profile = {}
            try:
                for r in range(self.args.profile_rounds):
                    log(f"profiled round {r + 1}/{self.args.profile_rounds}, counters on")
                    self.one_arm("on")
            except RuntimeError as e:
                if "perf record" not in str(e):
                    raise
                self.notes.append(f"no profile: {e}")
                self.profile = None
        self.set_mode(True)
        self.emit(f"  load        1-minute load average {facts['load'][0]:.2f} at the start, "
                  f"{min(loads_seen):.2f} to {max(loads_seen):.2f} after the rounds "
                  f"({os.cpu_count()} CPUs; the machine may be shared with other work); "
                  f"{(time.monotonic() - t_start) / 60:.0f} min")
        self.emit()

        rows = []
        shown = []
        for load in self.loads:
            cost = self.compare(load, "on", "off")
            aa = self.compare(load, "on'", "on")
            c_lo, c_hi = bootstrap_median_ci(cost)
            a_lo, a_hi = bootstrap_median_ci(aa)
            rows.append([load,
                         f"{median([r[1] for r in self.runs[(load, 'off')]]):.3f}",
                         f"{median([r[1] for r in self.runs[(load, 'on')]]):.3f}",
                         f"{median(cost):+.1f}%", f"{c_lo:+.1f} .. {c_hi:+.1f}",
                         f"{quantile(cost, 0.25):+.1f} .. {quantile(cost, 0.75):+.1f}",
                         f"{median(aa):+.1f}%", f"{a_lo:+.1f} .. {a_hi:+.1f}",
                         fmt_int(median([r[0] for r in self.runs[(load, 'off')]])),
                         fmt_int(median([r[0] for r in self.runs[(load, 'on')]]))])
            # a bootstrap of a few rounds says nothing
            shown.append((load, c_hi <= TARGET_OVERHEAD and len(cost) >= MIN_ROUNDS_SHOWN))
        self.emit(table(["load", "CPU us/rec off", "on", "on vs off", "95% CI", "IQR",
                         "on' vs on (A/A)", "95% CI", "rec/s off", "rec/s on"], rows))
        self.emit()
        self.emit("  CPU us/rec: median over the rounds of the CPU time of the broker workers")
        self.emit("  (Kafka) or the backend (SQL) per record.  on vs off: median over the rounds")
        self.emit("  of (on - off) / off, each round's two runs paired; 95% CI: bootstrap interval")
        self.emit("  of that median; IQR: the middle half of the rounds' values.  on' vs on: the")
        self.emit("  same for two runs with the counters on, the noise floor.  rec/s: wall clock,")
        self.emit("  one request at a time; not what is compared.  Kafka metadata: per request.")
        for load in self.loads:
            if load in self.requests:
                reqs = median(self.requests[load])
                self.emit(f"  {load}: {fmt_int(reqs)} requests per run")
        if self.profile:
            self.emit()
            rows = []
            for load in self.loads:
                counting, total = self.profile.get(load, (0, 0))
                share = counting / total * 100 if total else 0.0
                lo, hi = wilson_interval(counting, total)
                top = self.profile_syms.get(load, collections.Counter()).most_common(3)
                rows.append([load, fmt_int(total), fmt_int(counting), f"{share:.2f}%",
                             f"{lo:.2f} .. {hi:.2f}",
                             " ".join(f"{sym} {k / total * 100:.2f}" for sym, k in top)])
            self.emit(table(["load (counters on, under perf)", "samples", "in counting",
                             "share", "95% CI", "most in"], rows, align="lrrrrl"))
            self.emit()
            self.emit(f"  {self.args.profile_rounds} rounds under perf record -e cpu-clock "
                      f"-F {PERF_HZ} of the same processes; share: of their samples, those in")
            self.emit("  the counting code (functions named " + ", ".join(COUNTING) + "*, and the")
            self.emit("  response decoders, which on one node only read answers back for their errors)")
            profile_ok = [load for load in self.loads
                          if wilson_interval(*self.profile.get(load, (0, 0)))[1] <= TARGET_OVERHEAD]
            self.emit(f"  counting share <= {TARGET_OVERHEAD:.0f}% shown (upper end of the 95% CI): "
                      + (", ".join(profile_ok) if profile_ok else "none"))
        elif self.args.profile_rounds:
            self.emit("  note: no perf: the counting code's share of the CPU time was not measured")
        met = [load for load, ok in shown if ok]
        missed = [load for load, ok in shown if not ok]
        self.emit(f"  CPU per record: cost <= {TARGET_OVERHEAD:.0f}% shown (upper end of the 95% CI): "
                  + (", ".join(met) if met else "none"))
        if missed:
            self.emit(f"  not shown: {', '.join(missed)}"
                      + (f" (fewer than {MIN_ROUNDS_SHOWN} rounds)"
                         if self.rounds < MIN_ROUNDS_SHOWN else ""))
        for n in self.notes:
            self.emit("  note: " + n)
        self.publish("\n".join(self.out) + "\n")


def main():
    ap = driver_arguments(__doc__, "the server's data directory", "the server's log file")
    ap.add_argument("--brokers", required=True, help="the Kafka listener, host:port")
    ap.add_argument("--slbench", required=True, help="the built slbench program")
    ap.add_argument("--work-dir", required=True, help="a scratch directory")
    ap.add_argument("--rounds", type=int, default=0,
                    help="rounds of the three arms (default 12, 3 with --quick)")
    ap.add_argument("--profile-rounds", type=int, default=3,
                    help="rounds with the counters on under perf record (0: none)")
    ap.add_argument("--librdkafka", action="store_true",
                    help="also librdkafka produce and consume (slbench)")
    args = ap.parse_args()
    MetricsBench(args).run()


if __name__ == "__main__":
    main()
