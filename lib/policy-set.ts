/**
 * The stack's policy documents, put into the Policies table and activated at every deploy that changes them,
 * with no manual step: a custom resource whose handler (functions/handlers/policy-bootstrap.ts) writes each
 * changed document as a new version and activates them in one conditional write. The documents are checked
 * here first, so a bad policy fails `cdk synth`, naming the policy and the field. See docs/policies.md.
 */
import { CustomResource, Duration, RemovalPolicy } from "aws-cdk-lib";
import type { Table } from "aws-cdk-lib/aws-dynamodb";
import { PolicyStatement, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import { Provider } from "aws-cdk-lib/custom-resources";
import { Construct, type IConstruct } from "constructs";
import { POLICY_SET_RESOURCE } from "../functions/domain/environment.ts";
import { type PolicyDocument, PolicySetError, parsePolicySet } from "../functions/domain/policy.ts";
import { EngineFunction } from "./engine-function.ts";

export interface PolicySetProps {
  /** The Policies table (lib/tables.ts). */
  readonly table: Table;
  /** The margin policies; each account's PROFILE names one by policyId. */
  readonly policies: readonly PolicyDocument[];
}

/**
 * Checks the policy set as the functions will read it: a non-empty array of valid documents with distinct
 * ids. Throws naming the policy and the field. The type alone cannot say this: it does not carry the
 * schema's refinements (canonical decimal strings, rates between 0 and 1).
 */
export function validatePolicyDocuments(documents: readonly PolicyDocument[]): void {
  try {
    parsePolicySet(documents, "the policy set");
  } catch (error) {
    if (error instanceof PolicySetError) throw new Error(error.message);
    throw error;
  }
}

/** The policy set of the stack, deployed into the Policies table by a custom resource. */
export class PolicySet extends Construct {
  /** The function that writes and activates the versions: the only one, with the operators' CLI, that writes the table. */
  readonly bootstrap: EngineFunction;
  /** The Provider framework's own function, which calls the bootstrap and answers CloudFormation. */
  readonly provider: Provider;
  /** The framework function's role. */
  readonly providerRole: Role;
  readonly resource: CustomResource;

  constructor(scope: Construct, id: string, props: PolicySetProps) {
    super(scope, id);
    validatePolicyDocuments(props.policies);
    this.bootstrap = new EngineFunction(this, "Bootstrap", {
      entry: "functions/handlers/policy-bootstrap.ts",
      description: "Writes the stack's policy documents as new versions and activates them, at deploy",
      environment: {},
      timeout: Duration.minutes(2),
      statements: [
        new PolicyStatement({
          // ConditionCheckItem and PutItem: the activation's transaction.
          actions: ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:ConditionCheckItem"],
          resources: [props.table.tableArn],
        }),
      ],
    });
    // The framework function gets a role of its own (no managed policy) and a log group with a retention.
    this.providerRole = new Role(this, "ProviderRole", {
      assumedBy: new ServicePrincipal("lambda.amazonaws.com"),
      description: `${id}: invokes the policy bootstrap and writes its own logs, nothing else`,
    });
    const frameworkLogs = new LogGroup(this, "ProviderLogs", {
      retention: RetentionDays.THREE_MONTHS,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    frameworkLogs.grantWrite(this.providerRole);
    this.provider = new Provider(this, "Provider", {
      onEventHandler: this.bootstrap.lambdaFunction,
      frameworkOnEventRole: this.providerRole,
      logGroup: frameworkLogs,
    });
    this.resource = new CustomResource(this, "Resource", {
      serviceToken: this.provider.serviceToken,
      resourceType: POLICY_SET_RESOURCE.type,
      properties: {
        [POLICY_SET_RESOURCE.tableProperty]: props.table.tableName,
        [POLICY_SET_RESOURCE.documentsProperty]: JSON.stringify(props.policies),
      },
    });
  }

  /** Makes `dependent` wait for the policies to be active: a function must not run before there is a set. */
  activeBefore(dependent: IConstruct): void {
    dependent.node.addDependency(this.resource);
  }
}
