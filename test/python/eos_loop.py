#!/usr/bin/python3
"""One instance of an exactly-once consume-transform-produce loop, as a
process of its own so that a test can kill it with SIGKILL at any point.

    eos_loop.py BOOTSTRAP INPUT OUTPUT GROUP TRANSACTIONAL_ID [--batch N]

A read_committed consumer of every partition of INPUT (assigned by hand:
a new instance need not wait for the killed one's group session to time
out) feeds a transactional producer (confluent-kafka, librdkafka): each
transaction holds one output record per input record read, value
"<partition>:<offset>" keyed by the input partition, to OUTPUT (partition
= input partition mod OUTPUT's partitions) and the consumer's next
offsets, sent with send_offsets_to_transaction.  It then commits.

A new instance first calls init_transactions, which fences the previous
one and aborts its open transaction, then reads the group's committed
offsets and starts there: so what a killed instance read but did not
commit is read again, and what it committed is not.

Any error ends the process with status 2 (its driver starts another): the
loop does not try to be clever about which errors it could survive, since
a fresh instance recovers from all of them the way a real application
restarted by its supervisor would.  It prints one line per committed
transaction ("commit <records>") so that a driver can see progress.
"""

import argparse
import sys

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

TIMEOUT_S = 20


def partitions_of(client, topic):
    md = client.list_topics(topic, timeout=TIMEOUT_S)
    t = md.topics.get(topic)
    if t is None or t.error is not None or not t.partitions:
        raise KafkaException(f"no metadata for {topic}")
    return sorted(t.partitions)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bootstrap")
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("group")
    ap.add_argument("transactional_id")
    ap.add_argument("--batch", type=int, default=10)
    args = ap.parse_args()

    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "transactional.id": args.transactional_id,
        "transaction.timeout.ms": 10000,
        "linger.ms": 2,
    })
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 100,
    })
    # Fence the last instance and end its transaction before reading the
    # offsets it may have committed
    producer.init_transactions(TIMEOUT_S)
    inputs = partitions_of(consumer, args.input)
    outputs = partitions_of(producer, args.output)
    committed = consumer.committed([TopicPartition(args.input, p) for p in inputs],
                                   timeout=TIMEOUT_S)
    for tp in committed:
        if tp.error is not None:
            raise KafkaException(tp.error)
    consumer.assign([TopicPartition(args.input, tp.partition,
                                    tp.offset if tp.offset >= 0 else 0)
                     for tp in committed])
    print("ready", flush=True)

    while True:
        msgs = consumer.consume(args.batch, 0.5)
        if not msgs:
            continue
        producer.begin_transaction()
        n = 0
        for m in msgs:
            if m.error() is not None:
                continue
            producer.produce(args.output, key=str(m.partition()).encode(),
                             value=f"{m.partition()}:{m.offset()}".encode(),
                             partition=outputs[m.partition() % len(outputs)])
            n += 1
        positions = consumer.position(consumer.assignment())
        producer.send_offsets_to_transaction([tp for tp in positions if tp.offset >= 0],
                                             consumer.consumer_group_metadata(), TIMEOUT_S)
        producer.commit_transaction(TIMEOUT_S)
        print(f"commit {n}", flush=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
    except Exception as e:  # any failure: a fresh instance takes over
        print(f"error {e!r}", file=sys.stderr, flush=True)
        sys.exit(2)
