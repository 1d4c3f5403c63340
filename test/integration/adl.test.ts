/**
 * The loss waterfall past the insurance fund, end to end on DynamoDB Local (issue 13; docs/liquidation.md,
 * section 9): a bankruptcy that exhausts the fund and triggers ADL under a policy that says so, then one
 * socialised over the opposite side's notional under the next version; the ADL queue an operator queries;
 * and every record delivered again changing nothing.
 *
 * The book, under the stack's policy (BTC-PERP at quantity scale 3, BTC at price scale 2):
 *   - ACC-ADL and ACC-SOCIAL: the levered account of the pipeline tests, long 0.500 BTC-PERP from 64,250.50.
 *     The crash to 49,000 liquidates them; the execution system sells their BTC and ETH but cannot close the
 *     perpetual (final report, the position still open), leaving 1,625.25 USD:
 *       equity = 1,625.25 + 0.5 × (49,000 − 64,250.50) = 1,625.25 − 7,625.25 = −6,000.00, the loss.
 *     Bankruptcy price of the long: 49,000 + 6,000 / 0.5 = 61,000.
 *   - Shorts, each with 50,000.00 USD: ACC-SHORT-A −0.300 from 60,000; ACC-SHORT-B −0.200 from 58,000;
 *     ACC-SHORT-C −0.100 from 50,000. At 49,000 (PnL = size × (mark − entry); score as adl.ts says):
 *       A: PnL 3,300, equity 53,300, score = 3,300 × 14,700 / (18,000 × 53,300) = 0.0505628517…
 *       B: PnL 1,800, equity 51,800, score = 1,800 × 9,800 / (11,600 × 51,800)  = 0.0293569431…
 *       C: PnL   100, equity 50,100, score =   100 × 4,900 / (5,000 × 50,100)   = 0.0019560878…
 *     so the short queue is A, B, C.
 *   - ACC-LONG: long 0.100 BTC-PERP from 40,000 with 50,000.00 USD: on the bankrupt side, never taken.
 *
 * ADL (fund 1,000.00): the fund covers 1,000.00, 5,000.00 remain; the gap |61,000 − 49,000| = 12,000, so ADL
 * closes ⌈5,000 / 12,000⌉ = 0.417 (at 3 places; 0.417 × 12,000 = 5,004 ≥ 5,000): A all of its 0.300, then
 * 0.117 of B's 0.200, at 61,000. Cover min(5,000.00, 5,004.00) = 5,000.00; no bad debt.
 *
 * Socialised (the fund now 0): the opposite side's notional at 49,000 is A 14,700, B 9,800, C 4,900 (29,400
 * in all), so 6,000.00 is charged 3,000.00, 2,000.00 and 1,000.00, exactly; no bad debt.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runAdl } from "../../functions/cli/adl-commands.ts";
import { runFund } from "../../functions/cli/fund-commands.ts";
import type { LiquidationEventType } from "../../functions/domain/liquidation-events.ts";
import { StreamReader } from "../../functions/local/streams.ts";
import { busDetails, checkedDetails } from "../support/bus.ts";
import { leveredAccount, market } from "../support/market.ts";
import { type Pipeline, startPipeline } from "../support/pipeline.ts";
import { activatePolicies, stackPolicy } from "../support/policies.ts";
import { executionReport, holding, perpetual, profile } from "../support/upstream.ts";

let p: Pipeline;
const T0 = "2026-11-24T12:00:00.000Z";
const author = { at: T0, by: "test" };
let base: Record<string, unknown>;
const requestIds = new Map<string, string>();

async function activateVersion(version: number, lossWaterfall: Record<string, string>): Promise<void> {
  const document = { ...base, version, lossWaterfall };
  const policy = (await activatePolicies(p, [document], author)).policies.get("crypto-lending")?.policy;
  expect(policy?.version).toBe(version);
}

beforeAll(async () => {
  p = await startPipeline(import.meta.url, T0);
  base = stackPolicy();
  await activateVersion(4, { afterFund: "ADL" });
});
afterAll(async () => {
  await p?.close();
});

const events = (detailType: LiquidationEventType | "LossRecorded") => busDetails(p, detailType);
const checked = (detailType: LiquidationEventType) => checkedDetails(p, detailType);

async function short(accountId: string, size: string, entry: string): Promise<void> {
  await p.put("Accounts", profile(accountId));
  await p.put("Accounts", holding(accountId, "USD", "50000.00"));
  await p.put("Accounts", perpetual(accountId, "BTC-PERP", size, entry));
}

/** The execution system sold the BTC and the ETH, could not close the perpetual, and says it is done. */
async function settleLeavingThePerpOpen(accountId: string): Promise<void> {
  p.advance(5);
  await market(p, "49000.00");
  await p.put("Accounts", holding(accountId, "BTC", "0", 2));
  await p.put("Accounts", holding(accountId, "ETH", "0", 2));
  await p.put("Accounts", holding(accountId, "USD", "1625.25", 2));
  const requestId = requestIds.get(accountId) ?? "";
  await p.put(
    "Accounts",
    executionReport(
      accountId,
      `FILL-${accountId}`,
      requestId,
      { kind: "HOLDING", asset: "BTC" },
      "1.25",
      "48000.00",
      p.now(),
    ),
  );
  await p.drain();
}

const fundBalance = async () =>
  String(
    (await p.query("InsuranceFund", "fund", "FUND#USD")).find((item) => item.entry === "BALANCE")?.balance,
  );

describe("the loss waterfall past the fund", () => {
  it("liquidates two levered accounts on a crash, beside the shorts that gain from it", async () => {
    expect(await runFund(["topup", "USD", "1000.00", "--reference", "OPS-ADL"], () => p.now())).toBe(0);
    const sweep = await p.handler<Record<string, unknown>>("Sweep");
    await market(p, "56000.00");
    for (const accountId of ["ACC-ADL", "ACC-SOCIAL"]) await leveredAccount(p, accountId);
    await short("ACC-SHORT-A", "-0.300", "60000.00");
    await short("ACC-SHORT-B", "-0.200", "58000.00");
    await short("ACC-SHORT-C", "-0.100", "50000.00");
    await p.put("Accounts", profile("ACC-LONG"));
    await p.put("Accounts", holding("ACC-LONG", "USD", "50000.00"));
    await p.put("Accounts", perpetual("ACC-LONG", "BTC-PERP", "0.100", "40000.00"));
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
    expect([...requestIds.keys()].sort()).toEqual(["ACC-ADL", "ACC-SOCIAL"]);
    expect(await fundBalance()).toBe("1000.00");
  });

  it("answers 'what is my ADL rank' for each side of the instrument", async () => {
    const printed: string[] = [];
    expect(
      await runAdl(
        ["rank", "BTC-PERP"],
        () => p.now(),
        (text) => printed.push(text),
      ),
    ).toBe(0);
    const ranked = printed
      .map((text) => text.trim().split(/\s+/))
      .filter((words) => words[1]?.startsWith("#"))
      .map(([side, rank, accountId, quantity]) => ({ side, rank, accountId, quantity }));
    expect(ranked.filter((r) => r.side === "SHORT")).toEqual([
      { side: "SHORT", rank: "#1", accountId: "ACC-SHORT-A", quantity: "0.3" },
      { side: "SHORT", rank: "#2", accountId: "ACC-SHORT-B", quantity: "0.2" },
      { side: "SHORT", rank: "#3", accountId: "ACC-SHORT-C", quantity: "0.1" },
    ]);
    // ACC-LONG is in profit; the two liquidating longs are under water and rank below it.
    expect(ranked.filter((r) => r.side === "LONG").map((r) => r.accountId)[0]).toBe("ACC-LONG");
    const mine: string[] = [];
    expect(
      await runAdl(
        ["rank", "BTC-PERP", "--account", "ACC-SHORT-B"],
        () => p.now(),
        (text) => mine.push(text),
      ),
    ).toBe(0);
    expect(mine.filter((text) => text.includes("ACC-"))).toHaveLength(1);
    expect(mine.find((text) => text.includes("ACC-SHORT-B"))).toMatch(
      /SHORT\s+#2\s+ACC-SHORT-B\s+0\.2\s+0\.02935694315\s/,
    );
  });

  it("covers a bankruptcy past the fund by deleveraging the top of the short queue at the bankruptcy price", async () => {
    await settleLeavingThePerpOpen("ACC-ADL");
    expect((await p.callState("ACC-ADL"))?.status).toBe("BAD_DEBT");
    const loss = events("LossRecorded").find((e) => e.accountId === "ACC-ADL");
    expect(loss).toMatchObject({
      amount: "6000.00",
      position: {
        instrument: "BTC-PERP",
        side: "LONG",
        quantity: "0.5",
        quantityScale: 3,
        markPrice: "49000",
        bankruptcyPrice: "61000",
      },
    });
    const cover = checked("InsuranceFundFlow").find((e) => e.cause === "BANKRUPTCY_COVER");
    expect(cover).toMatchObject({ accountId: "ACC-ADL", amount: "-1000.00", balanceAfter: "0.00" });
    const [adl, ...more] = checked("DeleveragingRequested");
    expect(more).toEqual([]);
    expect(adl).toMatchObject({
      reference: `${String(loss?.reference)}:adl`,
      bankruptAccountId: "ACC-ADL",
      instrument: "BTC-PERP",
      bankruptSide: "LONG",
      bankruptcyPrice: "61000",
      quantityNeeded: "0.417",
      quantityClosed: "0.417",
      cover: "5000.00",
      instructions: [
        { accountId: "ACC-SHORT-A", side: "BUY", quantity: "0.3", price: "61000", closesAll: true, rank: 1 },
        {
          accountId: "ACC-SHORT-B",
          side: "BUY",
          quantity: "0.117",
          price: "61000",
          closesAll: false,
          rank: 2,
        },
      ],
    });
    expect(checked("BadDebtRecorded")).toEqual([]);
    expect(await fundBalance()).toBe("0.00");
    // The fund's audit entry keeps the split, and where the queue was cut: ACC-SHORT-C was next in line.
    const audit = (await p.query("AuditLog", "accountId", "FUND#USD")).find(
      (entry) => (entry.figures as Record<string, string>).afterFund === "ADL",
    );
    const figures = audit?.figures as Record<string, string>;
    expect(figures).toMatchObject({
      shortfall: "6000.00",
      fundCover: "1000.00",
      adlCover: "5000.00",
      socialisedCover: "0.00",
      badDebt: "0.00",
      counterparties: "5",
      policy: "crypto-lending@4",
    });
    expect(JSON.parse(figures.adl ?? "{}")).toMatchObject({
      ranked: 3,
      nextInLine: { accountId: "ACC-SHORT-C", rank: 3 },
    });
  });

  it("socialises the next one over the opposite side's notional, pro rata and exactly, under the next policy version", async () => {
    await activateVersion(5, { afterFund: "SOCIALISED", socialisedBase: "OPPOSITE_NOTIONAL" });
    await settleLeavingThePerpOpen("ACC-SOCIAL");
    expect((await p.callState("ACC-SOCIAL"))?.status).toBe("BAD_DEBT");
    const loss = events("LossRecorded").find((e) => e.accountId === "ACC-SOCIAL");
    expect(loss?.amount).toBe("6000.00");
    const cover = checked("InsuranceFundFlow").find(
      (e) => e.cause === "BANKRUPTCY_COVER" && e.accountId === "ACC-SOCIAL",
    );
    expect(cover).toMatchObject({ amount: "0.00", requested: "6000.00", balanceAfter: "0.00" });
    expect(checked("LossSocialised")).toEqual([
      expect.objectContaining({
        reference: `${String(loss?.reference)}:socialised`,
        bankruptAccountId: "ACC-SOCIAL",
        base: "OPPOSITE_NOTIONAL",
        baseTotal: "29400",
        amount: "6000.00",
        charges: [
          { accountId: "ACC-SHORT-A", amount: "3000.00" },
          { accountId: "ACC-SHORT-B", amount: "2000.00" },
          { accountId: "ACC-SHORT-C", amount: "1000.00" },
        ],
      }),
    ]);
    expect(checked("DeleveragingRequested")).toHaveLength(1);
    expect(checked("BadDebtRecorded")).toEqual([]);
    expect(p.discarded.OutboxRelay).toEqual([]);
  });

  it("changes nothing when the relay gets every outbox record again", async () => {
    const before = { events: p.stub.events.length, balance: await fundBalance() };
    const reader = new StreamReader(p.db.streams, p.mappings.OutboxRelay.reader.streamArn, "TRIM_HORIZON");
    await reader.fetch();
    const relay = await p.handler<{ Records: unknown[] }>("OutboxRelay");
    expect(await relay({ Records: reader.take() })).toEqual({ batchItemFailures: [] });
    await p.drain();
    expect(p.stub.events.length).toBe(before.events);
    expect(await fundBalance()).toBe(before.balance);
    expect(checked("DeleveragingRequested")).toHaveLength(1);
    expect(checked("LossSocialised")).toHaveLength(1);
  });
});
