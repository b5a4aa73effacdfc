// A kafkajs consumer in a consumer group, for test/python/test_kafka_groups.py.
// Prints one JSON line per event, as the Python consumers of that test do:
//
//   {"ev": "assign", "parts": [..]}      its partitions of TOPIC, after each join
//   {"ev": "rec", "p": P, "o": O}        a record consumed
//   {"ev": "commit", "p": P, "o": O}     a commit that succeeded (O = next to consume)
//   {"ev": "commit_failed", "p": P, "err": "..."}
//
// Usage: node group_consumer.js BROKER TOPIC GROUP NAME SESSION_MS HEARTBEAT_MS
// Every record is committed on its own, right after it is printed.  Runs
// until it is killed; SIGTERM leaves the group first.
'use strict';

const { Kafka, logLevel } = require('kafkajs');

function emit(event) {
  process.stdout.write(JSON.stringify(event) + '\n');
}

async function main() {
  const [broker, topic, group, name, sessionArg, heartbeatArg] = process.argv.slice(2);
  if (!broker || !topic || !group || !name || !sessionArg || !heartbeatArg) {
    console.error('usage: node group_consumer.js BROKER TOPIC GROUP NAME SESSION_MS HEARTBEAT_MS');
    process.exit(2);
  }
  const kafka = new Kafka({
    clientId: name,
    brokers: [broker],
    logLevel: logLevel.ERROR,
    connectionTimeout: 3000,
    requestTimeout: 10000,
  });
  const consumer = kafka.consumer({
    groupId: group,
    sessionTimeout: parseInt(sessionArg, 10),
    heartbeatInterval: parseInt(heartbeatArg, 10),
    rebalanceTimeout: 30000,
    // kafkajs heartbeats between fetches: a short wait keeps it in time
    maxWaitTimeInMs: 200,
  });

  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    const parts = (e.payload.memberAssignment[topic] || []).slice().sort((a, b) => a - b);
    emit({ ev: 'assign', parts });
  });
  consumer.on(consumer.events.CRASH, (e) => {
    console.error(`consumer crashed: ${e.payload.error}`);
  });

  process.on('SIGTERM', () => {
    consumer.disconnect().finally(() => process.exit(0));
  });

  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      emit({ ev: 'rec', p: partition, o: Number(message.offset) });
      const next = (BigInt(message.offset) + 1n).toString();
      try {
        await consumer.commitOffsets([{ topic, partition, offset: next }]);
        emit({ ev: 'commit', p: partition, o: Number(next) });
      } catch (err) {
        emit({ ev: 'commit_failed', p: partition, err: String(err) });
      }
    },
  });
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
