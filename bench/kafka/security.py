#!/usr/bin/python3
"""streamlog Kafka listeners benchmark: the same librdkafka clients (slbench)
through each security protocol of one server, side by side in one run.

Started by bench/kafka/security_run.sh, which provides the server (PG*
environment variables) with one listener per protocol (--listener
NAME=host:port, NAME being the protocol), the CA of its certificate
(--ssl-ca) and a built slbench.  For 100-byte and 1 KiB values:

  1. produce throughput (acks=all, librdkafka default batching) and consume
     throughput from the start, per listener, interleaved so that a change
     of the machine's load falls on all of them alike; PLAINTEXT is the
     reference
  2. connection set-up: TCP connect, TLS handshake, SASL login where the
     listener has it, and the ApiVersions round trip (kafka-python's
     BrokerConnection, N connections one after the other)

A SASL listener needs --sasl-mechanism, --sasl-user and --sasl-password;
the role is created (LOGIN SUPERUSER PASSWORD, as privileged as the
bootstrap superuser the loopback PLAINTEXT and SSL clients act as) if it
does not exist.
"""

import os
import statistics
import sys
import time

from psycopg import sql

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (Driver, driver_arguments, log, fmt_int, fmt_mb,  # noqa: E402
                      fmt_ratio, verdict, table)
from kbench import CPU_LEGEND, CpuMeter, KBench, Profiler, size_label  # noqa: E402

TARGET = 0.8            # TLS listener records/s / PLAINTEXT records/s at 100 B
PARTITIONS = 4
CONNECT_SAMPLES = 50


def us_per_record(res, _rate):
    """Broker CPU microseconds per record, over the whole run"""
    records = res.get("records") or res.get("consumed") or 0
    if not records:
        return "-"
    return f"{res['cpu']['broker_pct'] / 100 * res['seconds'] / records * 1e6:.2f}"


class SecurityBench(KBench):
    def __init__(self, args):
        Driver.__init__(self, args)
        self.sizes = (100, 1024)
        self.records = {100: 500_000, 1024: 100_000} if self.quick else \
            {100: 3_000_000, 1024: 600_000}
        self.reps = 1 if self.quick else 3
        self.client_msgs = []
        self.results = {}
        self.profiler = None
        self.listeners = []
        for spec in args.listener:
            name, _, address = spec.partition("=")
            self.listeners.append((name.upper(), address))
        if self.listeners[0][0] != "PLAINTEXT":
            sys.exit("security: the first --listener must be PLAINTEXT (the reference)")

    def client_settings(self, protocol):
        """slbench --set options for a listener of protocol"""
        sets = {}
        if protocol != "PLAINTEXT":
            sets["security.protocol"] = protocol.lower()
        if protocol in ("SSL", "SASL_SSL"):
            sets["ssl.ca.location"] = self.args.ssl_ca
        if protocol.startswith("SASL_"):
            sets.update({"sasl.mechanisms": self.args.sasl_mechanism,
                         "sasl.username": self.args.sasl_user,
                         "sasl.password": self.args.sasl_password})
        out = []
        for k, v in sets.items():
            out += ["--set", f"{k}={v}"]
        return out

    def topic(self, protocol, size):
        return f"sec_{protocol.lower()}_{size}"

    def setup(self):
        log("setting up the extension and topics")
        self.q("CREATE EXTENSION IF NOT EXISTS streamlog")
        for protocol, _ in self.listeners:
            for size in self.sizes:
                self.q("SELECT streamlog.create_topic(%s, %s)", (self.topic(protocol, size), PARTITIONS))
        if any(p.startswith("SASL_") for p, _ in self.listeners):
            if not (self.args.sasl_mechanism and self.args.sasl_user and self.args.sasl_password):
                sys.exit("security: a SASL listener needs --sasl-mechanism, --sasl-user, --sasl-password")
            if not self.q("SELECT 1 FROM pg_roles WHERE rolname = %s", (self.args.sasl_user,)):
                # a superuser, as the PLAINTEXT and SSL clients on loopback are:
                # the comparison is of the transport and login, not of privileges
                self.q(sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
                    sql.Identifier(self.args.sasl_user), sql.Literal(self.args.sasl_password)))
        self.brokers = self.broker_pids()
        with open(os.path.join(self.args.data_dir, "postmaster.pid")) as f:
            postmaster = int(f.readline())
        self.cpu = CpuMeter(postmaster, self.brokers)
        self.profiler = Profiler(self.args.work_dir, self.brokers) if self.args.profile else None
        for protocol, address in self.listeners:
            res, _ = self.run_client(f"{protocol} check", self.slbench(
                "produce", "--brokers", address, "--topic", self.topic(protocol, 100),
                "--records", 1, "--timeout", 30, *self.client_settings(protocol)))
            if not res["ok"]:
                raise RuntimeError(f"the {protocol} listener does not accept a produce request")

    def facts(self):
        settings = self.pg_settings("synchronous_commit", "fsync", "streamlog.broker_workers",
                                    "streamlog.ssl_min_protocol_version", "ssl_ciphers")
        facts = self.emit_head("streamlog Kafka listeners benchmark: PLAINTEXT next to TLS (and SASL)")
        self.emit(f"  extension   git {facts['rev']}{', uncommitted changes' if facts['dirty'] else ''}, "
                  f"{settings['streamlog.broker_workers']} broker workers, "
                  f"synchronous_commit={settings['synchronous_commit']} fsync={settings['fsync']}")
        self.emit("  listeners   " + ", ".join(f"{p} {a}" for p, a in self.listeners))
        self.emit(f"  TLS         min {settings['streamlog.ssl_min_protocol_version']}, ciphers "
                  f"{settings['ssl_ciphers']} (PostgreSQL's ssl_ciphers), OpenSSL as linked by the server")
        self.emit(f"  sizes       {fmt_int(self.records[100])} x 100 B and {fmt_int(self.records[1024])} x 1 KiB "
                  f"per listener, {PARTITIONS} partitions, median of {self.reps}; MB = 10^6 bytes of value")
        self.emit(CPU_LEGEND)
        self.emit()

    def run_pair(self, protocol, address, size, rep):
        n = self.records[size]
        topic = self.topic(protocol, size)
        sets = self.client_settings(protocol)
        self.settle()
        log(f"{protocol}: produce {fmt_int(n)} x {size_label(size)} [{rep + 1}/{self.reps}]")
        prod, prod_cpu = self.run_client(
            f"{protocol} produce {size_label(size)}",
            self.slbench("produce", "--brokers", address, "--topic", topic, "--records", n,
                         "--size", size, "--acks", "all", "--compression", "none", *sets),
            profile=f"{protocol} produce, {size_label(size)} values" if rep == 0 else None)
        self.settle()
        log(f"{protocol}: consume {fmt_int(n)} x {size_label(size)} [{rep + 1}/{self.reps}]")
        # the first n records of the topic: the same work in every round
        cons, cons_cpu = self.run_client(
            f"{protocol} consume {size_label(size)}",
            self.slbench("consume", "--brokers", address, "--topic", topic,
                         "--partitions", PARTITIONS, "--records", n, *sets),
            profile=f"{protocol} consume, {size_label(size)} values" if rep == 0 else None)
        prod["cpu"], cons["cpu"] = prod_cpu, cons_cpu
        cons["per_s"] = cons["steady_records_per_s"] or cons["records_per_s"]
        return prod, cons

    def bench_throughput(self):
        rows = []
        verdicts = []
        for size in self.sizes:
            runs = {p: ([], []) for p, _ in self.listeners}
            for rep in range(self.reps):
                for protocol, address in self.listeners:
                    prod, cons = self.run_pair(protocol, address, size, rep)
                    runs[protocol][0].append(prod)
                    runs[protocol][1].append(cons)
            ref = None
            for protocol, _ in self.listeners:
                prod = self.median_run(runs[protocol][0], "records_per_s")
                cons = self.median_run(runs[protocol][1], "per_s")
                if ref is None:
                    ref = (prod, cons)
                pr = prod["records_per_s"] / ref[0]["records_per_s"]
                cr = cons["per_s"] / ref[1]["per_s"]
                target = ""
                if protocol != "PLAINTEXT" and size == 100:
                    ok = pr >= TARGET and cr >= TARGET
                    target = f">= {TARGET:.1f}x {verdict(ok)}"
                    verdicts.append(f"{protocol} produce {fmt_ratio(pr, TARGET)}, consume "
                                    f"{fmt_ratio(cr, TARGET)} ({verdict(ok)})")
                rows.append([size_label(size), protocol,
                             fmt_int(prod["records_per_s"]), fmt_mb(prod["mb_per_s"]), f"{pr:.2f}x",
                             CpuMeter.fmt_broker(prod["cpu"]), us_per_record(prod, prod["records_per_s"]),
                             f"{prod['cpu']['client_pct']:.0f}",
                             fmt_int(cons["per_s"]), f"{cr:.2f}x", CpuMeter.fmt_broker(cons["cpu"]),
                             us_per_record(cons, cons["records_per_s"]),
                             f"{cons['cpu']['client_pct']:.0f}", target])
        self.emit("1. Throughput per listener: one librdkafka producer (acks=all, linger.ms=5, "
                  "no compression), then one consumer reading the topic from the start")
        self.emit(table(["size", "listener", "produce rec/s", "MB/s", "vs PLAINTEXT", "broker CPU%",
                         "broker us/rec", "client CPU%", "consume rec/s", "vs PLAINTEXT", "broker CPU%",
                         "broker us/rec", "client CPU%", "target (100 B)"], rows, "ll" + "r" * 12))
        self.emit("  (consume rec/s: from the first records handed over to the last; broker us/rec: the "
                  "broker workers' CPU time per record over the whole run, what TLS costs the server "
                  "whatever share of a busy machine it got)")
        if verdicts:
            self.emit("  vs PLAINTEXT at 100 B: " + "; ".join(verdicts))
        self.emit()

    def bench_connect(self):
        from kafka.conn import BrokerConnection
        import socket

        rows = []
        for protocol, address in self.listeners:
            host, port = address.rsplit(":", 1)
            conf = {"security_protocol": protocol, "api_version": (2, 5, 0),
                    "request_timeout_ms": 30000}
            if protocol in ("SSL", "SASL_SSL"):
                conf.update(ssl_cafile=self.args.ssl_ca, ssl_check_hostname=False)
            if protocol.startswith("SASL_"):
                conf.update(sasl_mechanism=self.args.sasl_mechanism,
                            sasl_plain_username=self.args.sasl_user,
                            sasl_plain_password=self.args.sasl_password)
            times = []
            for _ in range(CONNECT_SAMPLES):
                c = BrokerConnection(host, int(port), socket.AF_INET, **conf)
                t0 = time.perf_counter()
                ok = c.connect_blocking(timeout=30)
                t1 = time.perf_counter()
                c.close()
                if not ok:
                    self.notes.append(f"{protocol}: a connection did not get through")
                    break
                times.append((t1 - t0) * 1000)
            if times:
                times.sort()
                rows.append([protocol, len(times), f"{statistics.median(times):.2f}",
                             f"{times[int(len(times) * 0.9) - 1]:.2f}", f"{times[-1]:.2f}"])
        self.emit(f"2. Connection set-up: TCP, TLS handshake, SASL login, ready for requests "
                  f"(kafka-python BrokerConnection.connect_blocking, {CONNECT_SAMPLES} one after the other)")
        self.emit(table(["listener", "connections", "median ms", "p90 ms", "max ms"], rows))
        self.emit()

    def run(self):
        t0 = time.time()
        self.setup()
        self.facts()
        self.bench_throughput()
        self.bench_connect()
        self.finish(t0, f"target (reported, not asserted): each TLS listener >= {TARGET}x "
                    f"PLAINTEXT's records/s at 100 B, produce and consume")


def main():
    ap = driver_arguments(__doc__, "server data directory", "server log file (broker errors are reported)")
    ap.add_argument("--profile", action="store_true", help="perf-sample the broker workers")
    ap.add_argument("--listener", action="append", required=True,
                    help="PROTOCOL=host:port, PLAINTEXT first; repeat for each listener")
    ap.add_argument("--ssl-ca", help="CA certificate of the server's certificate")
    ap.add_argument("--sasl-mechanism", help="SASL mechanism (SCRAM-SHA-256, SCRAM-SHA-512, PLAIN)")
    ap.add_argument("--sasl-user")
    ap.add_argument("--sasl-password")
    ap.add_argument("--slbench", required=True, help="the built slbench program")
    ap.add_argument("--work-dir", required=True, help="scratch directory")
    SecurityBench(ap.parse_args()).run()


if __name__ == "__main__":
    main()
