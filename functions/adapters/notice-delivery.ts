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
import type { NoticeSender, ProfileReader } from "./notice-ports.ts";
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

async function recipientOf(ports: DeliveryPorts, accountId: string): Promise<Recipient> {
  try {
    const profile = await ports.profiles.profileOf(accountId);
    const policy = ports.policies.get(profile.policyId)?.policy ?? null;
    return { profile, policy, why: policy ? "" : `policy ${profile.policyId} is not deployed` };
  } catch (error) {
    return { profile: null, policy: null, why: error instanceof Error ? error.message : String(error) };
  }
}

/** One channel's attempt, for a channel this claim owns; RETRY past the deadline becomes FAILED. */
async function sendChannel(
  ports: DeliveryPorts,
  channel: Channel,
  recipient: Recipient,
  payload: ReturnType<typeof parseNoticePayload>,
): Promise<ChannelResult> {
  const { profile, policy } = recipient;
  if (!profile) return { state: "FAILED", detail: recipient.why };
  const rendered = renderNotice(payload, {
    ...(profile.borrowerName ? { borrowerName: profile.borrowerName } : {}),
    timeZone: profile.timeZone,
    currency: profile.currency,
  });
  if (channel === "email") {
    const email = profile.contact.email;
    if (!email) return { state: "NONE", detail: "no email address on the PROFILE" };
    const address = {
      notificationId: payload.notificationId,
      notice: payload.notice,
      accountId: payload.accountId,
    };
    return ports.sender.sendEmail(address, email, rendered);
  }
  const phone = profile.contact.phoneE164;
  if (!phone) return { state: "NONE", detail: "no phone number on the PROFILE" };
  const destination = checkSmsDestination(phone, policy?.smsCountryCodes ?? null);
  if (!destination.ok) return { state: "FAILED", detail: destination.reason };
  await ports.smsTurn();
  return ports.sender.sendSms(phone, rendered);
}

const backoffSeconds = (attempts: number) => Math.min(2 ** Math.max(0, attempts - 1), 8);

export async function deliverNotice(
  ports: DeliveryPorts,
  notificationId: string,
  clock: { readonly now: string; readonly token: string; readonly leaseMs: number },
): Promise<Delivery> {
  const nowMs = Date.now();
  const claim = await ports.claims.claimNotice(notificationId, clock.token, nowMs, nowMs + clock.leaseMs);
  if (claim.status === "DONE") return { status: "DONE" };
  if (claim.status === "MISSING") return { status: "MISSING" };
  if (claim.status === "BUSY") return { status: "RETRY", inSeconds: claim.retryInSeconds, attempts: 0 };
  const payload = parseNoticePayload(String(claim.item.payload));
  const recipient = await recipientOf(ports, payload.accountId);
  const withinSeconds = recipient.policy?.noticeDeliverWithinSeconds ?? DEFAULT_DELIVER_WITHIN_SECONDS;
  const deadlineMs = Date.parse(String(claim.item.createdAt)) + withinSeconds * 1000;
  const late = Date.parse(clock.now) >= deadlineMs;
  const results = {} as Record<Channel, ChannelResult>;
  for (const channel of CHANNELS) {
    const state: "SEND" | FinalChannelState = claim.channels[channel];
    if (state !== "SEND") {
      results[channel] = {
        state,
        detail: String(claim.item[`${channel}Detail`] ?? "claimed, never confirmed"),
      };
      continue;
    }
    // Past the deadline a channel still gets this one attempt; only a throttled one then fails.
    const result = await sendChannel(ports, channel, recipient, payload);
    results[channel] =
      result.state === "RETRY" && late
        ? { state: "FAILED", detail: `not delivered within ${withinSeconds} s ${result.detail}`.trim() }
        : result;
  }
  const whenUndelivered = recipient.policy?.whenNoticeUndelivered ?? "LIQUIDATE";
  const outcome = await ports.claims.completeNotice(
    notificationId,
    clock.token,
    results,
    clock.now,
    whenUndelivered,
  );
  const attempts = Number(claim.item.attempts ?? 0) + 1;
  if (outcome === "PENDING") return { status: "RETRY", inSeconds: backoffSeconds(attempts), attempts };
  return { status: "COMPLETE", outcome, accountId: payload.accountId, notice: payload.notice, results };
}
