// Starts a kafkajs transactional producer against a streamlog broker and
// reports how producer.transaction() ends.  Prints one JSON object:
//
//   {"ok": false, "name": ..., "message": ..., "retriable": ..., "type": ...,
//    "brokerErrors": [types of the errors FindCoordinator answered],
//    "retries": number of times kafkajs asked for the coordinator again}
//
// Usage: node transaction.js BROKER TRANSACTIONAL_ID
'use strict';

const { Kafka, logLevel } = require('kafkajs');

async function main() {
  const [broker, transactionalId] = process.argv.slice(2);
  if (!broker || !transactionalId) {
    console.error('usage: node transaction.js BROKER TRANSACTIONAL_ID');
    process.exit(2);
  }
  const brokerErrors = [];
  let retries = 0;
  const kafka = new Kafka({
    clientId: 'streamlog-kafkajs-txn-test',
    brokers: [broker],
    logLevel: logLevel.DEBUG,
    logCreator: () => ({ log }) => {
      if (log.message === 'Tried to find group coordinator' && log.error) {
        brokerErrors.push(log.error.type || log.error.name);
      } else if (log.message === 'Group coordinator not available, retrying...') {
        retries++;
      }
    },
    connectionTimeout: 3000,
    requestTimeout: 10000,
    retry: { retries: 3, initialRetryTime: 100 },
  });
  const producer = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 });
  let result;
  await producer.connect();
  try {
    const txn = await producer.transaction();
    await txn.abort();
    result = { ok: true };
  } catch (e) {
    result = { ok: false, name: e.name, message: e.message, retriable: e.retriable, type: e.type };
  }
  result.brokerErrors = brokerErrors;
  result.retries = retries;
  await producer.disconnect();
  console.log(JSON.stringify(result));
}

main().catch(e => {
  console.error(e);
  process.exit(1);
});
