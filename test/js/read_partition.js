// Reads partition 0 of a topic from its start with a kafkajs consumer, for
// test/python/test_compaction.py: prints one JSON line per record,
// {"o": OFFSET, "ts": TIMESTAMP_MS, "k": KEY, "v": VALUE} (key and value as
// UTF-8, null for null), and exits once it has read COUNT records.
//
// Usage: node read_partition.js BROKER TOPIC GROUP COUNT
'use strict';

const { Kafka, logLevel } = require('kafkajs');

async function main() {
  const [broker, topic, group, countArg] = process.argv.slice(2);
  if (!broker || !topic || !group || !countArg) {
    console.error('usage: node read_partition.js BROKER TOPIC GROUP COUNT');
    process.exit(2);
  }
  const count = parseInt(countArg, 10);
  const kafka = new Kafka({ clientId: 'read-partition', brokers: [broker], logLevel: logLevel.ERROR });
  const consumer = kafka.consumer({ groupId: group, maxWaitTimeInMs: 200 });
  let seen = 0;
  let finish;
  const done = new Promise((resolve) => { finish = resolve; });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      if (partition !== 0 || seen >= count)
        return;
      process.stdout.write(JSON.stringify({
        o: Number(message.offset),
        ts: Number(message.timestamp),
        k: message.key === null ? null : message.key.toString(),
        v: message.value === null ? null : message.value.toString(),
      }) + '\n');
      if (++seen === count)
        finish();
    },
  });
  await done;
  await consumer.disconnect();
}

const timer = setTimeout(() => { console.error('timed out'); process.exit(1); }, 60000);
main().then(() => { clearTimeout(timer); process.exit(0); },
  (e) => { console.error(e); process.exit(1); });
