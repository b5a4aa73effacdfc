// Produces with kafkajs over SASL: ROUNDS sends of one message each,
// PAUSE_MS apart (so that a short session lifetime makes kafkajs
// re-authenticate between them, KIP-368).  Prints one JSON object:
//
//   {"sent": [{partition, baseOffset, errorCode}, ...]}
//
// Usage: node sasl.js BROKER TOPIC MECHANISM USER PASSWORD ROUNDS PAUSE_MS
// MECHANISM as kafkajs spells it: plain, scram-sha-256, scram-sha-512.
'use strict';

const { Kafka, logLevel } = require('kafkajs');

async function main() {
  const [broker, topic, mechanism, username, password, roundsArg, pauseArg] =
    process.argv.slice(2);
  const rounds = parseInt(roundsArg, 10);
  const pause = parseInt(pauseArg, 10);
  const kafka = new Kafka({
    clientId: 'streamlog-kafkajs-sasl-test',
    brokers: [broker],
    logLevel: logLevel.ERROR,
    connectionTimeout: 3000,
    requestTimeout: 10000,
    retry: { retries: 2, initialRetryTime: 100 },
    sasl: { mechanism, username, password },
    // re-authenticate once less than this is left of the session
    reauthenticationThreshold: 500,
  });
  const producer = kafka.producer();
  await producer.connect();
  const sent = [];
  try {
    for (let i = 0; i < rounds; i++) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, pause));
      const res = await producer.send({
        topic, acks: -1, messages: [{ value: `kafkajs-${i}` }],
      });
      sent.push(...res);
    }
  } finally {
    await producer.disconnect();
  }
  console.log(JSON.stringify({ sent }));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
