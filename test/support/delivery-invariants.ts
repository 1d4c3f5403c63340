/**
 * The delivery invariants of a run, checked from the local AWS endpoint's own logs (what SNS and
 * EventBridge accepted, in one sequence), with the outbox only to name what each notice and request is:
 *
 * 1. Every LiquidationRequested came after a publish of its call notice, or its call notice is recorded
 *    UNDELIVERABLE and the event says `noticeDelivered: false` (the policy's decision).
 * 2. At most one SMS and one email per notification id.
 * 3. No reference put twice, and a call's attempts go out one at a time, in order.
 * 4. Every notice ends SENT or UNDELIVERABLE; a SENT one was accepted by the endpoint on some channel.
 */
import type { PutEventsEntry, SnsPublish } from "../../functions/local/aws-stub/index.ts";
import { maskReference } from "../../functions/notify/format.ts";

type Item = Record<string, unknown>;

interface Endpoint {
  readonly published: readonly SnsPublish[];
  readonly puts: readonly PutEventsEntry[];
}

/** The SMS of a notice ends with its masked reference ("Ref ACC-...0042:v3:0:call"). */
function smsRef(notice: Item): string {
  return `Ref ${maskReference(String(notice.outboxId), String(notice.accountId))}`;
}

/** Every publish of a notice the endpoint accepted (a failed reply or a silent drop included), by channel. */
function publishesOf(endpoint: Endpoint, notice: Item) {
  const id = String(notice.outboxId);
  const ref = smsRef(notice);
  return {
    email: endpoint.published.filter(
      (p) => p.topicArn && p.messageAttributes.notificationId?.stringValue === id,
    ),
    sms: endpoint.published.filter((p) => p.phoneNumber && p.message.endsWith(ref)),
  };
}

export function deliveryViolations(outbox: readonly Item[], endpoint: Endpoint): string[] {
  const violations: string[] = [];
  const notices = new Map(
    outbox.filter((item) => item.kind === "NOTIFY").map((item) => [String(item.outboxId), item]),
  );
  for (const notice of notices.values()) {
    const { email, sms } = publishesOf(endpoint, notice);
    if (email.length > 1) violations.push(`${notice.outboxId}: ${email.length} emails`);
    if (sms.length > 1) violations.push(`${notice.outboxId}: ${sms.length} SMS`);
    if (notice.outcome !== "SENT" && notice.outcome !== "UNDELIVERABLE") {
      violations.push(`${notice.outboxId}: neither sent nor recorded undeliverable`);
    }
    if (notice.outcome === "SENT" && email.length + sms.length === 0) {
      violations.push(`${notice.outboxId}: recorded sent, but the endpoint accepted nothing for it`);
    }
  }
  const references = new Set<string>();
  const lastAttempt = new Map<string, number>();
  for (const put of endpoint.puts) {
    const detail = JSON.parse(put.detail) as Record<string, unknown>;
    const reference = String(detail.reference);
    if (references.has(reference)) violations.push(`${reference}: put twice`);
    references.add(reference);
    if (put.detailType !== "LiquidationRequested") continue;
    const callId = String(detail.callId);
    const attempt = Number(detail.attempt);
    if (attempt <= (lastAttempt.get(callId) ?? 0))
      violations.push(`${reference}: attempt ${attempt} out of order`);
    lastAttempt.set(callId, attempt);
    const notice = notices.get(String(detail.callNotificationId));
    if (!notice) {
      violations.push(
        `${reference}: its call notice ${String(detail.callNotificationId)} is not in the outbox`,
      );
      continue;
    }
    if (detail.noticeDelivered === false) {
      if (notice.outcome !== "UNDELIVERABLE")
        violations.push(`${reference}: sent without notice, notice not undeliverable`);
      continue;
    }
    const { email, sms } = publishesOf(endpoint, notice);
    if (![...email, ...sms].some((publish) => publish.seq < put.seq)) {
      violations.push(`${reference}: put before any publish of its call notice ${String(notice.outboxId)}`);
    }
  }
  return violations;
}
