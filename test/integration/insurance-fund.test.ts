/**
 * The insurance fund and the loss waterfall end to end on DynamoDB Local (issue 13; docs/liquidation.md,
 * section 9), under the stack's policy with a liquidation fee of 0.4%: an operator tops the fund up with the
 * CLI; a liquidation that settles credits its fee (DOWN at the cent); a bankruptcy the fund covers in full;
 * one that exhausts it, the rest BadDebtRecorded; every stream record delivered again changes nothing; and
 * the flows add up to the balance. Every fund event put is checked against its schema.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { creditFund } from "../../functions/adapters/insurance-fund-store.ts";
import { FundCommandError, runFund } from "../../functions/cli/fund-commands.ts";
import { type FundFlow, replayFund } from "../../functions/domain/insurance-fund.ts";
import type { LiquidationEventType } from "../../functions/domain/liquidation-events.ts";
import { dec, sum } from "../../functions/domain/money.ts";
import { StreamReader } from "../../functions/local/streams.ts";
import { busDetails, checkedDetails } from "../support/bus.ts";
import { leveredAccount, market } from "../support/market.ts";
import { type Pipeline, startPipeline } from "../support/pipeline.ts";
import { activatePolicies, stackPolicy } from "../support/policies.ts";
import { executionReport, holding, perpetual } from "../support/upstream.ts";

let p: Pipeline;
const T0 = "2026-11-24T12:00:00.000Z";
const author = { at: T0, by: "test" };
const ACCOUNTS = ["ACC-FEE", "ACC-COVERED", "ACC-EXHAUST"];
const requestIds = new Map<string, string>();

beforeAll(async () => {
  p = await startPipeline(import.meta.url, T0);
  // The stack's policy, version 4 with a fee of 0.4% (the most its BTC-PERP's first rate allows) and the
  // waterfall's documented default spelled out: past the fund, bad debt.
  const base = stackPolicy();
  const document = {
    ...base,
    version: 4,
    liquidation: { ...(base.liquidation as Record<string, unknown>), feeRate: "0.004" },
    lossWaterfall: { afterFund: "NONE" },
  };
  const policy = (await activatePolicies(p, [document], author)).policies.get("crypto-lending")?.policy;
  expect(policy?.liquidationFeeRate.toFixed()).toBe("0.004");
});
afterAll(async () => {
  await p?.close();
});

const events = (detailType: LiquidationEventType | "LossRecorded") => busDetails(p, detailType);
/** Every fund and waterfall event put, each checked against its envelope's schema. */
const checkedEvents = (detailType: LiquidationEventType) => checkedDetails(p, detailType);

async function fund() {
  const items = await p.query("InsuranceFund", "fund", "FUND#USD");
  const balance = items.find((item) => item.entry === "BALANCE");
  const flows: FundFlow[] = items
    .filter((item) => String(item.entry).startsWith("FLOW#"))
    .map((item) => ({
      flowId: String(item.flowId),
      currency: "USD",
      seq: Number(item.seq),
      cause: item.cause as FundFlow["cause"],
      amount: dec(String(item.amount)),
      requested: dec(String(item.requested)),
      balanceAfter: dec(String(item.balanceAfter)),
      accountId: typeof item.accountId === "string" ? item.accountId : null,
      sourceReference: String(item.sourceReference),
      recordedAt: String(item.recordedAt),
    }));
  return { balance: String(balance?.balance), seq: Number(balance?.seq), flows, items: items.length };
}

/** The execution system sold `quantity` BTC at `price`, and wrote the holdings it left with the report. */
async function settle(accountId: string, quantity: string, price: string, cash: string): Promise<void> {
  p.advance(5);
  await market(p, "49000.00");
  await p.put("Accounts", holding(accountId, "BTC", "0", 2));
  await p.put("Accounts", holding(accountId, "ETH", "0", 2));
  await p.put("Accounts", { ...perpetual(accountId, "BTC-PERP", "0", "64250.50"), seq: 2 });
  await p.put("Accounts", holding(accountId, "USD", cash, 2));
  const requestId = requestIds.get(accountId) ?? "";
  await p.put(
    "Accounts",
    executionReport(
      accountId,
      `FILL-${accountId}`,
      requestId,
      { kind: "HOLDING", asset: "BTC" },
      quantity,
      price,
      p.now(),
    ),
  );
  await p.drain();
}

describe("the insurance fund in the engine", () => {
  it("takes an operator's top-up once per ticket", async () => {
    expect(await runFund(["topup", "USD", "1000.00", "--reference", "OPS-1"], () => p.now())).toBe(0);
    // The same ticket again changes nothing; another amount under it is refused.
    expect(await runFund(["topup", "USD", "1000.00", "--reference", "OPS-1"], () => p.now())).toBe(0);
    await expect(runFund(["topup", "USD", "5.00", "--reference", "OPS-1"], () => p.now())).rejects.toThrow(
      FundCommandError,
    );
    await expect(runFund(["topup", "USD", "1.005", "--reference", "OPS-2"], () => p.now())).rejects.toThrow(
      /more than 2 decimal places/,
    );
    await p.drain();
    expect((await fund()).balance).toBe("1000.00");
    expect(checkedEvents("InsuranceFundFlow")).toEqual([
      expect.objectContaining({ reference: "topup:OPS-1", cause: "MANUAL_TOPUP", amount: "1000.00", seq: 1 }),
    ]);
  });

  it("sends three accounts into liquidation on a crash", async () => {
    const sweep = await p.handler<Record<string, unknown>>("Sweep");
    await market(p, "56000.00");
    for (const accountId of ACCOUNTS) await leveredAccount(p, accountId);
    await p.drain();
    p.advance(10);
    await market(p, "49000.00");
    await p.drain();
    p.advance(30);
    await sweep({ id: "sweep-crash", time: p.now() });
    await p.drain();
    for (const request of events("LiquidationRequested")) {
      requestIds.set(String(request.accountId), String(request.requestId));
    }
    expect([...requestIds.keys()].sort()).toEqual([...ACCOUNTS].sort());
  });

  it("(a) credits a settled liquidation's fee, exactly: quantity × average price × 0.4%, DOWN at the cent", async () => {
    // 1.25 × 48,901.37 × 0.004 = 244.50685: 244.50 (half-even would say 244.51).
    await settle("ACC-FEE", "1.25", "48901.37", "2510.46");
    expect((await p.callState("ACC-FEE"))?.status).toBe("LIQUIDATED");
    expect((await fund()).balance).toBe("1244.50");
    const flow = checkedEvents("InsuranceFundFlow").find((e) => e.cause === "LIQUIDATION_FEE");
    expect(flow).toMatchObject({
      reference: `${requestIds.get("ACC-FEE")}:fee`,
      accountId: "ACC-FEE",
      amount: "244.50",
      requested: "244.50",
      balanceAfter: "1244.50",
      sourceReference: requestIds.get("ACC-FEE"),
    });
    expect(events("LossRecorded")).toEqual([]);
  });

  it("(b) covers a bankruptcy from the fund in full: no bad debt", async () => {
    // Sold at 48,000.00 (fee 240.00), and 250.00 short.
    await settle("ACC-COVERED", "1.25", "48000.00", "-250.00");
    expect((await p.callState("ACC-COVERED"))?.status).toBe("BAD_DEBT");
    const [loss] = events("LossRecorded");
    expect(loss).toMatchObject({ accountId: "ACC-COVERED", amount: "250.00" });
    const cover = checkedEvents("InsuranceFundFlow").find((e) => e.cause === "BANKRUPTCY_COVER");
    expect(cover).toMatchObject({
      reference: `${String(loss?.reference)}:fund`,
      accountId: "ACC-COVERED",
      amount: "-250.00",
      requested: "250.00",
      sourceReference: loss?.reference,
    });
    expect((await fund()).balance).toBe("1234.50"); // 1,244.50 + 240.00 − 250.00
    expect(checkedEvents("BadDebtRecorded")).toEqual([]);
  });

  it("(c) exhausts the fund on a larger bankruptcy: the fund goes to 0, the rest is bad debt", async () => {
    // A dust fill: its fee, 0.0000047, is 0.00 at the cent, so no fee flow; 5,000.00 short.
    await settle("ACC-EXHAUST", "0.00000001", "47000.00", "-5000.00");
    expect((await p.callState("ACC-EXHAUST"))?.status).toBe("BAD_DEBT");
    const loss = events("LossRecorded").find((e) => e.accountId === "ACC-EXHAUST");
    expect(loss?.amount).toBe("5000.00");
    const cover = checkedEvents("InsuranceFundFlow").find(
      (e) => e.cause === "BANKRUPTCY_COVER" && e.accountId === "ACC-EXHAUST",
    );
    expect(cover).toMatchObject({ amount: "-1234.50", requested: "5000.00", balanceAfter: "0.00" });
    expect(checkedEvents("BadDebtRecorded")).toEqual([
      expect.objectContaining({
        reference: `${String(loss?.reference)}:bad-debt`,
        accountId: "ACC-EXHAUST",
        shortfall: "5000.00",
        fundCover: "1234.50",
        afterFund: "NONE",
        adlCover: "0.00",
        socialisedCover: "0.00",
        amount: "3765.50",
      }),
    ]);
    const state = await fund();
    expect(state.balance).toBe("0.00");
    expect(state.flows.map((flow) => flow.cause).sort()).toEqual([
      "BANKRUPTCY_COVER",
      "BANKRUPTCY_COVER",
      "LIQUIDATION_FEE",
      "LIQUIDATION_FEE",
      "MANUAL_TOPUP",
    ]);
    // Each flow has its audit entry, in the fund's partition, with the policy that decided it.
    const audit = await p.query("AuditLog", "accountId", "FUND#USD");
    expect(audit).toHaveLength(5);
    for (const entry of audit) expect(entry.figures).toMatchObject({ policy: "crypto-lending@4" });
    expect(p.discarded.OutboxRelay).toEqual([]);
  });

  it("(d) changes nothing when the relay gets every outbox record again", async () => {
    const before = {
      fund: await fund(),
      events: p.stub.events.length,
      outbox: (await p.scan("Outbox")).length,
      audit: (await p.query("AuditLog", "accountId", "FUND#USD")).length,
    };
    const reader = new StreamReader(p.db.streams, p.mappings.OutboxRelay.reader.streamArn, "TRIM_HORIZON");
    await reader.fetch();
    const records = reader.take();
    expect(records.some((record) => JSON.stringify(record).includes("FUND_FEE"))).toBe(true);
    const relay = await p.handler<{ Records: unknown[] }>("OutboxRelay");
    expect(await relay({ Records: records })).toEqual({ batchItemFailures: [] });
    await p.drain();
    expect(await fund()).toEqual(before.fund);
    expect(p.stub.events.length).toBe(before.events);
    expect((await p.scan("Outbox")).length).toBe(before.outbox);
    expect((await p.query("AuditLog", "accountId", "FUND#USD")).length).toBe(before.audit);
  });

  it("applies racing flows once each, in one gapless sequence: a lost race is read and planned again", async () => {
    const store = {
      dynamo: p.db.dynamodb,
      tables: { insuranceFund: "InsuranceFund", outbox: "Outbox", auditLog: "AuditLog" },
    };
    const topUp = (ticket: string) =>
      creditFund(
        store,
        {
          flowId: `topup:${ticket}`,
          currency: "USD",
          cause: "MANUAL_TOPUP",
          amount: dec("10.00"),
          accountId: null,
          sourceReference: ticket,
          recordedAt: p.now(),
        },
        2,
        "crypto-lending@4",
        p.now(),
      );
    const before = (await fund()).seq;
    // Four tickets, each sent twice, all at once.
    const tickets = ["RACE-1", "RACE-2", "RACE-3", "RACE-4"];
    const outcomes = await Promise.all([...tickets, ...tickets].map(topUp));
    expect(outcomes.filter((outcome) => outcome.applied)).toHaveLength(4);
    expect(new Set(outcomes.map((outcome) => outcome.flow.seq)).size).toBe(4);
    await p.drain();
    const after = await fund();
    expect(after.balance).toBe("40.00");
    expect(after.seq).toBe(before + 4);
    expect(
      checkedEvents("InsuranceFundFlow").filter((e) => String(e.reference).startsWith("topup:RACE-")),
    ).toHaveLength(4);
  });

  it("(e) conserves money: the flows replay to the balance, and add up to it", async () => {
    const { balance, seq, flows } = await fund();
    const ledger = replayFund(
      "USD",
      2,
      flows.sort((a, b) => a.seq - b.seq),
    );
    expect(ledger.head.balance.toFixed(2)).toBe(balance);
    expect(ledger.head.seq).toBe(seq);
    expect(sum(flows.map((flow) => flow.amount)).toFixed(2)).toBe(balance);
    // In money terms: 1,000.00 + 40.00 put in + 244.50 + 240.00 of fees = 250.00 + 1,234.50 covered + 40.00 held.
    expect(sum(flows.filter((f) => f.amount.greaterThan(0)).map((f) => f.amount)).toFixed(2)).toBe("1524.50");
    expect(sum(flows.filter((f) => f.amount.lessThan(0)).map((f) => f.amount)).toFixed(2)).toBe("-1484.50");
  });
});
