/**
 * What `cdk deploy` does with the template's PolicySet custom resource, done locally: its handler
 * (functions/handlers/policy-bootstrap.ts) is called directly with a Create event carrying the template's
 * properties, so the local tables hold the stack's policies, versioned and active, as a deployed stack's do.
 */
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { CloudFormationCustomResourceCreateEvent } from "aws-lambda";
import { POLICY_SET_RESOURCE } from "../domain/environment.ts";
import { onPolicySetEvent } from "../handlers/policy-bootstrap.ts";
import { resolveValue } from "./deployment.ts";
import { type CfnTemplate, resourcesOfType } from "./template.ts";

/** The template's one PolicySet resource, by logical id. */
function policySetResource(template: CfnTemplate): [string, Record<string, unknown>] {
  const found = resourcesOfType(template, POLICY_SET_RESOURCE.type);
  const [entry] = found;
  if (!entry || found.length !== 1)
    throw new Error(`expected one ${POLICY_SET_RESOURCE.type} in the template`);
  return [entry[0], entry[1].Properties ?? {}];
}

/** The stack's policy documents as the template gives them to the bootstrap: a JSON array, as text. */
export function templatePolicyDocuments(template: CfnTemplate): string {
  const [, properties] = policySetResource(template);
  return String(properties[POLICY_SET_RESOURCE.documentsProperty]);
}

/** Runs the PolicySet's Create on the local tables. `now` stamps the versions and the activation. */
export async function bootstrapLocalPolicies(
  dynamo: DynamoDBClient,
  template: CfnTemplate,
  now = new Date().toISOString(),
): Promise<void> {
  const [logicalId, properties] = policySetResource(template);
  const event: CloudFormationCustomResourceCreateEvent = {
    RequestType: "Create",
    ServiceToken: "local",
    ResponseURL: "local",
    StackId: "local",
    RequestId: `${logicalId}-create`,
    LogicalResourceId: logicalId,
    ResourceType: POLICY_SET_RESOURCE.type,
    ResourceProperties: {
      ServiceToken: "local",
      [POLICY_SET_RESOURCE.tableProperty]: resolveValue(
        template,
        properties[POLICY_SET_RESOURCE.tableProperty],
        { queueUrl: (id) => id },
      ),
      [POLICY_SET_RESOURCE.documentsProperty]: templatePolicyDocuments(template),
    },
  };
  await onPolicySetEvent(dynamo, event, now);
}
