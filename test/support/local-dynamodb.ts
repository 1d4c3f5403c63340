import { createHash } from "node:crypto";
import { inject } from "vitest";
import { type LocalClients, localClients } from "../../functions/local/aws-clients.ts";
import { createLocalTables } from "../../functions/local/local-tables.ts";
import { bootstrapLocalPolicies } from "../../functions/local/policy-bootstrap.ts";
import type { CfnTemplate } from "../../functions/local/template.ts";

export interface TestDatabase extends LocalClients {
  readonly endpoint: string;
  readonly accessKeyId: string;
  readonly template: CfnTemplate;
  /** Local table name by logical id. */
  readonly tables: Record<string, string>;
}

/**
 * A database of this test file's own on the shared DynamoDB Local: the access key id is derived from the
 * file's URL (plus an optional suffix), so files never see each other's tables or streams.
 */
export async function testDatabase(testFileUrl: string, suffix = ""): Promise<TestDatabase> {
  const accessKeyId = `t${createHash("sha256")
    .update(testFileUrl + suffix)
    .digest("hex")
    .slice(0, 16)}`;
  const endpoint = inject("dynamodbEndpoint");
  const clients = localClients(endpoint, accessKeyId);
  const template = inject("template");
  const tables = await createLocalTables(clients.dynamodb, template);
  // The stack's policies, versioned and active, as the PolicySet custom resource deploys them.
  await bootstrapLocalPolicies(clients.dynamodb, template);
  return { ...clients, endpoint, accessKeyId, template, tables };
}
