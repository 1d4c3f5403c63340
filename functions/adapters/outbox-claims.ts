/**
 * The outbox items as the record of what left the engine: each notice and each event is claimed on its own
 * outbox item with a conditional write before it is sent, and completed with a second one after. Whatever
 * function does it, under whatever name, after whatever redeploy or replay, the item says what was sent:
 * nothing is sent twice, and nothing that was claimed and not confirmed is sent again (it is recorded as
 * uncertain instead). docs/pipeline.md ("The outbox relay") has the argument and the states.
 *
 * A NOTIFY item: `smsState` and `emailState` (absent: to send; IN_FLIGHT: claimed for sending; then SENT,
 * FAILED, UNCERTAIN or NONE), `outcome` (SENT or UNDELIVERABLE) with `sentAt` or `undeliverableAt`, and
 * `held`: the liquidation requests waiting for it. A REQUEST_LIQUIDATION or RECORD_LOSS item: `dispatchedAt`
 * with `dispatchOutcome` (PUT or UNCERTAIN) and the event id.
 */
import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { fromImage, toItem } from "./codec.ts";

export type Channel = "sms" | "email";
export const CHANNELS: readonly Channel[] = ["sms", "email"];

/** A channel's final state, or RETRY: not sent yet, try again later. */
export type ChannelState = "SENT" | "FAILED" | "UNCERTAIN" | "NONE" | "RETRY";
export type FinalChannelState = Exclude<ChannelState, "RETRY">;
const FINAL: ReadonlySet<string> = new Set(["SENT", "FAILED", "UNCERTAIN", "NONE"]);

export interface ChannelResult {
  readonly state: ChannelState;
  /** The SNS message id when SENT; the reason otherwise. */
  readonly detail: string;
}

export type OutboxItem = Record<string, unknown>;

/** What claiming a notice found. */
export type NoticeClaim =
  | {
      readonly status: "CLAIMED";
      readonly item: OutboxItem;
      /** Per channel: "SEND" (this claim owns it), or its state already (an unconfirmed claim is UNCERTAIN). */
      readonly channels: Readonly<Record<Channel, "SEND" | FinalChannelState>>;
    }
  | { readonly status: "DONE" }
  | { readonly status: "BUSY"; readonly retryInSeconds: number }
  | { readonly status: "MISSING" };

/** What holding a liquidation request on its call notice found. */
export type HoldResult =
  | { readonly status: "HELD" }
  | { readonly status: "NOTICE_SENT" }
  | { readonly status: "NOTICE_UNDELIVERABLE"; readonly whenUndelivered: string }
  | { readonly status: "NOTICE_MISSING" };

/** What claiming an event's dispatch found. */
export type DispatchClaim =
  | { readonly status: "CLAIMED" }
  | { readonly status: "DONE" }
  | { readonly status: "BUSY"; readonly leaseUntilMs: number }
  /** An earlier claim was never confirmed: it is recorded as uncertain (dispatched at its claim time). */
  | { readonly status: "UNCERTAIN"; readonly claimedAt: string };

const key = (outboxId: string) => ({ outboxId: { S: outboxId } });

const values = (record: Record<string, unknown>) => toItem(record);

async function conditional<T>(
  run: () => Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; item: OutboxItem | undefined }> {
  try {
    return { ok: true, value: await run() };
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) {
      return { ok: false, item: error.Item ? fromImage(error.Item) : undefined };
    }
    throw error;
  }
}

const isDone = (item: OutboxItem) => item.outcome !== undefined || item.deliveredAt !== undefined;

export class OutboxClaims {
  constructor(
    private readonly dynamo: DynamoDBClient,
    private readonly table: string,
  ) {}

  /**
   * Claims a notice for sending until `leaseUntilMs` (wall clock): one conditional write that also marks
   * every channel not yet tried IN_FLIGHT. A channel found IN_FLIGHT was claimed before and never confirmed.
   */
  async claimNotice(notificationId: string, token: string, nowMs: number, leaseUntilMs: number) {
    const result = await conditional(() =>
      this.dynamo.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: key(notificationId),
          UpdateExpression:
            "SET claimToken = :token, claimUntilMs = :until, attempts = if_not_exists(attempts, :zero) + :one, " +
            "smsState = if_not_exists(smsState, :inFlight), emailState = if_not_exists(emailState, :inFlight)",
          ConditionExpression:
            "attribute_exists(outboxId) AND attribute_not_exists(outcome) AND attribute_not_exists(deliveredAt) " +
            "AND (attribute_not_exists(claimUntilMs) OR claimUntilMs < :now)",
          ExpressionAttributeValues: values({
            ":token": token,
            ":until": leaseUntilMs,
            ":zero": 0,
            ":one": 1,
            ":inFlight": "IN_FLIGHT",
            ":now": nowMs,
          }),
          ReturnValues: "ALL_OLD",
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        }),
      ),
    );
    if (!result.ok) {
      if (!result.item) return { status: "MISSING" } as const;
      if (isDone(result.item)) return { status: "DONE" } as const;
      const until = Number(result.item.claimUntilMs ?? 0);
      return { status: "BUSY", retryInSeconds: Math.max(1, Math.ceil((until - nowMs) / 1000)) } as const;
    }
    const item = fromImage(result.value.Attributes ?? {});
    const channelOf = (state: unknown): "SEND" | FinalChannelState => {
      if (state === undefined) return "SEND";
      if (typeof state === "string" && FINAL.has(state)) return state as FinalChannelState;
      return "UNCERTAIN";
    };
    return {
      status: "CLAIMED",
      item,
      channels: { sms: channelOf(item.smsState), email: channelOf(item.emailState) },
    } as const satisfies NoticeClaim;
  }

  /**
   * Completes a claim: records each channel; a RETRY channel is released for the next claim. When every
   * channel is final the notice gets its outcome: SENT if SNS confirmed a channel, else UNDELIVERABLE, with
   * the policy's `whenUndelivered` for the requests held on it. An UNCERTAIN channel (a lost reply, or a
   * claim that never came back) may have reached the borrower, and may not: it does not count as told.
   */
  async completeNotice(
    notificationId: string,
    token: string,
    results: Readonly<Record<Channel, ChannelResult>>,
    at: string,
    whenUndelivered: string,
  ): Promise<"SENT" | "UNDELIVERABLE" | "PENDING"> {
    const set: string[] = [];
    const remove = ["claimToken", "claimUntilMs"];
    const attributes: Record<string, unknown> = { ":token": token };
    for (const channel of CHANNELS) {
      const { state, detail } = results[channel];
      if (state === "RETRY") {
        remove.push(`${channel}State`);
        continue;
      }
      set.push(`${channel}State = :${channel}State`, `${channel}Detail = :${channel}Detail`);
      attributes[`:${channel}State`] = state;
      attributes[`:${channel}Detail`] = detail;
    }
    const states = CHANNELS.map((channel) => results[channel].state);
    const outcome = states.includes("RETRY") ? "PENDING" : states.includes("SENT") ? "SENT" : "UNDELIVERABLE";
    if (outcome === "SENT") set.push("outcome = :outcome, sentAt = :at");
    if (outcome === "UNDELIVERABLE") {
      set.push("outcome = :outcome, undeliverableAt = :at, whenUndelivered = :when");
      attributes[":when"] = whenUndelivered;
    }
    if (outcome !== "PENDING") Object.assign(attributes, { ":outcome": outcome, ":at": at });
    await this.dynamo.send(
      new UpdateItemCommand({
        TableName: this.table,
        Key: key(notificationId),
        UpdateExpression: `${set.length > 0 ? `SET ${set.join(", ")} ` : ""}REMOVE ${remove.join(", ")}`,
        ConditionExpression: "claimToken = :token",
        ExpressionAttributeValues: values(attributes),
      }),
    );
    return outcome;
  }

  /**
   * Holds a liquidation request on its call notice: adds it to the notice's `held` set unless the notice
   * already has its outcome. The notice's completion (a MODIFY on the stream) then releases it. Both are
   * conditional writes on the one notice item, so exactly one of them sees the other: no request is both
   * held and released early, and none is held after its notice went out.
   */
  async holdOnNotice(notificationId: string, requestId: string): Promise<HoldResult> {
    const result = await conditional(() =>
      this.dynamo.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: key(notificationId),
          UpdateExpression: "ADD held :request SET hasHeld = :true",
          ConditionExpression:
            "attribute_exists(outboxId) AND attribute_not_exists(outcome) AND attribute_not_exists(deliveredAt)",
          ExpressionAttributeValues: { ":request": { SS: [requestId] }, ":true": { BOOL: true } },
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        }),
      ),
    );
    if (result.ok) return { status: "HELD" };
    if (!result.item) return { status: "NOTICE_MISSING" };
    return noticeOutcome(result.item);
  }

  /** Claims an event's dispatch until `leaseUntilMs`. An earlier claim that expired unconfirmed is UNCERTAIN. */
  async claimDispatch(reference: string, token: string, now: string, nowMs: number, leaseUntilMs: number) {
    const result = await conditional(() =>
      this.dynamo.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: key(reference),
          UpdateExpression:
            "SET dispatchToken = :token, dispatchClaimedAt = :now, dispatchLeaseUntilMs = :until",
          ConditionExpression:
            "attribute_exists(outboxId) AND attribute_not_exists(dispatchedAt) AND attribute_not_exists(dispatchToken)",
          ExpressionAttributeValues: values({ ":token": token, ":now": now, ":until": leaseUntilMs }),
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        }),
      ),
    );
    if (result.ok) return { status: "CLAIMED" } as const;
    const item = result.item;
    if (!item) throw new Error(`outbox item ${reference} does not exist`);
    if (item.dispatchedAt !== undefined) return { status: "DONE" } as const;
    const leaseUntil = Number(item.dispatchLeaseUntilMs ?? 0);
    if (leaseUntil >= nowMs) return { status: "BUSY", leaseUntilMs: leaseUntil } as const;
    const claimedAt = String(item.dispatchClaimedAt);
    await this.completeDispatch(reference, String(item.dispatchToken), "UNCERTAIN", claimedAt, "");
    return { status: "UNCERTAIN", claimedAt } as const;
  }

  /** Records the dispatch (PUT with its event id, or UNCERTAIN) under the claim's token. */
  async completeDispatch(
    reference: string,
    token: string,
    outcome: "PUT" | "UNCERTAIN",
    at: string,
    eventId: string,
  ): Promise<void> {
    await this.dynamo.send(
      new UpdateItemCommand({
        TableName: this.table,
        Key: key(reference),
        UpdateExpression:
          "SET dispatchedAt = :at, dispatchOutcome = :outcome, eventId = :eventId REMOVE dispatchLeaseUntilMs",
        ConditionExpression: "dispatchToken = :token AND attribute_not_exists(dispatchedAt)",
        ExpressionAttributeValues: values({
          ":at": at,
          ":outcome": outcome,
          ":eventId": eventId,
          ":token": token,
        }),
      }),
    );
  }

  /** Releases a claim whose dispatch certainly did not happen, so a retry can claim it again. */
  async releaseDispatch(reference: string, token: string): Promise<void> {
    await conditional(() =>
      this.dynamo.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: key(reference),
          UpdateExpression: "REMOVE dispatchToken, dispatchClaimedAt, dispatchLeaseUntilMs",
          ConditionExpression: "dispatchToken = :token AND attribute_not_exists(dispatchedAt)",
          ExpressionAttributeValues: values({ ":token": token }),
        }),
      ),
    );
  }

  async item(outboxId: string): Promise<OutboxItem | undefined> {
    const result = await this.dynamo.send(
      new GetItemCommand({ TableName: this.table, Key: key(outboxId), ConsistentRead: true }),
    );
    return result.Item ? fromImage(result.Item) : undefined;
  }
}

/** What a notice item (an image or a read) says for the liquidation requests held on it. */
export function noticeOutcome(item: OutboxItem): HoldResult {
  if (item.outcome === "UNDELIVERABLE") {
    return { status: "NOTICE_UNDELIVERABLE", whenUndelivered: String(item.whenUndelivered ?? "LIQUIDATE") };
  }
  if (item.outcome === "SENT" || item.deliveredAt !== undefined) return { status: "NOTICE_SENT" };
  return { status: "HELD" };
}
