/**
 * The notifier's rules for one notice (adapters/notice-delivery.ts), with its ports faked: the outbox claims
 * kept in memory with the same conditions as the DynamoDB writes, and an SNS sender that records what it
 * was asked to publish and answers as a test tells it to.
 */

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { type DeliveryPorts, deliverNotice } from "../../functions/adapters/notice-delivery.ts";
import type { NoticeSender } from "../../functions/adapters/notice-ports.ts";
import type {
  Channel,
  ChannelResult,
  OutboxClaims,
  OutboxItem,
} from "../../functions/adapters/outbox-claims.ts";
import { parsePolicies } from "../../functions/adapters/settings.ts";
import type { ProfileItem } from "../../functions/domain/contract.ts";

const CREATED = "2026-11-24T12:00:00.000Z";
const at = (seconds: number) => new Date(Date.parse(CREATED) + seconds * 1000).toISOString();
const policies = parsePolicies(
  readFileSync(new URL("../../lib/config/policies.json", import.meta.url), "utf8"),
);
const [policyId] = [...policies.keys()];

/** The claims of outbox-claims.ts, in memory: the same conditions, the same states. */
function memoryClaims(item: OutboxItem) {
  const fake = {
    item: async () => ({ ...item }),
    claimNotice: async (_id: string, token: string, nowMs: number, untilMs: number) => {
      if (item.outcome) return { status: "DONE" };
      if (item.claimUntilMs !== undefined && Number(item.claimUntilMs) >= nowMs)
        return { status: "BUSY", retryInSeconds: 1 };
      const old = { ...item };
      Object.assign(item, {
        claimToken: token,
        claimUntilMs: untilMs,
        attempts: Number(item.attempts ?? 0) + 1,
      });
      item.smsState ??= "IN_FLIGHT";
      item.emailState ??= "IN_FLIGHT";
      const of = (state: unknown) =>
        state === undefined ? "SEND" : state === "IN_FLIGHT" ? "UNCERTAIN" : state;
      return { status: "CLAIMED", item: old, channels: { sms: of(old.smsState), email: of(old.emailState) } };
    },
    completeNotice: async (
      _id: string,
      token: string,
      results: Record<Channel, ChannelResult>,
      now: string,
      when: string,
    ) => {
      if (item.claimToken !== token) throw new Error("lost the claim");
      const states = (["sms", "email"] as const).map((channel) => {
        const { state, detail } = results[channel];
        if (state === "RETRY") delete item[`${channel}State`];
        else Object.assign(item, { [`${channel}State`]: state, [`${channel}Detail`]: detail });
        return state;
      });
      delete item.claimToken;
      delete item.claimUntilMs;
      if (states.includes("RETRY")) return "PENDING";
      const outcome = states.includes("SENT") ? "SENT" : "UNDELIVERABLE";
      Object.assign(item, {
        outcome,
        ...(outcome === "SENT" ? { sentAt: now } : { undeliverableAt: now, whenUndelivered: when }),
      });
      return outcome;
    },
  };
  return fake as unknown as OutboxClaims;
}

function sender(answers: { sms?: ChannelResult[]; email?: ChannelResult[] } = {}) {
  const calls: string[] = [];
  const next = (list: ChannelResult[] | undefined): ChannelResult =>
    list?.shift() ?? { state: "SENT", detail: "m-1" };
  const port: NoticeSender = {
    sendSms: async (phone) => {
      calls.push(`sms ${phone}`);
      return next(answers.sms);
    },
    sendEmail: async (_notice, recipient) => {
      calls.push(`email ${recipient}`);
      return next(answers.email);
    },
  };
  return { port, calls };
}

const payload = JSON.stringify({
  kind: "NOTIFY",
  notificationId: "ACC-1:v2:0:call",
  notice: "CALL",
  accountId: "ACC-1",
  callId: "ACC-1:call:2",
  amountDue: "1000.00",
  deadlineAt: at(86_400),
  marginRatio: "0.90",
  cureOptions: [],
});

function setup(options: {
  payload?: string;
  phone?: string;
  answers?: Parameters<typeof sender>[0];
  policy?: string;
}) {
  const item: OutboxItem = {
    outboxId: "ACC-1:v2:0:call",
    kind: "NOTIFY",
    createdAt: CREATED,
    payload: options.payload ?? payload,
  };
  const { port, calls } = sender(options.answers);
  const profile = {
    accountId: "ACC-1",
    sk: "PROFILE",
    currency: "USD",
    policyId: options.policy ?? policyId,
    timeZone: "America/New_York",
    contact: { phoneE164: options.phone ?? "+12125550142", email: "borrower@example.com" },
  } as unknown as ProfileItem;
  const ports: { -readonly [K in keyof DeliveryPorts]: DeliveryPorts[K] } = {
    claims: memoryClaims(item),
    profiles: { profileOf: async () => profile },
    sender: port,
    policies,
    smsTurn: async () => {},
  };
  const deliver = (seconds: number, token = `t${seconds}`) =>
    deliverNotice(ports, { notificationId: "ACC-1:v2:0:call" }, { now: at(seconds), token, leaseMs: 60_000 });
  return { item, calls, deliver, ports };
}

describe("delivering one notice", () => {
  it("tries again later, before any claim, when the PROFILE cannot be read for now", async () => {
    const { item, calls, deliver, ports } = setup({});
    ports.profiles = {
      profileOf: async () => {
        throw Object.assign(new Error("Rate exceeded"), { name: "ProvisionedThroughputExceededException" });
      },
    };
    await expect(deliver(1)).rejects.toThrow("Rate exceeded");
    expect(calls).toEqual([]);
    expect([item.claimToken, item.smsState, item.outcome]).toEqual([undefined, undefined, undefined]);
  });

  it("sends the SMS and the email once, and records the notice SENT", async () => {
    const { item, calls, deliver } = setup({});
    expect((await deliver(1)).status).toBe("COMPLETE");
    // The two channels go out at once: which reaches SNS first is not fixed.
    expect([...calls].sort()).toEqual(["email borrower@example.com", "sms +12125550142"]);
    expect([item.smsState, item.emailState, item.outcome, item.sentAt]).toEqual([
      "SENT",
      "SENT",
      "SENT",
      at(1),
    ]);
    expect((await deliver(2)).status).toBe("DONE");
    expect(calls).toHaveLength(2);
  });

  it("waits out a throttled SMS while the email goes, and fails the SMS past the deadline", async () => {
    const throttled = { state: "RETRY" as const, detail: "Throttling: Rate exceeded" };
    const { item, calls, deliver } = setup({ answers: { sms: [throttled, throttled] } });
    expect(await deliver(1)).toEqual({ status: "RETRY", inSeconds: 1, attempts: 1 });
    expect([...calls].sort()).toEqual(["email borrower@example.com", "sms +12125550142"]);
    expect([item.smsState, item.emailState, item.outcome]).toEqual([undefined, "SENT", undefined]);
    // The default deadline is 600 s after the notice was written: the last attempt fails the SMS.
    const last = await deliver(601);
    expect(last.status).toBe("COMPLETE");
    expect(calls.slice(2)).toEqual(["sms +12125550142"]);
    expect([item.smsState, item.emailState, item.outcome]).toEqual(["FAILED", "SENT", "SENT"]);
    expect(String(item.smsDetail)).toContain("not delivered within 600 s");
  });

  it("records a notice whose payload breaks its schema UNDELIVERABLE, holds its liquidation (no policy to decide), and publishes nothing", async () => {
    const { item, calls, deliver } = setup({ payload: JSON.stringify({ kind: "NOTIFY", notice: "CALL" }) });
    const delivery = await deliver(1);
    expect(delivery.status).toBe("COMPLETE");
    expect(calls).toEqual([]);
    expect([item.smsState, item.emailState, item.outcome, item.whenUndelivered]).toEqual([
      "FAILED",
      "FAILED",
      "UNDELIVERABLE",
      "HOLD",
    ]);
  });

  it("never sends again a channel whose claim was not confirmed: it is UNCERTAIN, and the borrower is not counted as told", async () => {
    const { item, calls, deliver } = setup({});
    // A claim that died before completing: both channels IN_FLIGHT, its lease run out.
    Object.assign(item, {
      smsState: "IN_FLIGHT",
      emailState: "IN_FLIGHT",
      claimToken: "dead",
      claimUntilMs: 0,
    });
    expect((await deliver(5)).status).toBe("COMPLETE");
    expect(calls).toEqual([]);
    expect([item.smsState, item.emailState, item.outcome]).toEqual([
      "UNCERTAIN",
      "UNCERTAIN",
      "UNDELIVERABLE",
    ]);
  });

  it("refuses an SMS to a premium-rate number, and still sends the email", async () => {
    const { item, calls, deliver } = setup({ phone: "+97912345678" });
    await deliver(1);
    expect(calls).toEqual(["email borrower@example.com"]);
    expect([item.smsState, item.emailState, item.outcome]).toEqual(["FAILED", "SENT", "SENT"]);
  });
});
