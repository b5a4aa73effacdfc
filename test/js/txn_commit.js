// A kafkajs transactional producer's whole path against a streamlog
// broker: a transaction that sends records and its consumer offsets and
// commits, then one that sends and aborts.  Prints one JSON object:
//
//   {"ok": true} or {"ok": false, "name": ..., "message": ...}
//
// Usage: node txn_commit.js BROKER TRANSACTIONAL_ID TOPIC GROUP SOURCE_TOPIC
'use strict';

const { Kafka, logLevel } = require('kafkajs');

async function main() {
  const [broker, transactionalId, topic, group, source] = process.argv.slice(2);
  if (!source) {
    console.error('usage: node txn_commit.js BROKER TRANSACTIONAL_ID TOPIC GROUP SOURCE_TOPIC');
    process.exit(2);
  }
  const kafka = new Kafka({
    clientId: 'streamlog-kafkajs-txn-commit',
    brokers: [broker],
    logLevel: logLevel.NOTHING,
    retry: { retries: 10, initialRetryTime: 100 },
  });
  const producer = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 });
  let result;
  await producer.connect();
  try {
    let txn = await producer.transaction();
    await txn.send({ topic, messages: [{ value: 'k1' }, { value: 'k2' }], acks: -1 });
    await txn.sendOffsets({ consumerGroupId: group,
                            topics: [{ topic: source, partitions: [{ partition: 0, offset: '2' }] }] });
    await txn.commit();
    txn = await producer.transaction();
    await txn.send({ topic, messages: [{ value: 'k-aborted' }], acks: -1 });
    await txn.abort();
    result = { ok: true };
  } catch (e) {
    result = { ok: false, name: e.name, message: e.message };
  }
  await producer.disconnect();
  console.log(JSON.stringify(result));
}

main().catch(e => {
  console.error(e);
  process.exit(1);
});
