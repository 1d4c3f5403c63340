/**
 * A generated book of borrowers for the demo: multi-asset crypto collateral against USD loans, some with
 * perpetuals, every one healthy at the opening prices. Seeded, so a run can be repeated.
 */
import { type DynamoDBClient, TransactWriteItemsCommand } from "@aws-sdk/client-dynamodb";
import { toItem } from "../../adapters/codec.ts";
import { dec, quantize, Rounding, toFixedString } from "../../domain/money.ts";
import type { Policy } from "../../domain/policy.ts";
import { type Account, ratioBelow, valueAccount } from "../../domain/valuation.ts";

export type Item = Record<string, unknown>;

/** mulberry32: a small, fast, seeded generator; plenty for a demo book. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const TIME_ZONES = ["America/New_York", "Europe/London", "Asia/Singapore", "Asia/Tokyo", "Europe/Zurich"];

export interface DemoAccount {
  readonly accountId: string;
  readonly items: Item[];
}

/**
 * Random amounts are drawn as integers of the smallest unit (cents, satoshis), so no money is ever a
 * binary float: only the draw is a float.
 */
function units(random: () => number, low: number, high: number): bigint {
  return BigInt(Math.floor(low + random() * (high - low)));
}

export function generateBook(
  count: number,
  seed: number,
  policy: Policy,
  opening: Readonly<Record<string, string>>,
  policyId: string,
  at: string,
): DemoAccount[] {
  const random = seededRandom(seed);
  const marks = new Map(Object.entries(opening).map(([asset, price]) => [asset, { price: dec(price) }]));
  const accounts: DemoAccount[] = [];
  for (let index = 0; index < count; index += 1) {
    const accountId = `ACC-${String(100_000 + index)}`;
    const odds: Record<string, number> = { BTC: 0.7, ETH: 0.55, SOL: 0.35 };
    const chosen = Object.keys(odds).filter((asset) => random() < (odds[asset] ?? 0));
    if (chosen.length === 0) chosen.push("BTC");
    // Collateral of 5,000 to 250,000 USD, log-uniform, in whole dollars.
    const collateralDollars = BigInt(Math.floor(5000 * Math.exp(random() * Math.log(50))));
    const holdings: Array<{ asset: string; quantity: string }> = [];
    for (const asset of chosen) {
      const share = (collateralDollars * units(random, 30, 100)) / 100n / BigInt(chosen.length);
      const scale = policy.assets.get(asset)?.quantityScale ?? 8;
      const quantity = quantize(
        dec(share.toString()).dividedBy(dec(opening[asset] ?? "1")),
        Math.min(scale, 6),
        Rounding.FLOOR,
      );
      if (quantity.greaterThan(0)) holdings.push({ asset, quantity: quantity.toFixed() });
    }
    const positions: Array<{ instrument: string; size: string; entryPrice: string }> = [];
    if (random() < 0.25) {
      const instrument = random() < 0.6 ? "BTC-PERP" : "ETH-PERP";
      const underlying = instrument.split("-")[0] ?? "BTC";
      const notional = dec(((collateralDollars * units(random, 10, 40)) / 100n).toString());
      const side = random() < 0.75 ? 1 : -1;
      const mark = dec(opening[underlying] ?? "1");
      const entry = quantize(
        mark.times(dec(String(units(random, 980, 1020))).dividedBy(1000)),
        2,
        Rounding.HALF_EVEN,
      );
      const scale = policy.instruments.get(instrument)?.quantityScale ?? 3;
      const size = quantize(notional.dividedBy(mark), scale, Rounding.FLOOR).times(side);
      if (!size.isZero()) positions.push({ instrument, size: size.toFixed(), entryPrice: entry.toFixed(2) });
    }
    // The loan, as a share of what the collateral lends (its value after haircuts): most of the book
    // borrows well within it, a tenth close to it.
    const lendable = holdings.reduce((total, h) => {
      const haircut = policy.assets.get(h.asset)?.haircut ?? dec("0");
      return total.plus(
        dec(h.quantity)
          .times(dec(opening[h.asset] ?? "0"))
          .times(dec("1").minus(haircut)),
      );
    }, dec("0"));
    const draw = random();
    const loanPercent =
      draw < 0.6 ? units(random, 15, 50) : draw < 0.9 ? units(random, 50, 70) : units(random, 70, 85);
    let loan = quantize(lendable.times(dec(loanPercent.toString())).dividedBy(100), 2, Rounding.FLOOR);
    const accountOf = (cash: string): Account => ({
      accountId,
      cash: dec(cash),
      holdings: holdings.map((h) => ({ asset: h.asset, quantity: dec(h.quantity) })),
      positions: positions.map((p) => ({
        instrument: p.instrument,
        size: dec(p.size),
        entryPrice: dec(p.entryPrice),
      })),
      pendingDeposits: [],
    });
    // Everyone opens healthy, above the warning line.
    for (let tries = 0; tries < 40; tries += 1) {
      const valuation = valueAccount(accountOf(loan.negated().toFixed(2)), marks, policy);
      if (!ratioBelow(valuation, dec("1.2"))) break;
      loan = loan.times("0.9");
    }
    const cash = toFixedString(loan.negated(), 2, Rounding.FLOOR);
    const common = { accountId, updatedAt: at, seq: 1 };
    const items: Item[] = [
      {
        ...common,
        sk: "PROFILE",
        currency: "USD",
        policyId,
        timeZone: TIME_ZONES[index % TIME_ZONES.length],
        contact: {
          phoneE164: `+1212555${String(index % 10_000).padStart(4, "0")}`,
          email: `borrower${index}@example.com`,
        },
        borrowerName: `Borrower ${index}`,
      },
      { ...common, sk: "HOLDING#USD", asset: "USD", quantity: cash },
      ...holdings.map((h) => ({ ...common, sk: `HOLDING#${h.asset}`, ...h })),
      ...positions.map((p) => ({
        ...common,
        sk: `POSITION#${p.instrument}`,
        instrument: p.instrument,
        underlying: p.instrument.split("-")[0],
        instrumentType: "PERPETUAL",
        size: p.size,
        entryPrice: p.entryPrice,
      })),
    ];
    accounts.push({ accountId, items });
  }
  return accounts;
}

/** Writes items 25 at a time, several requests in flight, retrying what DynamoDB leaves unprocessed. */
/**
 * Writes accounts as upstream must (docs/data-contract.md): every item of one account in the same
 * TransactWriteItems, never an account split across two writes, so the engine never sees a loan without
 * its collateral. Whole accounts are packed into transactions of at most 100 items.
 */
export async function writeAccounts(
  dynamo: DynamoDBClient,
  table: string,
  accounts: ReadonlyArray<{ readonly items: readonly Item[] }>,
): Promise<void> {
  const chunks: Item[][] = [];
  let current: Item[] = [];
  for (const account of accounts) {
    if (account.items.length > 100) throw new Error("an account of more than 100 items cannot be one change");
    if (current.length + account.items.length > 100) {
      chunks.push(current);
      current = [];
    }
    current.push(...account.items);
  }
  if (current.length) chunks.push(current);
  let next = 0;
  const worker = async () => {
    while (next < chunks.length) {
      const chunk = chunks[next++] ?? [];
      await dynamo.send(
        new TransactWriteItemsCommand({
          TransactItems: chunk.map((item) => ({ Put: { TableName: table, Item: toItem(item) } })),
        }),
      );
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
}
