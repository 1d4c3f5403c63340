import { App, type AppProps, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import { MarginCallStack } from "./margin-call-stack.ts";

export const DEFAULT_STAGE = "dev";

export function stackNameFor(stage: string): string {
  return `MarginCall-${stage}`;
}

/**
 * Builds the CDK app: the engine stack for one stage, with cdk-nag's AwsSolutions pack registered as a
 * policy-validation plugin. `bin/app.ts` synthesizes it for the CLI; the local runtime and the tests
 * synthesize it in-process to read the same template.
 */
export function buildApp(props: AppProps = {}): { app: App; stack: MarginCallStack } {
  const app = new App(props);
  const stage = String(app.node.tryGetContext("stage") ?? DEFAULT_STAGE);
  const stack = new MarginCallStack(app, stackNameFor(stage), {
    stage,
    description: `Margin-call engine (${stage})`,
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, stack };
}
