/**
 * The NOTIFY outbox payload, checked when it is read: the notifier renders what the engine wrote, but an
 * item written by an older version, by hand or by mistake must fail with its path and reason, never go out
 * as a notice with a missing or wrong figure. Money stays a decimal string (render.ts formats it).
 */
import { z } from "zod";
import { NOTICE_KINDS } from "../domain/machine.ts";
import type { NoticePayload } from "./render.ts";

const decimal = z.string().regex(/^-?\d+(\.\d+)?$/, { error: "must be a decimal string" });
const target = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("HOLDING"), asset: z.string() }),
  z.object({ kind: z.literal("POSITION"), instrument: z.string() }),
]);

const cureOption = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("DEPOSIT"), amount: decimal, currency: z.string() }),
  z.object({
    kind: z.literal("REDUCE"),
    target,
    side: z.enum(["SELL", "BUY"]),
    quantity: decimal,
    notional: decimal,
  }),
]);

const noticePayload = z.object({
  notificationId: z.string().min(1),
  notice: z.enum(NOTICE_KINDS),
  accountId: z.string().min(1),
  callId: z.string().nullable(),
  amountDue: decimal.nullable(),
  deadlineAt: z.iso.datetime().nullable(),
  marginRatio: decimal.nullable(),
  cureOptions: z.array(cureOption),
  loss: decimal.nullable().optional(),
  reason: z.enum(["DEADLINE", "HARD_FLOOR"]).optional(),
  met: z.enum(["DEPOSIT", "MARKET", "LIQUIDATION", "WAIVED"]).optional(),
  restoreAmount: decimal.optional(),
  previousAmountDue: decimal.optional(),
  sold: z
    .array(
      z.object({
        target,
        side: z.enum(["SELL", "BUY"]),
        quantity: decimal,
        averagePrice: decimal,
        fee: decimal,
      }),
    )
    .optional(),
});

export class NoticePayloadError extends Error {
  override readonly name = "NoticePayloadError";
}

/** Parses a NOTIFY payload read from the outbox; throws NoticePayloadError naming every bad field. */
export function parseNoticePayload(json: string): NoticePayload {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new NoticePayloadError("the NOTIFY payload is not JSON");
  }
  const parsed = noticePayload.safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `$.${issue.path.join(".")}: ${issue.message}`);
    throw new NoticePayloadError(`the NOTIFY payload breaks its schema: ${issues.join("; ")}`);
  }
  return parsed.data as NoticePayload;
}
