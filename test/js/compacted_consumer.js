// A kafkajs consumer in a group that reads a compacted topic from the
// beginning, for test/python/test_compaction_clients.py.  Prints one JSON
// line per record:
//
//   {"p": P, "o": "O", "k": base64|null, "v": base64|null,
//    "h": [[name, base64], ...], "ts": "ms"}
//
// and commits the offset after each record (O + 1) before printing the next.
// Usage: node compacted_consumer.js BROKER TOPIC GROUP LAST_OFFSET
// Stops (leaving the group) once the record at LAST_OFFSET of partition 0
// is consumed and committed; exits with 1 if that takes more than 60 s.
'use strict';

const { Kafka, logLevel } = require('kafkajs');

function b64(buf) {
  return buf === null || buf === undefined ? null : Buffer.from(buf).toString('base64');
}

async function main() {
  const [broker, topic, group, lastArg] = process.argv.slice(2);
  if (!broker || !topic || !group || lastArg === undefined) {
    console.error('usage: node compacted_consumer.js BROKER TOPIC GROUP LAST_OFFSET');
    process.exit(2);
  }
  const last = BigInt(lastArg);
  const kafka = new Kafka({
    clientId: 'streamlog-compaction-test',
    brokers: [broker],
    logLevel: logLevel.ERROR,
    connectionTimeout: 3000,
    requestTimeout: 10000,
  });
  const consumer = kafka.consumer({ groupId: group, maxWaitTimeInMs: 200 });
  const timer = setTimeout(() => {
    console.error(`did not reach offset ${last} in 60 s`);
    process.exit(1);
  }, 60000);
  let done;
  const finished = new Promise((resolve) => { done = resolve; });

  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      const headers = Object.entries(message.headers || {}).map(([k, v]) => [k, b64(v)]);
      const next = (BigInt(message.offset) + 1n).toString();
      await consumer.commitOffsets([{ topic, partition, offset: next }]);
      process.stdout.write(JSON.stringify({
        p: partition, o: message.offset, k: b64(message.key), v: b64(message.value),
        h: headers, ts: message.timestamp,
      }) + '\n');
      if (partition === 0 && BigInt(message.offset) >= last) {
        done();
      }
    },
  });
  await finished;
  clearTimeout(timer);
  await consumer.disconnect();
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
