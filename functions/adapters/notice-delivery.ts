/**
 * Delivering one notice from the notice queue: claim it on its outbox item, send each channel this claim
 * owns (SMS paced to the account's SNS throughput, email through the topic), and complete the claim. A
 * throttled channel is released for a later attempt until the notice's delivery deadline (the policy's
 * `notices.deliverWithinSeconds` after the notice was written); past it, the channel is FAILED and the
 * notice, if no channel went out, UNDELIVERABLE. Channels are independent: an SMS exhausted by the spend
 * limit or throttled for minutes does not hold the email back.
 */
import type { ProfileItem } from "../domain/contract.ts";
import type { Policy } from "../domain/policy.ts";
import { parseNoticePayload } from "../notify/payload.ts";
import { checkSmsDestination } from "../notify/phone.ts";
import { renderNotice } from "../notify/render.ts";
import { NoProfileError, type NoticeSender, type ProfileReader } from "./notice-ports.ts";
import {
  CHANNELS,
  type Channel,
  type ChannelResult,
  type FinalChannelState,
  type OutboxClaims,
} from "./outbox-claims.ts";

/** The policy defaults when the account's policy cannot be read: see docs/notifications.md. */
const DEFAULT_DELIVER_WITHIN_SECONDS = 600;

export interface DeliveryPorts {
  readonly claims: OutboxClaims;
  readonly profiles: ProfileReader;
  readonly sender: NoticeSender;
  readonly policies: ReadonlyMap<string, { readonly policy: Policy }>;
  /** Waits for the next SMS slot of this invocation's share of the throughput. */
  readonly smsTurn: () => Promise<void>;
}

export type Delivery =
  | { readonly status: "DONE" }
  | { readonly status: "MISSING" }
  | { readonly status: "RETRY"; readonly inSeconds: number; readonly attempts: number }
  | {
      readonly status: "COMPLETE";
      readonly outcome: "SENT" | "UNDELIVERABLE";
      readonly accountId: string;
      readonly notice: string;
      readonly results: Readonly<Record<Channel, ChannelResult>>;
    };

interface Recipient {
  readonly profile: ProfileItem | null;
  readonly policy: Policy | null;
  readonly why: string;
}

/**
 * Who to tell, and under which policy. Only "nobody to notify" becomes a FAILED channel; any other error (a
 * throttled read, say) is thrown before the claim, so the message comes back and the notice is tried again.
 */
async function recipientOf(ports: DeliveryPorts, accountId: string): Promise<Recipient> {
  try {
    const profile = await ports.profiles.profileOf(accountId);
    const policy = ports.policies.get(profile.policyId)?.policy ?? null;
    return { profile, policy, why: policy ? "" : `policy ${profile.policyId} is not deployed` };
  } catch (error) {
    if (!(error instanceof NoProfileError)) throw error;
    return { profile: null, policy: null, why: error.message };
  }
}

/** The notice as the relay queued it: its id. The text comes from the outbox item, never from a message. */
export interface NoticeMessage {
  readonly notificationId: string;
}

/** The outbox item's payload and creation time. */
interface NoticeSource {
  readonly payload: string;
  readonly createdAt: string;
}

/**
 * Everything the sends need, prepared before the claim: once a channel is IN_FLIGHT nothing but the SNS call
 * runs, so a payload that breaks its schema, a PROFILE that is gone or a notice that cannot be rendered is a
 * FAILED channel with its reason, never an IN_FLIGHT one that a later attempt would take for UNCERTAIN.
 */
interface Prepared {
  readonly policy: Policy | null;
  readonly deadlineMs: number;
  readonly withinSeconds: number;
  readonly accountId: string;
  readonly notice: string;
  /** Per channel: what to send, or the channel's final state already. */
  readonly channels: Readonly<Record<Channel, (() => Promise<ChannelResult>) | ChannelResult>>;
}

const failed = (detail: string): ChannelResult => ({ state: "FAILED", detail });

async function prepare(ports: DeliveryPorts, source: NoticeSource): Promise<Prepared> {
  let payload: ReturnType<typeof parseNoticePayload>;
  try {
    payload = parseNoticePayload(source.payload);
  } catch (error) {
    const why = failed(error instanceof Error ? error.message : String(error));
    return {
      policy: null,
      deadlineMs: 0,
      withinSeconds: 0,
      accountId: "",
      notice: "",
      channels: { sms: why, email: why },
    };
  }
  const recipient = await recipientOf(ports, payload.accountId);
  const withinSeconds = recipient.policy?.noticeDeliverWithinSeconds ?? DEFAULT_DELIVER_WITHIN_SECONDS;
  const base = {
    policy: recipient.policy,
    deadlineMs: Date.parse(source.createdAt) + withinSeconds * 1000,
    withinSeconds,
    accountId: payload.accountId,
    notice: payload.notice,
  };
  const { profile } = recipient;
  if (!profile) return { ...base, channels: { sms: failed(recipient.why), email: failed(recipient.why) } };
  let rendered: ReturnType<typeof renderNotice>;
  try {
    rendered = renderNotice(payload, {
      ...(profile.borrowerName ? { borrowerName: profile.borrowerName } : {}),
      timeZone: profile.timeZone,
      currency: profile.currency,
    });
  } catch (error) {
    const why = failed(`cannot render: ${error instanceof Error ? error.message : String(error)}`);
    return { ...base, channels: { sms: why, email: why } };
  }
  const { email, phoneE164: phone } = profile.contact;
  const address = {
    notificationId: payload.notificationId,
    notice: payload.notice,
    accountId: payload.accountId,
  };
  // Under a policy that is not deployed, no country is allowed: nothing says where an SMS may go.
  const countries = recipient.policy ? recipient.policy.smsCountryCodes : [];
  const destination = phone ? checkSmsDestination(phone, countries) : null;
  return {
    ...base,
    channels: {
      email: email
        ? () => ports.sender.sendEmail(address, email, rendered)
        : { state: "NONE", detail: "no email address on the PROFILE" },
      sms:
        !phone || !destination
          ? { state: "NONE", detail: "no phone number on the PROFILE" }
          : !destination.ok
            ? failed(destination.reason)
            : async () => {
                await ports.smsTurn();
                return ports.sender.sendSms(phone, rendered);
              },
    },
  };
}

const backoffSeconds = (attempts: number) => Math.min(2 ** Math.max(0, attempts - 1), 8);

export async function deliverNotice(
  ports: DeliveryPorts,
  message: NoticeMessage,
  clock: { readonly now: string; readonly token: string; readonly leaseMs: number },
): Promise<Delivery> {
  const item = await ports.claims.item(message.notificationId);
  if (!item) return { status: "MISSING" };
  if (item.outcome !== undefined || item.deliveredAt !== undefined) return { status: "DONE" };
  const prepared = await prepare(ports, { payload: String(item.payload), createdAt: String(item.createdAt) });
  const { notificationId } = message;
  const nowMs = Date.now();
  const claim = await ports.claims.claimNotice(notificationId, clock.token, nowMs, nowMs + clock.leaseMs);
  if (claim.status === "DONE") return { status: "DONE" };
  if (claim.status === "MISSING") return { status: "MISSING" };
  if (claim.status === "BUSY") return { status: "RETRY", inSeconds: claim.retryInSeconds, attempts: 0 };
  const late = Date.parse(clock.now) >= prepared.deadlineMs;
  // The channels are independent: both go out at once, and neither waits for the other's reply.
  const sent = await Promise.all(
    CHANNELS.map(async (channel): Promise<ChannelResult> => {
      const state: "SEND" | FinalChannelState = claim.channels[channel];
      const send = prepared.channels[channel];
      if (state !== "SEND") {
        return { state, detail: String(claim.item[`${channel}Detail`] ?? "claimed, never confirmed") };
      }
      // Past the deadline a channel still gets this one attempt; only a throttled one then fails.
      const result = typeof send === "function" ? await send() : send;
      return result.state === "RETRY" && late
        ? failed(`not delivered within ${prepared.withinSeconds} s ${result.detail}`.trim())
        : result;
    }),
  );
  const results = Object.fromEntries(CHANNELS.map((channel, index) => [channel, sent[index]])) as Record<
    Channel,
    ChannelResult
  >;
  // No policy to decide: hold the liquidation for an operator rather than sell on a default.
  const whenUndelivered = prepared.policy?.whenNoticeUndelivered ?? "HOLD";
  const outcome = await ports.claims.completeNotice(
    notificationId,
    clock.token,
    results,
    clock.now,
    whenUndelivered,
  );
  const attempts = Number(claim.item.attempts ?? 0) + 1;
  if (outcome === "PENDING") return { status: "RETRY", inSeconds: backoffSeconds(attempts), attempts };
  return { status: "COMPLETE", outcome, accountId: prepared.accountId, notice: prepared.notice, results };
}
