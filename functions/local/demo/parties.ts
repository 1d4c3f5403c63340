/**
 * The demo's end of the runtime's bus and notices: it keeps every event the engine put on the bus and
 * tallies the notices it sent, and passes on what concerns the other parties: call notices to the
 * borrowers, liquidation requests to the execution system (see actors.ts).
 */
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { LocalRuntimeOptions } from "../runtime.ts";
import { type ActorStats, Borrowers, type Clock, ExecutionSystem } from "./actors.ts";
import type { RecordedEvent } from "./findings.ts";

type BusEntry = Parameters<NonNullable<LocalRuntimeOptions["onEvent"]>>[0];
type NoticeMessage = Parameters<NonNullable<LocalRuntimeOptions["onNotice"]>>[0];

export class Parties {
  /** Every event put on the bus, in order. */
  readonly events: RecordedEvent[] = [];
  /** Notices sent, by kind (each by SMS and email, counted once). */
  readonly notices: Record<string, number> = {};
  private actors: { borrowers: Borrowers; execution: ExecutionSystem } | undefined;

  constructor(private readonly log: (line: string) => void) {}

  /** The borrowers and the execution system join, once the runtime they write to is up. */
  enter(dynamo: DynamoDBClient, clock: Clock, random: () => number): void {
    this.actors = {
      borrowers: new Borrowers(dynamo, clock, random),
      execution: new ExecutionSystem(dynamo, clock, random),
    };
  }

  /** What the actors did: deposits and fills. */
  stats(): ActorStats {
    if (!this.actors) throw new Error("the parties have not entered");
    return { ...this.actors.borrowers.stats, ...this.actors.execution.stats };
  }

  /** For LocalRuntime's `onEvent`. */
  readonly onEvent = (entry: BusEntry): void => {
    this.events.push({ detailType: entry.detailType, detail: JSON.parse(entry.detail) });
    if (entry.detailType !== "LiquidationRequested") return;
    this.actors?.execution.onLiquidationRequested(JSON.parse(entry.detail));
  };

  /** For LocalRuntime's `onNotice`. */
  readonly onNotice = (message: NoticeMessage): void => {
    const notice = message.messageAttributes.notice?.stringValue;
    if (!message.topicArn || !notice) return;
    this.notices[notice] = (this.notices[notice] ?? 0) + 1;
    const notificationId = message.messageAttributes.notificationId?.stringValue ?? "";
    const accountId = notificationId.split(":")[0] ?? "";
    if (notice === "CALL") {
      void this.actors?.borrowers
        .onCall(accountId, notificationId)
        .catch((error) => this.log(`borrower: ${String(error)}`));
    }
  };
}
