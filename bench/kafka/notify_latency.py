#!/usr/bin/python3
"""End-to-end latency of INSERT + NOTIFY -> LISTEN, the plain-PostgreSQL peer
of the Kafka produce -> fetch latency that `slbench latency` measures.

Records are handed out at a fixed rate (like `slbench latency`, which
paces a linger.ms=0 producer) to a pool of connections.  A connection takes
the next record, or with --batch B up to B records that are waiting, and
sends them as one simple-protocol query in autocommit, so one transaction
and one durable commit:

    INSERT INTO <table> (v) VALUES ('<size bytes>')[, ...];
    NOTIFY <channel>, '<seq> <t>'[; NOTIFY ...]

one row and one notification per record, where <t> is CLOCK_MONOTONIC in
ns at the moment the record was handed to the pool.  A LISTEN connection in
a separate process takes the time each notification arrives.  Latency =
arrival - t: the wait for a free connection, the INSERT, the commit's WAL
flush, and the delivery.

Committing a transaction that has notified takes a database-wide lock
held until the commit is durable, so NOTIFY transactions commit one at a
time, one WAL flush each: with --batch 1 the rate is capped at about one
transaction per WAL flush, whatever the number of connections.  --batch
groups records per transaction, as the Kafka broker groups the produce
requests it has read into one commit.  --drain-timeout bounds the time
spent sending what is still queued once the last record has been handed
out (records not sent by then count as lost); use it to measure the
saturated rate.

Connects with the PG* environment variables.  Prints one line:

    result mode=notify key=value ...
"""

import argparse
import asyncio
import multiprocessing
import sys
import time
from array import array

import psycopg


def listener(channel, ready, out, conninfo):
    """Child process: LISTEN, record (seq, latency ns) until 'stop'."""
    seqs = array("q")
    lats = array("q")
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f"LISTEN {channel}")
            ready.set()
            for n in conn.notifies():
                now = time.monotonic_ns()
                if n.payload == "stop":
                    break
                seq, t = n.payload.split(" ")
                seq = int(seq)
                if seq >= 0:
                    seqs.append(seq)
                    lats.append(now - int(t))
        out.send((seqs.tobytes(), lats.tobytes(), None))
    except Exception as e:  # reported by the parent
        ready.set()
        out.send((b"", b"", f"{type(e).__name__}: {e}"))


async def send_all(args, total, warm, conninfo):
    value = ("abcdefghijklmnopqrstuvwxyz" * (args.size // 26 + 1))[: args.size]
    queue = asyncio.Queue()
    conns = [await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
             for _ in range(args.connections)]
    errors = []
    done = 0

    stopping = False
    txns = 0

    async def worker(conn):
        nonlocal done, txns
        while True:
            item = await queue.get()
            if item is None or stopping:
                return
            items = [item]
            while len(items) < args.batch and not queue.empty():
                nxt = queue.get_nowait()
                if nxt is None:
                    queue.put_nowait(None)  # for another worker
                    break
                items.append(nxt)
            rows = ", ".join([f"('{value}')"] * len(items))
            notifies = "; ".join(f"NOTIFY {args.channel}, '{seq} {t}'" for seq, t in items)
            try:
                await conn.execute(f"INSERT INTO {args.table} (v) VALUES {rows}; {notifies}")
                done += len(items)
                txns += 1
            except psycopg.Error as e:
                errors.append(str(e).strip())

    tasks = [asyncio.create_task(worker(c)) for c in conns]
    interval = 1e9 / args.rate
    start = time.monotonic_ns()
    i = 0
    max_backlog = 0
    while i < total:
        now = time.monotonic_ns()
        due = min(total, int((now - start) / interval) + 1)
        while i < due:
            queue.put_nowait((i - warm, time.monotonic_ns()))
            i += 1
        max_backlog = max(max_backlog, queue.qsize())
        next_due = start + i * interval
        await asyncio.sleep(max(0.0, (next_due - time.monotonic_ns()) / 1e9))
    end_hand = time.monotonic_ns()
    for _ in tasks:
        queue.put_nowait(None)
    try:
        await asyncio.wait_for(asyncio.shield(asyncio.gather(*tasks)), args.drain_timeout)
    except asyncio.TimeoutError:
        stopping = True
        await asyncio.gather(*tasks)
    end_send = time.monotonic_ns()
    await conns[0].execute(f"NOTIFY {args.channel}, 'stop'")
    for c in conns:
        await c.close()
    return {
        "handed_rate": total / ((end_hand - start) / 1e9),
        "send_rate": done / ((end_send - start) / 1e9),
        "max_backlog": max_backlog,
        "transactions": txns,
        "send_errors": len(errors),
        "first_error": errors[0] if errors else None,
    }


def pct_ms(sorted_ns, p):
    if not sorted_ns:
        return -1.0
    i = min(len(sorted_ns) - 1, max(0, int(p / 100.0 * len(sorted_ns) + 0.5) - 1))
    return sorted_ns[i] / 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=10000, help="records per second")
    ap.add_argument("--seconds", type=float, default=10, help="measured seconds")
    ap.add_argument("--warmup", type=float, default=1, help="seconds sent before measuring")
    ap.add_argument("--size", type=int, default=100, help="bytes of the inserted value")
    ap.add_argument("--connections", type=int, default=32, help="sending connections")
    ap.add_argument("--batch", type=int, default=1, help="most records per transaction")
    ap.add_argument("--drain-timeout", type=float, default=60,
                    help="most seconds to send what is queued after the last record is handed out")
    ap.add_argument("--table", default="notify_events")
    ap.add_argument("--channel", default="notify_bench")
    args = ap.parse_args()

    conninfo = ""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {args.table} (id bigserial PRIMARY KEY, v text)")

    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    recv_end, send_end = ctx.Pipe(duplex=False)
    child = ctx.Process(target=listener, args=(args.channel, ready, send_end, conninfo), daemon=True)
    child.start()
    if not ready.wait(30):
        sys.exit("notify_latency: the listener did not start")

    warm = int(args.warmup * args.rate)
    expected = int(args.seconds * args.rate)
    sent = asyncio.run(send_all(args, warm + expected, warm, conninfo))

    if not recv_end.poll(30):
        child.terminate()
        sys.exit("notify_latency: the listener did not report")
    seq_b, lat_b, err = recv_end.recv()
    child.join(5)
    if err:
        sys.exit(f"notify_latency: listener failed: {err}")
    seqs = array("q")
    seqs.frombytes(seq_b)
    lats = array("q")
    lats.frombytes(lat_b)
    received = len(set(seqs))
    lat = sorted(lats)
    mean = sum(lat) / len(lat) / 1e6 if lat else -1.0

    print(f"result mode=notify rate={args.rate:.0f} seconds={args.seconds:.1f} size={args.size} "
          f"connections={args.connections} batch={args.batch} warmup_records={warm} sent={expected} received={received} "
          f"lost={expected - received} send_errors={sent['send_errors']} "
          f"handed_rate={sent['handed_rate']:.0f} send_rate={sent['send_rate']:.0f} "
          f"max_backlog={sent['max_backlog']} transactions={sent['transactions']} "
          f"p50_ms={pct_ms(lat, 50):.3f} p90_ms={pct_ms(lat, 90):.3f} p99_ms={pct_ms(lat, 99):.3f} "
          f"p999_ms={pct_ms(lat, 99.9):.3f} max_ms={pct_ms(lat, 100):.3f} mean_ms={mean:.3f}",
          flush=True)
    if sent["first_error"]:
        print(f"notify_latency: {sent['send_errors']} failed sends, first: {sent['first_error']}",
              file=sys.stderr)
    return 0 if received == expected and not sent["send_errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
