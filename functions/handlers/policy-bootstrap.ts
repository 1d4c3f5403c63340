/**
 * The PolicySet custom resource's handler (lib/policy-set.ts), behind CDK's Provider framework: at each
 * deploy it puts the stack's policy documents into the Policies table and activates them
 * (adapters/policy-store.ts `deployPolicySet`). On an update only the documents the stack changed since the
 * last deploy are deployed; on delete nothing is removed: versions are records, and the table is retained.
 * The local runtime calls `onPolicySetEvent` directly with a Create event.
 */
import { Logger } from "@aws-lambda-powertools/logger";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { CloudFormationCustomResourceEvent } from "aws-lambda";
import { deployPolicySet } from "../adapters/policy-store.ts";
import { POLICY_SET_RESOURCE } from "../domain/environment.ts";

export interface PolicySetResponse {
  readonly PhysicalResourceId: string;
  readonly Data?: { readonly Written: string; readonly Activated: string };
}

function documentsOf(properties: Record<string, unknown>): unknown {
  return JSON.parse(String(properties[POLICY_SET_RESOURCE.documentsProperty]));
}

/** Deploys the event's policy set; `now` stamps the versions and the activation. */
export async function onPolicySetEvent(
  dynamo: DynamoDBClient,
  event: CloudFormationCustomResourceEvent,
  now: string,
): Promise<PolicySetResponse> {
  if (event.RequestType === "Delete") return { PhysicalResourceId: event.PhysicalResourceId };
  const table = String(event.ResourceProperties[POLICY_SET_RESOURCE.tableProperty]);
  const unchanged = event.RequestType === "Update" ? documentsOf(event.OldResourceProperties) : [];
  const { written, activated } = await deployPolicySet(
    dynamo,
    table,
    documentsOf(event.ResourceProperties),
    { at: now, by: `cloudformation:${event.StackId}` },
    Array.isArray(unchanged) ? unchanged : [],
  );
  return {
    PhysicalResourceId: `policy-set:${table}`,
    Data: { Written: written.join(","), Activated: activated.join(",") },
  };
}

const logger = new Logger({ serviceName: "margin-call-engine" });
let dynamo: DynamoDBClient | undefined;

export async function handler(event: CloudFormationCustomResourceEvent): Promise<PolicySetResponse> {
  dynamo ??= new DynamoDBClient({});
  const response = await onPolicySetEvent(dynamo, event, new Date().toISOString());
  logger.info("policy set deployed", { requestType: event.RequestType, ...response.Data });
  return response;
}
