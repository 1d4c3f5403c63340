/**
 * What a demo run found, computed from what the engine recorded: the audit log (whose first entry of each
 * step carries the step's effects as JSON and the price status it saw), the outbox and the events put on
 * the bus. Pure, so each count, latency and invariant check is tested on small hand-made records
 * (test/unit/findings.test.ts). The invariant checks read recorded effects and fields, never audit prose.
 */
import { dec, Rounding, toFixedString, ZERO } from "../../domain/money.ts";
import type { RunReportData, TimelineKind } from "../report.ts";
import type { Episode } from "./market.ts";

/** One row of a table scan (the audit log, the outbox, the call states), as plain values. */
export type RecordedRow = Readonly<Record<string, unknown>>;

export interface RecordedEvent {
  readonly detailType: string;
  readonly detail: Record<string, unknown>;
}

export interface LatencyStats {
  p50: number;
  p99: number;
  n: number;
}

/** What the engine recorded during a run, and what the demo knows of the ticks it published. */
export interface RunRecord {
  readonly audit: readonly RecordedRow[];
  readonly outbox: readonly RecordedRow[];
  readonly events: readonly RecordedEvent[];
  /** The asOf of each price tick the feed published, by the tick's event id (`tick:ASSET:SOURCE:SEQ`). */
  readonly tickAsOf: ReadonlyMap<string, string>;
  /** Simulated seconds per real second: latencies are reported in real milliseconds. */
  readonly speed: number;
}

export interface Findings {
  readonly liquidationRequests: number;
  /** The losses recorded, in USD at 2 places. */
  readonly loss: string;
  readonly tickToCallMs: LatencyStats;
  readonly callToNoticeMs: LatencyStats;
  /** REQUEST_LIQUIDATION effects (first or retry) of steps whose prices were not OK: 0 when halts held. */
  readonly haltedLiquidations: number;
  /** Every REQUEST_LIQUIDATION names a call whose NOTIFY CALL was recorded in the same step or earlier. */
  readonly callBeforeEveryLiquidation: boolean;
  /** Liquidations that ran out of attempts: audit entries raising the LIQUIDATION_EXHAUSTED alarm. */
  readonly exhaustedLiquidations: number;
  readonly timeline: RunReportData["timeline"];
}

/** An effect as recorded on a step's first audit entry: only the fields the checks read. */
interface RecordedEffect {
  readonly kind?: string;
  readonly notice?: string;
  readonly notificationId?: string;
  readonly callId?: string | null;
  readonly callNotificationId?: string;
}

/** One engine step as the audit log recorded it. */
interface RecordedStep {
  readonly accountId: string;
  readonly seq: string;
  readonly priceStatus: string | undefined;
  readonly effects: readonly RecordedEffect[];
}

export function findingsOf(record: RunRecord): Findings {
  return {
    liquidationRequests: record.events.filter((event) => event.detailType === "LiquidationRequested").length,
    loss: lossTaken(record.outbox),
    tickToCallMs: latencyStats(tickToCallMs(record.audit, record.tickAsOf, record.speed)),
    callToNoticeMs: latencyStats(callToNoticeMs(record.outbox, record.speed)),
    haltedLiquidations: haltedLiquidations(record.audit),
    callBeforeEveryLiquidation: callBeforeEveryLiquidation(record.audit),
    exhaustedLiquidations: exhaustedLiquidations(record.audit),
    timeline: timelineOf(record.audit),
  };
}

/** The nearest-rank percentile; 0 of nothing. */
export function percentile(values: readonly number[], rank: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((rank / 100) * sorted.length) - 1)] ?? 0;
}

export function latencyStats(valuesMs: readonly number[]): LatencyStats {
  return { p50: percentile(valuesMs, 50), p99: percentile(valuesMs, 99), n: valuesMs.length };
}

/** Accounts by status: every call state counted, and every account without one is HEALTHY. */
export function statusCounts(
  calls: readonly RecordedRow[],
  accounts: number,
  listed: readonly string[] = [],
): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const status of listed) counts[status] = 0;
  for (const call of calls) counts[String(call.status)] = (counts[String(call.status)] ?? 0) + 1;
  counts.HEALTHY = (counts.HEALTHY ?? 0) + accounts - calls.length;
  return counts;
}

/** From the tick that a call was decided on to the call's audit entry, per call, in real milliseconds. */
export function tickToCallMs(
  audit: readonly RecordedRow[],
  tickAsOf: ReadonlyMap<string, string>,
  speed: number,
): number[] {
  return audit
    .filter((entry) => entry.to === "CALLED" && String(entry.eventId).startsWith("tick:"))
    .flatMap((entry) => {
      const asOf = tickAsOf.get(String(entry.eventId));
      return asOf ? [(Date.parse(String(entry.at)) - Date.parse(asOf)) / speed] : [];
    });
}

/** From a call notice's outbox record to its delivery, per delivered call notice, in real milliseconds. */
export function callToNoticeMs(outbox: readonly RecordedRow[], speed: number): number[] {
  return outbox
    .filter((item) => item.kind === "NOTIFY" && item.sentAt && payloadOf(item).notice === "CALL")
    .map((item) => (Date.parse(String(item.sentAt)) - Date.parse(String(item.createdAt))) / speed);
}

/** The sum of the RECORD_LOSS amounts in the outbox, in USD at 2 places. */
export function lossTaken(outbox: readonly RecordedRow[]): string {
  let loss = ZERO;
  for (const item of outbox) {
    if (item.kind === "RECORD_LOSS") loss = loss.plus(dec(String(payloadOf(item).amount)));
  }
  return toFixedString(loss, 2, Rounding.HALF_EVEN);
}

function payloadOf(item: RecordedRow): Record<string, unknown> {
  return JSON.parse(String(item.payload)) as Record<string, unknown>;
}

/** The steps, from the first audit entry of each (the one that carries `effects`), in audit order. */
function recordedSteps(audit: readonly RecordedRow[]): RecordedStep[] {
  return audit
    .filter((entry) => entry.effects !== undefined)
    .map((entry) => ({
      accountId: String(entry.accountId),
      seq: String(entry.seq),
      priceStatus: (entry.figures as { priceStatus?: string } | undefined)?.priceStatus,
      effects: JSON.parse(String(entry.effects)) as RecordedEffect[],
    }));
}

/**
 * A liquidation request (first or retry) on prices that were not OK would break the halt: the
 * REQUEST_LIQUIDATION effects each step recorded, counted when the step's price status was not OK.
 */
export function haltedLiquidations(audit: readonly RecordedRow[]): number {
  return recordedSteps(audit).reduce((count, step) => {
    const requests = step.effects.filter((effect) => effect.kind === "REQUEST_LIQUIDATION").length;
    return count + (step.priceStatus === "OK" ? 0 : requests);
  }, 0);
}

/**
 * Every REQUEST_LIQUIDATION names its call's notice (`callNotificationId`): that NOTIFY CALL, of the same
 * call, must have been recorded for the account before it, earlier in the same step or in an earlier one.
 */
export function callBeforeEveryLiquidation(audit: readonly RecordedRow[]): boolean {
  const stepsByAccount = new Map<string, RecordedStep[]>();
  for (const step of recordedSteps(audit)) {
    stepsByAccount.set(step.accountId, [...(stepsByAccount.get(step.accountId) ?? []), step]);
  }
  for (const steps of stepsByAccount.values()) {
    steps.sort((a, b) => a.seq.localeCompare(b.seq));
    /** The call of each call notice recorded so far, by the notice's notificationId. */
    const callOfNotice = new Map<string, string | null>();
    for (const effect of steps.flatMap((step) => step.effects)) {
      if (effect.kind === "NOTIFY" && effect.notice === "CALL" && effect.notificationId) {
        callOfNotice.set(effect.notificationId, effect.callId ?? null);
      }
      if (effect.kind !== "REQUEST_LIQUIDATION") continue;
      const noticedCall =
        effect.callNotificationId === undefined ? undefined : callOfNotice.get(effect.callNotificationId);
      if (noticedCall === undefined || noticedCall !== effect.callId) return false;
    }
  }
  return true;
}

/** Exhausted liquidations, from the alarm the engine raised on the audit entry: never from its reason text. */
export function exhaustedLiquidations(audit: readonly RecordedRow[]): number {
  return audit.filter((entry) => entry.alarm === "LIQUIDATION_EXHAUSTED").length;
}

const TIMELINE_KIND_OF_STATUS: ReadonlyMap<string, TimelineKind> = new Map([
  ["CALLED", "CALL"],
  ["CURED", "CURED"],
  ["LIQUIDATING", "LIQUIDATION"],
  ["LIQUIDATED", "LIQUIDATED"],
  ["BAD_DEBT", "BAD_DEBT"],
]);

/** The report's timeline: changes of status, and the halts and resumptions of escalation, by time. */
export function timelineOf(audit: readonly RecordedRow[]): RunReportData["timeline"] {
  const timeline: RunReportData["timeline"] = audit.flatMap((entry) => {
    const reason = String(entry.reason);
    // A circuit breaker's entries (adapters/breakers.ts) say PAUSED or ACTIVE: new liquidations halt or resume.
    const breaker = String(entry.accountId).startsWith("BREAKER#");
    const kind = breaker
      ? entry.to === "PAUSED"
        ? "HALT"
        : "RESUME"
      : entry.from !== entry.to
        ? TIMELINE_KIND_OF_STATUS.get(String(entry.to))
        : reason.startsWith("escalation halted")
          ? "HALT"
          : reason.startsWith("prices recovered")
            ? "RESUME"
            : undefined;
    return kind ? [{ t: String(entry.at), accountId: String(entry.accountId), kind, detail: reason }] : [];
  });
  return timeline.sort((a, b) => a.t.localeCompare(b.t));
}

/**
 * The circuit breakers' pauses as shaded windows on the price chart, from the events put on the bus: each
 * LiquidationPaused to its LiquidationResumed, or to `endIso` while still paused.
 */
export function pauseWindows(events: readonly RecordedEvent[], endIso: string): RunReportData["halts"] {
  const resumed = new Map(
    events
      .filter((event) => event.detailType === "LiquidationResumed")
      .map((event) => [String(event.detail.pauseReference), String(event.detail.resumedAt)]),
  );
  return events
    .filter((event) => event.detailType === "LiquidationPaused")
    .map(({ detail }) => ({
      asset: String(detail.asset),
      from: String(detail.pausedAt),
      to: resumed.get(String(detail.reference)) ?? endIso,
      reason: `${String(detail.asset)} liquidations paused: moved ${String(detail.move)} within ${String(detail.windowSeconds)} s (limit ${String(detail.maxMove)})`,
    }));
}

/** The assets whose breaker is tripped after the events so far (a pause not yet followed by its release). */
export function pausedNow(events: readonly RecordedEvent[]): string[] {
  const paused = new Set<string>();
  for (const { detailType, detail } of events) {
    if (detailType === "LiquidationPaused") paused.add(String(detail.asset));
    if (detailType === "LiquidationResumed") paused.delete(String(detail.asset));
  }
  return [...paused].sort();
}

/** The stale-feed episodes as shaded windows on the price chart: each one's last minute included. */
export function haltWindows(episodes: readonly Episode[], scenarioStartMs: number): RunReportData["halts"] {
  return episodes.map((episode) => ({
    asset: episode.asset,
    from: new Date(scenarioStartMs + episode.fromMinute * 60_000).toISOString(),
    to: new Date(scenarioStartMs + episode.toMinute * 60_000 + 60_000).toISOString(),
    reason: `${episode.asset} feeds stale: only ${episode.live.join(", ")} publishing`,
  }));
}
