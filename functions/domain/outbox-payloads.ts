/**
 * The REQUEST_LIQUIDATION, RECORD_LOSS and FUND_FEE outbox payloads, checked when the outbox relay reads them: what
 * goes on the bus is what the engine wrote, and an item that is not (an older version's, one edited by
 * hand) fails with its path and reason instead of reaching the execution system. Every field is kept as
 * written: the event's detail is the payload.
 */
import { z } from "zod";

const decimal = z.string().regex(/^-?\d+(\.\d+)?$/, { error: "must be a decimal string" });

const liquidationRequest = z.looseObject({
  kind: z.literal("REQUEST_LIQUIDATION"),
  requestId: z.string().min(1),
  accountId: z.string().min(1),
  callId: z.string().min(1),
  callNotificationId: z.string().min(1),
  attempt: z.int().min(1),
  reason: z.enum(["DEADLINE", "HARD_FLOOR", "RETRY"]),
  plan: z.looseObject({
    steps: z
      .array(z.looseObject({ side: z.enum(["SELL", "BUY"]), quantity: decimal, limitPrice: decimal }))
      .min(1),
    restoresTarget: z.boolean(),
  }),
});

const lossRecord = z.looseObject({
  kind: z.literal("RECORD_LOSS"),
  accountId: z.string().min(1),
  callId: z.string().nullable(),
  amount: decimal,
  /** The open position ADL can close (machine.ts LossPosition); absent in a loss with none, and in older items. */
  position: z
    .strictObject({
      instrument: z.string().min(1),
      side: z.enum(["LONG", "SHORT"]),
      quantity: decimal,
      quantityScale: z.int().min(0).max(18),
      markPrice: decimal,
      bankruptcyPrice: decimal,
    })
    .optional(),
});

const fundFee = z.looseObject({
  kind: z.literal("FUND_FEE"),
  flowId: z.string().min(1),
  accountId: z.string().min(1),
  callId: z.string().min(1),
  requestId: z.string().min(1),
  currency: z.string().min(1),
  amount: decimal,
});
export type FundFeePayload = z.infer<typeof fundFee>;

export type LossPayload = z.infer<typeof lossRecord>;
export type LiquidationPayload = z.infer<typeof liquidationRequest> | LossPayload;

export class OutboxPayloadError extends Error {
  override readonly name = "OutboxPayloadError";
}

/** Parses a REQUEST_LIQUIDATION or RECORD_LOSS payload; throws OutboxPayloadError naming every bad field. */
export function parseLiquidationPayload(kind: string, json: string): LiquidationPayload {
  return kind === "REQUEST_LIQUIDATION"
    ? parsePayload(kind, json, liquidationRequest)
    : parsePayload(kind, json, lossRecord);
}

/** Parses a FUND_FEE payload (a settled liquidation's fee for the insurance fund). */
export function parseFundFeePayload(json: string): FundFeePayload {
  return parsePayload("FUND_FEE", json, fundFee);
}

function parsePayload<T>(kind: string, json: string, schema: z.ZodType<T>): T {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new OutboxPayloadError(`the ${kind} payload is not JSON`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `$.${issue.path.join(".")}: ${issue.message}`);
    throw new OutboxPayloadError(`the ${kind} payload breaks its schema: ${issues.join("; ")}`);
  }
  return parsed.data;
}
