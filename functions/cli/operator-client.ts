/**
 * The DynamoDB client of the operator commands (`margin-call quarantine`, `margin-call policy`): the
 * deployed stack's, with the default AWS credentials, when its table names are set in the environment;
 * otherwise the local engine's session (.local/session.json, written by `npm start -- --engine-only`).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** `deployed`: the stack's table names are set. `missing`: the error when neither is there. */
export function operatorClient(deployed: boolean, missing: () => Error): DynamoDBClient {
  if (deployed) return new DynamoDBClient({});
  let session: { endpoint: string; accessKeyId: string };
  try {
    session = JSON.parse(readFileSync(join(ROOT, ".local", "session.json"), "utf8"));
  } catch {
    throw missing();
  }
  return new DynamoDBClient({
    endpoint: session.endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: session.accessKeyId, secretAccessKey: "local" },
  });
}
