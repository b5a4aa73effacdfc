"""The exactly-once check of Kafka transactions under crashes, shared by
test_txn_faults.py (bounded) and bench/transactions/eos_chaos.py (--minutes).

A consume-transform-produce loop (eos_loop.py, confluent-kafka) runs as a
process of its own against one node; a seeded schedule kills it with
SIGKILL or kills the server's postmaster with SIGKILL and restarts it, at
random moments, while more input arrives.  At the end the loop is let run
until the group's committed offsets reach the end of the input, and the
output is read read_committed (SQL read() and a Kafka consumer): every
input record must have produced exactly one output record.

    chaos = EosChaos(server, prefix, seed)
    chaos.setup()
    chaos.run(rounds=8)              # or run(deadline=time.monotonic() + 600)
    chaos.finish()                   # raises AssertionError naming the seed
"""

import collections
import os
import random
import signal
import subprocess
import sys
import time

from pgserver import wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
LOOP = os.path.join(HERE, "eos_loop.py")

INPUT_PARTITIONS = 3
OUTPUT_PARTITIONS = 2
PROGRESS_TIMEOUT = 120


class EosChaos:
    def __init__(self, server, prefix, seed, log_dir=None, batch=10):
        self.srv = server
        self.seed = seed
        self.rng = random.Random(seed)
        self.input = f"{prefix}_in"
        self.output = f"{prefix}_out"
        self.group = f"{prefix}_g"
        self.tid = f"{prefix}_tx"
        self.batch = batch
        self.log_dir = log_dir or server.datadir + "_eos"
        self.client = None
        self.instances = 0
        self.faults = collections.Counter()
        self.fed = 0

    def fail(self, message):
        raise AssertionError(f"[seed {self.seed}] {message}")

    # -- the pipeline ---------------------------------------------------------------

    def setup(self):
        os.makedirs(self.log_dir, exist_ok=True)
        self.srv.sql("SELECT streamlog.create_topic(%s, %s)", (self.input, INPUT_PARTITIONS))
        self.srv.sql("SELECT streamlog.create_topic(%s, %s)", (self.output, OUTPUT_PARTITIONS))
        self.feed()

    def feed(self):
        """More input: a random number of records in each input partition."""
        counts = [self.rng.randint(10, 60) for _ in range(INPUT_PARTITIONS)]
        with self.srv.connect() as conn:
            for p, n in enumerate(counts):
                conn.execute("SELECT count(streamlog.produce(%s, NULL, 'in'::text, "
                             "partition => %s)) FROM generate_series(1, %s)",
                             (self.input, p, n))
        self.fed += sum(counts)

    def input_end(self):
        rows = self.srv.sql("SELECT sum(high_watermark) FROM streamlog.partitions "
                            "WHERE topic = %s", (self.input,))
        return int(rows[0][0] or 0)

    def committed(self):
        rows = self.srv.sql(
            "SELECT coalesce(sum(o.committed_offset), 0) FROM streamlog.group_offset o "
            "JOIN streamlog.topic t USING (topic_id) WHERE o.group_id = %s AND t.name = %s",
            (self.group, self.input))
        return int(rows[0][0])

    # -- the client process -----------------------------------------------------------

    def client_alive(self):
        return self.client is not None and self.client.poll() is None

    def start_client(self):
        self.instances += 1
        out = open(os.path.join(self.log_dir, f"loop{self.instances}.log"), "w")
        self.client = subprocess.Popen(
            [sys.executable, LOOP, self.srv.kafka_bootstrap, self.input, self.output,
             self.group, self.tid, "--batch", str(self.batch)],
            stdout=out, stderr=subprocess.STDOUT)
        out.close()

    def ensure_client(self):
        if not self.client_alive():
            self.start_client()

    def kill_client(self):
        if self.client_alive():
            self.client.send_signal(signal.SIGKILL)
        if self.client is not None:
            self.client.wait(60)

    def wait_progress(self, past):
        """Until the group's committed offsets pass past, restarting the
        loop whenever it ends (it exits on any error)."""
        deadline = time.monotonic() + PROGRESS_TIMEOUT
        while self.committed() <= past:
            if time.monotonic() > deadline:
                self.fail(f"no progress past {past} committed offsets in "
                          f"{PROGRESS_TIMEOUT}s; loop logs in {self.log_dir}")
            self.ensure_client()
            time.sleep(0.1)

    # -- faults -------------------------------------------------------------------------

    def round(self, kind=None):
        """One fault, "client" or "server" (None: drawn, server 3 times in 10)."""
        if kind is None:
            kind = "server" if self.rng.random() < 0.3 else "client"
        self.feed()
        self.ensure_client()
        before = self.committed()
        # the moment of the fault: anywhere in the loop's work
        time.sleep(self.rng.uniform(0.2, 2.5))
        self.faults[kind] += 1
        if kind == "server":
            self.srv.kill9()
            # the loop may survive the restart (librdkafka reconnects) or not
            self.srv.start()
        else:
            self.kill_client()
        self.wait_progress(before)

    def run(self, rounds=None, deadline=None):
        """rounds faults, about a third of them of the server, in a seeded
        order; or faults drawn one by one until the deadline."""
        if rounds is not None:
            kinds = ["server"] * (rounds // 3) + ["client"] * (rounds - rounds // 3)
            self.rng.shuffle(kinds)
            for kind in kinds:
                self.round(kind)
            return rounds
        n = 0
        while time.monotonic() < deadline:
            self.round()
            n += 1
        return n

    # -- the check ------------------------------------------------------------------------

    def drain(self):
        """Let the loop consume everything, then stop it and fence its id."""
        end = self.input_end()
        deadline = time.monotonic() + PROGRESS_TIMEOUT
        while self.committed() < end:
            if time.monotonic() > deadline:
                self.fail(f"committed {self.committed()} of {end} input records in "
                          f"{PROGRESS_TIMEOUT}s; loop logs in {self.log_dir}")
            self.ensure_client()
            time.sleep(0.1)
        self.kill_client()
        # A last init aborts whatever the killed instance had open
        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": self.srv.kafka_bootstrap,
                      "transactional.id": self.tid})
        p.init_transactions(60)
        for part in range(OUTPUT_PARTITIONS):
            wait_until(lambda: self.srv.sql(
                "SELECT streamlog.last_stable_offset(%s, %s) = high_watermark "
                "FROM streamlog.partitions WHERE topic = %s AND partition = %s",
                (self.output, part, self.output, part))[0][0],
                timeout=60, what=f"no open transaction on {self.output}[{part}]")
        return end

    def output_sql(self):
        values = []
        for part in range(OUTPUT_PARTITIONS):
            rows = self.srv.sql("SELECT value FROM streamlog.read(%s, %s, 0, 10000000)",
                                (self.output, part))
            values += [bytes(v).decode() for (v,) in rows]
        return values

    def output_kafka(self, counts):
        import kafka_helpers as kh
        values = []
        for part in range(OUTPUT_PARTITIONS):
            got = kh.ck_consume(self.srv.kafka_bootstrap, self.output, part, counts[part],
                                timeout=120, conf={"isolation.level": "read_committed"})
            values += [v.decode() for (_o, _k, v, _h, _t) in got]
        return values

    def finish(self):
        end = self.drain()
        ends = {}
        for p in range(INPUT_PARTITIONS):
            ends[p] = self.srv.sql("SELECT high_watermark FROM streamlog.partitions "
                                   "WHERE topic = %s AND partition = %s", (self.input, p))[0][0]
        expected = {f"{p}:{o}" for p in range(INPUT_PARTITIONS) for o in range(ends[p])}
        assert len(expected) == end
        got = self.output_sql()
        counts = collections.Counter(got)
        missing = sorted(expected - set(counts))
        duplicated = sorted(v for v, c in counts.items() if c > 1)
        unexpected = sorted(set(counts) - expected)
        if missing or duplicated or unexpected:
            self.fail(f"output of {len(got)} records for {end} inputs: "
                      f"missing {missing[:20]} ({len(missing)}), "
                      f"duplicated {duplicated[:20]} ({len(duplicated)}), "
                      f"unexpected {unexpected[:20]}; faults {dict(self.faults)}")
        per_part = [0] * OUTPUT_PARTITIONS
        for v in got:
            per_part[int(v.split(":")[0]) % OUTPUT_PARTITIONS] += 1
        kafka = self.output_kafka(per_part)
        if sorted(kafka) != sorted(got):
            self.fail("a read_committed Kafka consumer reads other records than SQL read()")
        return {"inputs": end, "outputs": len(got), "instances": self.instances,
                "faults": dict(self.faults)}

    def cleanup(self):
        self.kill_client()
