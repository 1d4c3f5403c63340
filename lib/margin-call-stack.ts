import { Stack, type StackProps, Tags } from "aws-cdk-lib";
import type { Construct } from "constructs";
import { EngineTables } from "./tables.ts";

export interface MarginCallStackProps extends StackProps {
  /** Deployment stage, e.g. `dev` or `prod`. Tags every resource and names the stack. */
  readonly stage: string;
}

/** The margin-call engine: its tables now; its stream consumers, schedules, topics and bus as they land. */
export class MarginCallStack extends Stack {
  readonly tables: EngineTables;

  constructor(scope: Construct, id: string, props: MarginCallStackProps) {
    super(scope, id, props);
    Tags.of(this).add("app", "margin-call-engine");
    Tags.of(this).add("stage", props.stage);
    this.tables = new EngineTables(this, "Tables");
  }
}
