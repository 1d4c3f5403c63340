/**
 * Where liquidation requests and recorded losses leave the engine: its own EventBridge bus, archived for
 * replay and audit, with an example rule that feeds the execution system's queue. Grouped so the stack
 * reads as its parts; the dispatcher handler is given the bus to publish on.
 */
import { Duration } from "aws-cdk-lib";
import { type CfnRule, EventBus, Rule } from "aws-cdk-lib/aws-events";
import { SqsQueue } from "aws-cdk-lib/aws-events-targets";
import type { Queue } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { redrivenQueue } from "./queues.ts";

/** The `source` of every event the engine puts on its bus (functions/handlers/liquidation-dispatcher.ts). */
export const EVENT_SOURCE = "margin-call-engine";

export interface LiquidationBusProps {
  /** The bus's name, unique in the account and region, e.g. `margin-call-dev`. */
  readonly eventBusName: string;
  /**
   * How long the archive keeps each event.
   * @default 365 days
   */
  readonly archiveRetention?: Duration;
  /**
   * How long the execution system's queue keeps a request nobody has taken.
   * @default 4 days
   */
  readonly executionRequestsRetention?: Duration;
}

/**
 * The engine's event bus and archive, and an example downstream consumer: the execution system reads
 * LiquidationRequested events from a queue.
 *
 * Its resources are created in `scope`, beside this construct, not under it: their logical ids are hashed
 * from their construct paths, and the deployed bus, archive and queues must keep the ids they already have.
 */
export class LiquidationBus extends Construct {
  readonly eventBus: EventBus;
  /** The example consumer's queue: the execution system's liquidation requests. */
  readonly executionRequests: Queue;
  /** Where execution requests go after five failed receives. */
  readonly executionRequestsDeadLetter: Queue;

  constructor(scope: Construct, id: string, props: LiquidationBusProps) {
    super(scope, id);
    this.eventBus = new EventBus(scope, "EventBus", { eventBusName: props.eventBusName });
    this.eventBus.archive("Archive", {
      eventPattern: { source: [EVENT_SOURCE] },
      retention: props.archiveRetention ?? Duration.days(365),
      description: "Every liquidation request and loss, for replay and audit",
    });
    const execution = redrivenQueue(scope, "ExecutionRequests", {
      retentionPeriod: props.executionRequestsRetention ?? Duration.days(4),
    });
    this.executionRequests = execution.queue;
    this.executionRequestsDeadLetter = execution.deadLetter;
    const toExecution = new Rule(scope, "LiquidationRequestsToExecution", {
      eventBus: this.eventBus,
      description: "Example: route LiquidationRequested to the execution system's queue, never a replay",
      eventPattern: { source: [EVENT_SOURCE], detailType: ["LiquidationRequested"] },
      targets: [new SqsQueue(this.executionRequests)],
    });
    // A replay of the archive (for audit or a rebuilt consumer) carries `replay-name`: it must never reach the
    // execution system as a fresh liquidation request. CDK's EventPattern has no field for it.
    (toExecution.node.defaultChild as CfnRule).addPropertyOverride("EventPattern.replay-name", [
      { exists: false },
    ]);
  }
}
