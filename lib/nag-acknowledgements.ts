/**
 * Every cdk-nag (AwsSolutions) finding the engine accepts, each with its reason, in one file: a reviewer
 * reads here what was waived and why, and the stack itself stays about what it deploys. cdk-nag runs as a
 * CDK policy-validation plugin (lib/app.ts), so the findings are acknowledged through `Validations`.
 */
import { type Stack, Validations } from "aws-cdk-lib";
import { AwsCustomResource } from "aws-cdk-lib/custom-resources";
import type { IConstruct } from "constructs";
import type { BorrowerNotices } from "./borrower-notices.ts";
import type { EngineHandlers } from "./engine-handlers.ts";
import type { PolicySet } from "./policy-set.ts";

/** What the acknowledgements point at. */
export interface NagAcknowledgementsProps {
  readonly handlers: EngineHandlers;
  readonly notices: BorrowerNotices;
  readonly policySet: PolicySet;
}

function acknowledge(scope: IConstruct, finding: string, reason: string): void {
  Validations.of(scope).acknowledge({ id: `AwsSolutions::AwsSolutions-${finding}`, reason });
}

/** Acknowledges, on the constructs concerned, each cdk-nag finding this stack accepts. */
export function acknowledgeNagFindings(stack: Stack, props: NagAcknowledgementsProps): void {
  for (const { definition, engineFunction, deadLetter } of props.handlers.deployed) {
    if (definition.trigger.kind === "stream") {
      const extra = definition.wildcardResourceReason ? ` ${definition.wildcardResourceReason}` : "";
      acknowledge(
        engineFunction.role,
        "IAM5[Resource::*]",
        `dynamodb:ListStreams has no resource-level permission; the stream event source mapping adds it.${extra}`,
      );
    }
    if (!deadLetter) continue;
    const reason =
      definition.trigger.kind === "stream"
        ? "This queue is the stream mapping's on-failure destination, a dead-letter queue itself; its depth is alarmed."
        : `This queue is the ${definition.id} schedule target's dead-letter queue itself; its depth is alarmed.`;
    acknowledge(deadLetter, "SQS3", reason);
  }
  acknowledge(
    props.notices.smsSettings,
    "IAM5[Resource::*]",
    "sns:SetSMSAttributes is account-wide: it has no resource ARN.",
  );
  acknowledge(
    props.policySet.providerRole,
    "IAM5[Resource::<PolicySetBootstrapFunctionF3D933FD.Arn>:*]",
    "CDK's Provider framework may invoke the policy bootstrap by any qualifier (version or alias) of that one function.",
  );
  // The singleton provider function of every AwsCustomResource in the stack, named after its fixed UUID.
  const provider = stack.node.tryFindChild(
    `AWS${AwsCustomResource.PROVIDER_FUNCTION_UUID.replace(/-/g, "")}`,
  );
  if (provider) {
    acknowledge(
      provider,
      "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
      "CDK's own AwsCustomResource provider function, which writes only its logs; its role is set by aws-cdk-lib.",
    );
  }
}
