// kafkajs's ACL admin calls against a streamlog broker: creates READ for
// the principal on the topic, describes the principal's bindings on it
// (SQL granted WRITE before), then deletes them all.  Prints one JSON
// object: {"described": [[name, principal, host, operation, permission]],
// "deleted": [...the same for what DeleteAcls reported]}
//
// Usage: node acls.js BROKER TOPIC PRINCIPAL
'use strict';

const {
  Kafka, logLevel, AclResourceTypes, AclOperationTypes, AclPermissionTypes,
  ResourcePatternTypes,
} = require('kafkajs');

const nameOf = (table, code) => Object.keys(table).find((k) => table[k] === code);

function row(r, acl) {
  return [r.resourceName, acl.principal, acl.host,
    nameOf(AclOperationTypes, acl.operation), nameOf(AclPermissionTypes, acl.permissionType)];
}

async function main() {
  const [broker, topic, principal] = process.argv.slice(2);
  if (!broker || !topic || !principal) {
    console.error('usage: node acls.js BROKER TOPIC PRINCIPAL');
    process.exit(2);
  }
  const kafka = new Kafka({
    clientId: 'streamlog-kafkajs-acl-test', brokers: [broker], logLevel: logLevel.NOTHING,
    connectionTimeout: 3000, requestTimeout: 10000, retry: { retries: 3 },
  });
  const admin = kafka.admin();
  await admin.connect();
  const filter = {
    resourceType: AclResourceTypes.TOPIC,
    resourceName: topic,
    resourcePatternType: ResourcePatternTypes.LITERAL,
    principal,
    host: '*',
    operation: AclOperationTypes.ANY,
    permissionType: AclPermissionTypes.ANY,
  };
  await admin.createAcls({
    acl: [{ ...filter, operation: AclOperationTypes.READ, permissionType: AclPermissionTypes.ALLOW }],
  });
  const { resources } = await admin.describeAcls(filter);
  const described = [];
  for (const r of resources) for (const acl of r.acls) described.push(row(r, acl));
  const { filterResponses } = await admin.deleteAcls({ filters: [filter] });
  const deleted = [];
  for (const f of filterResponses) for (const m of f.matchingAcls) deleted.push(row(m, m));
  await admin.disconnect();
  console.log(JSON.stringify({ described, deleted }));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
