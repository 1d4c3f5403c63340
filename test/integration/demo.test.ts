/**
 * End to end through the local runtime: a short run of the market-crash demo (the deployed handlers on
 * DynamoDB Local streams, queues and schedules, with the template's settings), then checks on what it
 * recorded: named accounts' fates, a call notice before every liquidation request, no liquidation on
 * stale prices, a bankruptcy the insurance fund covers in full, every liquidation event within its schema,
 * and an audit log that explains, and replays, every transition.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  eventSchema,
  LIQUIDATION_EVENT_TYPES,
  type LiquidationEventType,
  liquidationRequestedSchema,
} from "../../functions/domain/liquidation-events.ts";
import { Dec, dec, quantize, Rounding, sum } from "../../functions/domain/money.ts";
import { evaluateSnapshot } from "../../functions/domain/snapshot.ts";
import { type DemoResult, runDemo } from "../../functions/local/demo/run.ts";

let result: DemoResult;
let outputDir: string;
const progress: string[] = [];

beforeAll(async () => {
  outputDir = mkdtempSync(join(tmpdir(), "margin-call-demo-"));
  // Speed 60, not faster: the scripted payer answers its call notice, and the notice must reach it before the
  // market falls the further 10% to its hard floor (about 7 simulated minutes, 7 s here) on a loaded machine.
  result = await runDemo({
    accounts: 150,
    speed: 60,
    minutes: 45,
    seed: 11,
    outputDir,
    log: () => {},
    progress: (line) => progress.push(line),
  });
}, 240_000);

afterAll(() => {
  rmSync(outputDir, { recursive: true, force: true });
});

const auditOf = (accountId: string) =>
  result.audit
    .filter((entry) => entry.accountId === accountId)
    .sort((a, b) => String(a.seq).localeCompare(String(b.seq)));

/** The asset a plan step sells or buys: a holding's, or a perpetual's underlying (the demo's are <ASSET>-PERP). */
function assetOf(target: { kind: string; asset?: string; instrument?: string }): string {
  return target.kind === "HOLDING" ? String(target.asset) : (String(target.instrument).split("-")[0] ?? "");
}

describe("the market-crash demo", () => {
  it("pauses new liquidations when the flash drop trips a breaker, and resumes them: events, audit, progress and report", () => {
    const detailsOf = (type: string) =>
      result.events.filter((event) => event.detailType === type).map((event) => event.detail);
    const paused = detailsOf("LiquidationPaused");
    // The flash drop at minute 23.5 moves BTC about 15%, ETH 17% and SOL 22% within two minutes (limit 10%);
    // the steady fall and the recoveries move none of them more than about 5% in two minutes.
    expect(paused.map((pause) => pause.asset).sort()).toEqual(["BTC", "ETH", "SOL"]);
    const resumedAt = new Map(detailsOf("LiquidationResumed").map((d) => [d.pauseReference, d.resumedAt]));
    const requests = result.events.filter((event) => event.detailType === "LiquidationRequested");
    for (const pause of paused) {
      const entries = result.audit.filter(
        (entry) => entry.accountId === `BREAKER#${pause.asset}#crypto-demo`,
      );
      const trip = entries.find((entry) => entry.to === "PAUSED" && entry.at === pause.pausedAt);
      const release = entries.find(
        (entry) => entry.to === "ACTIVE" && entry.at === resumedAt.get(pause.reference),
      );
      expect(trip, String(pause.reference)).toBeDefined();
      expect(release, String(pause.reference)).toBeDefined(); // released before the scenario ends
      // No request on the asset committed while it was paused, by the engine's clock (recordedAt). A request
      // decided just before the pause committed may carry a time up to one transaction after the pause's own
      // recordedAt (its commit then came first, or it was decided again): 10 simulated seconds allow for that.
      const from = Date.parse(String(trip?.recordedAt)) + 10_000;
      const until = Date.parse(String(release?.recordedAt));
      const during = requests.filter((event) => {
        const at = Date.parse(String(event.detail.recordedAt));
        const steps = (event.detail.plan as { steps: { target: { kind: string } }[] }).steps;
        return at >= from && at < until && steps.some((step) => assetOf(step.target) === pause.asset);
      });
      expect(during, String(pause.reference)).toEqual([]);
      // The report shades the pause on the asset's price chart.
      expect(result.halts.some((halt) => halt.asset === pause.asset && halt.from === pause.pausedAt)).toBe(
        true,
      );
    }
    expect(progress.some((line) => / \| liquidations paused: [A-Z]/.test(line))).toBe(true);
  });

  it("issues calls, cures some and liquidates others, and renders what it sent", () => {
    expect(result.notices.CALL ?? 0).toBeGreaterThan(0);
    expect(result.notices.CURED ?? 0).toBeGreaterThan(0);
    expect(result.liquidationRequests).toBeGreaterThan(0);
    const rendered = readdirSync(join(outputDir, "outbox"));
    expect(rendered.filter((name) => name.endsWith(".sms.txt")).length).toBeGreaterThan(0);
    expect(rendered.filter((name) => name.endsWith(".email.txt")).length).toBeGreaterThan(0);
    expect(readdirSync(outputDir)).toEqual(expect.arrayContaining(["events.jsonl", "report.html", "outbox"]));
  });

  it("brings the named accounts to their states", () => {
    expect(auditOf("ACC-SAFE")).toEqual([]);
    expect(result.finalStates.has("ACC-SAFE")).toBe(false);

    const cures = auditOf("ACC-CURES").map((entry) => `${entry.from}→${entry.to}`);
    expect(cures).toContain("CALLED→CURED");

    const defaults = auditOf("ACC-DEFAULTS").map((entry) => entry.to);
    expect(defaults).toContain("CALLED");
    expect(defaults).toContain("LIQUIDATING");
    expect(defaults.indexOf("CALLED")).toBeLessThan(defaults.indexOf("LIQUIDATING"));
    expect(defaults.some((to) => to === "LIQUIDATED" || to === "BAD_DEBT")).toBe(true);
  });

  it("sends exactly one call notice before each liquidation request, and names it", () => {
    const requests = result.events.filter((event) => event.detailType === "LiquidationRequested");
    expect(requests.length).toBeGreaterThan(0);
    for (const request of requests) {
      // What went on the bus is what docs/events.md defines, auction schedules included.
      expect(liquidationRequestedSchema.safeParse(request.detail).error?.issues ?? []).toEqual([]);
      const accountId = String(request.detail.accountId);
      const callId = String(request.detail.callId);
      // The step that issued the call recorded its effects on its first audit entry.
      const entries = auditOf(accountId);
      const calls = entries.filter((entry) => {
        if (entry.to !== "CALLED" || entry.from === "CALLED") return false;
        const step = entries.find((first) => first.version === entry.version && first.effects);
        const effects = JSON.parse(String(step?.effects ?? "[]")) as Array<Record<string, unknown>>;
        return effects.some((effect) => effect.notice === "CALL" && effect.callId === callId);
      });
      expect(calls, `${accountId} ${callId}`).toHaveLength(1);
      const [call] = calls;
      expect(Date.parse(String(call?.at))).toBeLessThanOrEqual(Date.parse(String(request.detail.recordedAt)));
      expect(String(request.detail.callNotificationId)).toMatch(new RegExp(`^${accountId}:v\\d+:\\d+:call$`));
    }
  });

  it("does not liquidate while prices are stale: the ETH account waits for the feeds and the grace period", () => {
    expect(result.haltedLiquidations).toBe(0);
    const entries = auditOf("ACC-ETH-HALT");
    const halted = entries.find((entry) => String(entry.reason).startsWith("escalation halted"));
    const resumed = entries.find((entry) => String(entry.reason).startsWith("prices recovered"));
    expect(halted).toBeDefined();
    expect(resumed).toBeDefined();
    const graceEnds = Date.parse(String(resumed?.at)) + 120_000;
    for (const entry of entries.filter((e) => e.to === "LIQUIDATING" && e.from !== "LIQUIDATING")) {
      expect(Date.parse(String(entry.at))).toBeGreaterThanOrEqual(graceEnds);
    }
  });

  it("records every transition with what explains it, and each recorded step replays to the same state", () => {
    const steps = result.audit.filter((entry) => entry.snapshot);
    expect(steps.length).toBeGreaterThan(0);
    for (const entry of result.audit) {
      expect(entry.reason).toEqual(expect.any(String));
      expect(entry.figures).toMatchObject({ policy: "crypto-demo@1" });
    }
    for (const entry of steps) {
      const replay = evaluateSnapshot(JSON.parse(String(entry.snapshot)));
      expect(replay.step.next.version, String(entry.auditId)).toBe(entry.version);
      const recorded = result.audit.filter(
        (e) => e.accountId === entry.accountId && e.version === entry.version,
      );
      expect(
        replay.step.effects.filter((effect) => effect.kind === "AUDIT").map((effect) => effect.to),
      ).toEqual(recorded.sort((a, b) => String(a.seq).localeCompare(String(b.seq))).map((e) => e.to));
    }
  });

  it("puts every liquidation event within its schema, envelope and detail", () => {
    const types: readonly string[] = LIQUIDATION_EVENT_TYPES;
    const puts = result.endpoint.puts.filter((entry) => types.includes(entry.detailType));
    expect(puts.some((entry) => entry.detailType === "InsuranceFundFlow")).toBe(true);
    for (const entry of puts) {
      const detailType = entry.detailType as LiquidationEventType;
      const envelope = {
        version: "0",
        id: entry.eventId,
        "detail-type": detailType,
        source: entry.source,
        account: "111122223333",
        time: entry.time ?? entry.receivedAt,
        region: "us-east-1",
        resources: entry.resources,
        detail: JSON.parse(entry.detail),
      };
      const issues = eventSchema(detailType).safeParse(envelope).error?.issues ?? [];
      expect(issues, `${detailType} ${entry.detail}`).toEqual([]);
    }
  });

  it("covers ACC-BANKRUPT's loss from the insurance fund in full, and keeps the fund's ledger whole", () => {
    const flows = result.events
      .filter((event) => event.detailType === "InsuranceFundFlow")
      .map((event) => event.detail);
    // Seeded once, before the crash, by the operator's top-up.
    const seeds = flows.filter((flow) => flow.cause === "MANUAL_TOPUP");
    expect(seeds.map((flow) => [flow.reference, flow.amount])).toEqual([
      ["topup:demo-seed", result.fund.seed],
    ]);

    // The crash took ACC-BANKRUPT below zero equity before its liquidation filled: one loss, all the fund's.
    expect(result.finalStates.get("ACC-BANKRUPT")).toBe("BAD_DEBT");
    const losses = result.outbox.filter(
      (item) => item.kind === "RECORD_LOSS" && item.accountId === "ACC-BANKRUPT",
    );
    expect(losses).toHaveLength(1);
    const lossReference = String(losses[0]?.outboxId);
    const lossAmount = String(JSON.parse(String(losses[0]?.payload)).amount);
    expect(dec(lossAmount).greaterThan(0)).toBe(true);
    const covers = flows.filter(
      (flow) => flow.cause === "BANKRUPTCY_COVER" && flow.accountId === "ACC-BANKRUPT",
    );
    expect(covers).toHaveLength(1);
    expect(covers[0]).toMatchObject({ sourceReference: lossReference, requested: lossAmount });
    expect(dec(String(covers[0]?.amount)).negated().toFixed(2)).toBe(lossAmount);
    expect(
      result.events.filter(
        (e) => e.detailType === "BadDebtRecorded" && e.detail.accountId === "ACC-BANKRUPT",
      ),
    ).toEqual([]);
    // The flow's audit entry is in the fund's own partition of the audit log.
    const fundAudit = result.audit.filter((entry) => entry.accountId === "FUND#USD");
    expect(fundAudit.filter((entry) => entry.eventId === covers[0]?.reference)).toHaveLength(1);
    expect(fundAudit).toHaveLength(flows.length);

    // Conserved: the seed, plus every fee, less every cover, is the BALANCE item's balance, and the ledger's
    // flows are the events put.
    const ledgerFlows = result.fund.ledger.filter((item) => String(item.entry).startsWith("FLOW#"));
    expect(ledgerFlows.map((item) => item.flowId).sort()).toEqual(flows.map((flow) => flow.reference).sort());
    const fees = flows.filter((flow) => flow.cause === "LIQUIDATION_FEE");
    expect(fees.length).toBeGreaterThan(0);
    const allCovers = flows.filter((flow) => flow.cause === "BANKRUPTCY_COVER");
    expect(fees.length + allCovers.length + seeds.length).toBe(flows.length);
    const expected = sum([...seeds, ...fees, ...allCovers].map((flow) => dec(String(flow.amount))));
    const balance = result.fund.ledger.find((item) => item.entry === "BALANCE");
    expect(String(balance?.balance)).toBe(expected.toFixed(2));
    expect(balance?.seq).toBe(flows.length);

    // The report's loss waterfall shows that loss, covered by the fund.
    const html = readFileSync(result.reportPath, "utf8");
    expect(html).toContain('data-section="loss-waterfall"');
    const row = new RegExp(`<tr data-reference="${lossReference}">(.*?)</tr>`).exec(html)?.[1] ?? "";
    const cells = [...row.matchAll(/<td[^>]*>([^<]*)<\/td>/g)].map((match) => match[1]);
    expect(cells).toEqual([
      expect.any(String),
      "ACC-BANKRUPT",
      lossAmount,
      lossAmount,
      "0.00",
      "0.00",
      "0.00",
    ]);
  });
});

describe("the demo's bankruptcy past the fund", () => {
  it("exhausts the fund on ACC-EXHAUSTS and deleverages the book's BTC-PERP shorts at its bankruptcy price: events, audit, progress and report", () => {
    const detailsOf = (type: string) =>
      result.events.filter((event) => event.detailType === type).map((event) => event.detail);
    expect(result.finalStates.get("ACC-EXHAUSTS")).toBe("BAD_DEBT");
    const [loss, ...others] = result.outbox.filter(
      (item) => item.kind === "RECORD_LOSS" && item.accountId === "ACC-EXHAUSTS",
    );
    expect(others).toEqual([]);
    const payload = JSON.parse(String(loss?.payload)) as {
      amount: string;
      position?: {
        instrument: string;
        side: string;
        quantity: string;
        markPrice: string;
        bankruptcyPrice: string;
      };
    };
    // The market took 5 of its 25 contracts; the 20 left open are what ADL closes.
    expect(payload.position).toMatchObject({ instrument: "BTC-PERP", side: "LONG", quantity: "20" });
    const position = payload.position;
    if (!position) throw new Error("no bankrupt position");
    // mark + loss / 20, rounded up to the cent.
    const expectedPrice = dec(position.markPrice).plus(dec(payload.amount).dividedBy(20));
    expect(dec(position.bankruptcyPrice).minus(expectedPrice).greaterThanOrEqualTo(0)).toBe(true);
    expect(dec(position.bankruptcyPrice).minus(expectedPrice).lessThan(dec("0.01"))).toBe(true);

    // The fund gave all it had.
    const cover = detailsOf("InsuranceFundFlow").find(
      (flow) => flow.cause === "BANKRUPTCY_COVER" && flow.accountId === "ACC-EXHAUSTS",
    );
    expect(cover).toMatchObject({ requested: payload.amount, balanceAfter: "0.00" });
    const fundCover = dec(String(cover?.amount)).negated();
    expect(fundCover.lessThan(dec(payload.amount))).toBe(true);

    // ADL: the top of the short queue, at the bankruptcy price, for the fewest whole lots that cover the rest.
    const [adl, ...moreAdl] = detailsOf("DeleveragingRequested").filter(
      (e) => e.bankruptAccountId === "ACC-EXHAUSTS",
    );
    expect(moreAdl).toEqual([]);
    expect(adl).toMatchObject({
      reference: `${String(loss?.outboxId)}:adl`,
      instrument: "BTC-PERP",
      bankruptSide: "LONG",
      bankruptcyPrice: position.bankruptcyPrice,
    });
    const instructions = (adl?.instructions ?? []) as Array<{
      accountId: string;
      side: string;
      quantity: string;
      price: string;
      rank: number;
    }>;
    expect(instructions.length).toBeGreaterThan(0);
    expect(instructions.map((i) => i.rank)).toEqual(instructions.map((_, index) => index + 1));
    for (const instruction of instructions) {
      expect(instruction).toMatchObject({ side: "BUY", price: position.bankruptcyPrice });
      expect(instruction.accountId).toMatch(/^ACC-1\d{5}$/);
    }
    const closed = sum(instructions.map((i) => dec(i.quantity)));
    expect(closed.toFixed()).toBe(dec(String(adl?.quantityClosed)).toFixed());
    expect(closed.lessThanOrEqualTo(dec(String(adl?.quantityNeeded)))).toBe(true);
    const gap = dec(position.bankruptcyPrice).minus(dec(position.markPrice));
    const remaining = dec(payload.amount).minus(fundCover);
    const adlCover = dec(String(adl?.cover));
    expect(adlCover.toFixed(2)).toBe(
      Dec.min(remaining, quantize(closed.times(gap), 2, Rounding.DOWN)).toFixed(2),
    );
    // Fund + ADL + bad debt = the loss, exactly.
    const badDebt = detailsOf("BadDebtRecorded").find((e) => e.accountId === "ACC-EXHAUSTS");
    expect(
      fundCover
        .plus(adlCover)
        .plus(dec(String(badDebt?.amount ?? "0")))
        .toFixed(2),
    ).toBe(payload.amount);

    // The audit log keeps the split and where the queue was cut.
    const entry = result.audit.find((e) => e.accountId === "FUND#USD" && e.eventId === cover?.reference) as
      | { figures?: Record<string, string> }
      | undefined;
    expect(entry?.figures).toMatchObject({
      afterFund: "ADL",
      adlCover: adlCover.toFixed(2),
      fundCover: fundCover.toFixed(2),
    });
    expect(JSON.parse(entry?.figures?.adl ?? "{}").instructions).toHaveLength(instructions.length);

    // The live progress line and the report show it.
    const shown = progress.flatMap(
      (line) => /ADL ([\d,]+\.\d{2})/.exec(line)?.[1]?.replaceAll(",", "") ?? [],
    );
    expect(shown.at(-1)).toBe(adlCover.toFixed(2));
    const html = readFileSync(result.reportPath, "utf8");
    expect(html).toContain(`data-event="DeleveragingRequested" data-reference="${String(adl?.reference)}"`);
  });
});
