/**
 * `npm start`: DynamoDB Local with the engine's tables, created from the synthesized template.
 *
 * The local runtime that drives the stream handlers and schedules, and the market-crash demo, are not
 * built yet: this command says so, and does no more than it says.
 */

import { parseArgs } from "node:util";
import { ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { localClients } from "./aws-clients.ts";
import { DynamoDbLocalSetupError, startDynamoDbLocal } from "./dynamodb-local.ts";
import { createLocalTables } from "./local-tables.ts";
import { synthesizeTemplate } from "./template.ts";

const HELP = `npm start [-- options]

Starts DynamoDB Local with the engine's tables, created from the synthesized CDK template,
and keeps it running until Ctrl-C.

Options:
  --data-dir DIR      keep the data in DIR across runs (default: in memory)
  --access-key-id ID  the local database to use (DynamoDB Local keeps one per key; default: local)
  --exit              create the tables, print them, and exit instead of waiting
  -h, --help          this text

Set DYNAMODB_ENDPOINT to use a DynamoDB Local that is already running.`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      "data-dir": { type: "string" },
      "access-key-id": { type: "string", default: "local" },
      exit: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const dataDir = values["data-dir"];
  const log = (line: string): void => console.log(line);
  const local = await startDynamoDbLocal({ log, ...(dataDir ? { dbPath: dataDir } : {}) });
  const clients = localClients(local.endpoint, values["access-key-id"]);
  try {
    log(`DynamoDB Local answers on ${local.endpoint}${dataDir ? `, data in ${dataDir}` : ", in memory"}.`);
    const template = synthesizeTemplate();
    await createLocalTables(clients.dynamodb, template);
    const { TableNames = [] } = await clients.dynamodb.send(new ListTablesCommand({}));
    log(`Tables from the synthesized template: ${TableNames.join(", ")}`);
    log(`Access key id: ${values["access-key-id"]} (region us-east-1).`);
    log("Not built yet: the local runtime (stream consumers, schedules) and the market-crash demo.");
    if (values.exit) return;
    log("Ctrl-C stops DynamoDB Local.");
    await new Promise<void>((resolveStop) => {
      process.once("SIGINT", resolveStop);
      process.once("SIGTERM", resolveStop);
    });
  } finally {
    clients.destroy();
    await local.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof DynamoDbLocalSetupError ? error.message : error);
  process.exitCode = 1;
});
