// Produces keyed messages with headers to a streamlog broker with kafkajs,
// one send uncompressed and one gzip-compressed, then asks for the topic's
// offsets with admin.fetchTopicOffsets.  Prints one JSON object on stdout:
//
//   {"sent": [[{partition, baseOffset, errorCode}, ...], ...],
//    "offsets": [{partition, offset, high, low}, ...]}
//
// Usage: node produce.js BROKER TOPIC COUNT
// With KAFKAJS_SSL_CA set (a CA certificate file), it connects over TLS,
// checking the broker's certificate against that CA.
// Messages i = 0..COUNT-1: key "key-i", value "value-i", headers
// {"index": "i", "origin": "kafkajs"}; the first half is sent uncompressed,
// the second half in one gzip batch.  acks = -1.
'use strict';

const fs = require('fs');
const { Kafka, CompressionTypes, logLevel } = require('kafkajs');

async function main() {
  const [broker, topic, countArg] = process.argv.slice(2);
  const count = parseInt(countArg, 10);
  if (!broker || !topic || !(count > 1)) {
    console.error('usage: node produce.js BROKER TOPIC COUNT');
    process.exit(2);
  }

  const kafka = new Kafka({
    clientId: 'streamlog-kafkajs-test',
    brokers: [broker],
    logLevel: logLevel.ERROR,
    connectionTimeout: 3000,
    requestTimeout: 10000,
    retry: { retries: 3, initialRetryTime: 100 },
    ssl: process.env.KAFKAJS_SSL_CA ?
      { ca: [fs.readFileSync(process.env.KAFKAJS_SSL_CA)] } : undefined,
  });

  const messages = [];
  for (let i = 0; i < count; i++) {
    messages.push({
      key: `key-${i}`,
      value: `value-${i}`,
      headers: { index: String(i), origin: 'kafkajs' },
    });
  }
  const half = Math.floor(count / 2);

  const producer = kafka.producer({ allowAutoTopicCreation: true });
  const admin = kafka.admin();
  await producer.connect();
  try {
    const sent = [];
    sent.push(await producer.send({
      topic,
      acks: -1,
      compression: CompressionTypes.None,
      messages: messages.slice(0, half),
    }));
    sent.push(await producer.send({
      topic,
      acks: -1,
      compression: CompressionTypes.GZIP,
      messages: messages.slice(half),
    }));

    await admin.connect();
    const offsets = await admin.fetchTopicOffsets(topic);
    process.stdout.write(JSON.stringify({ sent, offsets }) + '\n');
  } finally {
    await producer.disconnect();
    await admin.disconnect();
  }
}

main().catch((err) => {
  console.error(`kafkajs failed: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
