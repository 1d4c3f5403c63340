/**
 * `npm run ddb:install`: puts DynamoDB Local into the project's cache (CI runs it before the tests).
 * `tsx functions/local/dynamodb-local-cli.ts run`: starts one and prints its endpoint until Ctrl-C.
 */
import { parseArgs } from "node:util";
import { DynamoDbLocalSetupError, installDynamoDbLocal, startDynamoDbLocal } from "./dynamodb-local.ts";

const USAGE = "usage: dynamodb-local-cli.ts install | run [--data-dir DIR]";

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: { "data-dir": { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  const command = positionals[0];
  if (values.help || !command) {
    console.log(USAGE);
    return;
  }
  const log = (line: string): void => console.error(line);
  if (command === "install") {
    console.log(await installDynamoDbLocal(log));
  } else if (command === "run") {
    const dataDir = values["data-dir"];
    const local = await startDynamoDbLocal({ log, ...(dataDir ? { dbPath: dataDir } : {}) });
    console.log(
      `DynamoDB Local answers on ${local.endpoint} (pid ${local.pid ?? "external"}). Ctrl-C stops it.`,
    );
    await new Promise<void>((resolveStop) => {
      process.once("SIGINT", resolveStop);
      process.once("SIGTERM", resolveStop);
    });
    await local.stop();
  } else {
    throw new DynamoDbLocalSetupError(USAGE);
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof DynamoDbLocalSetupError ? error.message : error);
  process.exitCode = 1;
});
