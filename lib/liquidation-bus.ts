/**
 * Where liquidation requests and recorded losses leave the engine: its own EventBridge bus, archived for
 * replay and audit, with an example rule that feeds the execution system's queue. Grouped so the stack
 * reads as its parts; the relay handler is given the bus to publish on, and the bus's resource policy lets
 * no other principal put on it (`restrictPublishersTo`). The events' schema is docs/events.md.
 */
import { Duration } from "aws-cdk-lib";
import { type CfnRule, EventBus, Rule } from "aws-cdk-lib/aws-events";
import { SqsQueue } from "aws-cdk-lib/aws-events-targets";
import { Effect, type IRole, PolicyStatement, StarPrincipal } from "aws-cdk-lib/aws-iam";
import type { Queue } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { redrivenQueue } from "./queues.ts";

/** The `source` of every event the engine puts on its bus (functions/adapters/liquidation-ports.ts). */
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
  private publishersRestricted = false;

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

  /**
   * Lets only `roles` put events on the bus, whatever any identity policy in the account allows: the bus's
   * resource policy denies `events:PutEvents` to every principal whose `aws:PrincipalArn` is none of theirs.
   * A Lambda function's calls carry its role's ARN there (not the session's), so the role is what is named.
   *
   * - EventBridge documents Deny statements for any principal in bus policies ("Example policy: Deny sending
   *   events from specific Regions", docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-bus-perms.html,
   *   written `{"AWS": "*"}` there; "*" also covers service principals, which carry no aws:PrincipalArn and
   *   so are denied too). An explicit Deny in a resource policy overrides any Allow, an administrator's.
   * - Not `events:source`: the source is whatever the caller writes into the entry (only `aws.` is
   *   reserved), so a condition on it says what an event claims to be, not who sent it. The execution rule
   *   already matches on the source; the principal is what a forger cannot choose.
   * - Archive replays still arrive: a replay is started with `events:StartReplay` and EventBridge re-sends
   *   the archived events to the bus that emitted them, metered apart from PutEvents; it is not a PutEvents
   *   call by a principal, and this statement denies only PutEvents. Replayed events carry `replay-name`,
   *   which the execution rule refuses.
   *
   * One call per bus (a second would deny the first call's roles too); at least one role.
   */
  restrictPublishersTo(roles: readonly IRole[]): void {
    if (roles.length === 0) {
      throw new Error(
        "restrictPublishersTo needs at least one role: with none, nothing could put on the bus",
      );
    }
    if (this.publishersRestricted) {
      throw new Error("restrictPublishersTo was already called: list every publishing role in one call");
    }
    this.publishersRestricted = true;
    this.eventBus.addToResourcePolicy(
      new PolicyStatement({
        sid: "OnlyEnginePublishers",
        effect: Effect.DENY,
        principals: [new StarPrincipal()],
        actions: ["events:PutEvents"],
        resources: [this.eventBus.eventBusArn],
        conditions: { ArnNotEquals: { "aws:PrincipalArn": roles.map((role) => role.roleArn) } },
      }),
    );
  }
}
