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
    let bits = state;
    bits = Math.imul(bits ^ (bits >>> 15), bits | 1);
    bits ^= bits + Math.imul(bits ^ (bits >>> 7), bits | 61);
    return ((bits ^ (bits >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const TIME_ZONES = ["America/New_York", "Europe/London", "Asia/Singapore", "Asia/Tokyo", "Europe/Zurich"];

export interface DemoAccount {
  readonly accountId: string;
  readonly items: Item[];
}

/**
 * Named accounts with known fates, beside the generated book: one that never borrows, one that pays its
 * calls, one that never does, an ETH account whose breach falls in the stale-ETH episode, and two leveraged
 * perpetuals that end below zero: one whose loss the insurance fund covers in full, one that exhausts it.
 */
export function namedAccounts(at: string): DemoAccount[] {
  const account = (
    accountId: string,
    cash: string,
    holdings: Record<string, string>,
    positions: Record<string, { size: string; entryPrice: string }> = {},
  ): DemoAccount => {
    const common = { accountId, updatedAt: at, seq: 1 };
    return {
      accountId,
      items: [
        {
          ...common,
          sk: "PROFILE",
          currency: "USD",
          policyId: "crypto-demo",
          timeZone: "America/New_York",
          contact: { phoneE164: "+12125550100", email: `${accountId.toLowerCase()}@example.com` },
          borrowerName: accountId,
        },
        { ...common, sk: "HOLDING#USD", asset: "USD", quantity: cash },
        ...Object.entries(holdings).map(([asset, quantity]) => ({
          ...common,
          sk: `HOLDING#${asset}`,
          asset,
          quantity,
        })),
        ...Object.entries(positions).map(([instrument, position]) => ({
          ...common,
          sk: `POSITION#${instrument}`,
          instrument,
          underlying: instrument.split("-")[0],
          instrumentType: "PERPETUAL",
          ...position,
        })),
      ],
    };
  };
  return [
    account("ACC-SAFE", "0", { BTC: "1" }),
    // SOL: breach when 0.65 · 100 · P = loan, i.e. at SOL 135 (-10%) and 142.50 (-5%).
    account("ACC-CURES", "-8775.00", { SOL: "100" }),
    account("ACC-DEFAULTS", "-9262.50", { SOL: "100" }),
    // ETH: breach when 0.77 · 10 · P = loan, at ETH 2,520 (-16%): inside the stale-ETH episode.
    account("ACC-ETH-HALT", "-19404.00", { ETH: "10" }),
    // Two leveraged perpetuals that end below zero. A perpetual has no haircut: its hard floor (ratio 0.25)
    // lies just above its bankruptcy, and once the price is below every line of an account no tick crosses
    // one, so the hard floor's 30 s confirmation waits for the sweep (every 5 simulated minutes here). BTC
    // falls 1% of its opening a minute from minute 5 to 22 (60,000 · level, level 0.97 − 0.01 · (minute − 5),
    // market.ts), so the fills come 0.5% to 6% below the bankruptcy price.
    //
    // BTC-PERP, long 1 from 60,000.00 on 4,200.00: equity 4,200 + (P − 60,000), maintenance 0.005 · P − 50
    // (second tier, no volatility scaling). Breach at P < 56,030.15 (minute 8.6), hard floor at P < 55,857.32
    // (minute 8.9), bankrupt at P < 55,800 (minute 9.0). Filled by minute 15 at the latest (BTC 52,200): a
    // loss of about 300 to 3,600 USD, before any loss of the generated book (those come at the low, minute
    // 40 on), covered in full by the fund's seed of 10,000.00 (fund.ts).
    account("ACC-BANKRUPT", "4200.00", {}, { "BTC-PERP": { size: "1", entryPrice: "60000.00" } }),
    // BTC-PERP, long 25 from 60,000.00 on 187,500.00: bankrupt at P < 52,500 (60,000 − 187,500 / 25), at
    // minute 14.5, its hard floor just before: five and a half minutes after ACC-BANKRUPT, so that one's loss
    // meets a full fund, and well before the flash drop's load. The market takes 5 of its 25 contracts
    // (PERPETUAL_DEPTH, actors.ts) and the request is reported done with 20 open: at a mark P below 52,500
    // its loss is 187,500 − 25 × (60,000 − P) (plus the fills' slippage and fees), about 10,000 for every
    // 400 below, which soon exceeds what the fund holds; the demo policy's lossWaterfall is ADL, so the rest
    // closes the 20 open contracts against the book's BTC-PERP shorts at the bankruptcy price, P + loss / 20.
    account("ACC-EXHAUSTS", "187500.00", {}, { "BTC-PERP": { size: "25", entryPrice: "60000.00" } }),
  ];
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
  const accounts: DemoAccount[] = [];
  for (let index = 0; index < count; index += 1) {
    const accountId = `ACC-${String(100_000 + index)}`;
    // The draws come in a fixed order (holdings, positions, the loan), so a seed always gives the same book.
    const { collateralDollars, holdings } = drawHoldings(random, policy, opening);
    const positions = drawPositions(random, collateralDollars, policy, opening);
    const cash = drawLoan(random, { accountId, holdings, positions }, policy, opening);
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
      ...holdings.map((holding) => ({ ...common, sk: `HOLDING#${holding.asset}`, ...holding })),
      ...positions.map((position) => ({
        ...common,
        sk: `POSITION#${position.instrument}`,
        instrument: position.instrument,
        underlying: position.instrument.split("-")[0],
        instrumentType: "PERPETUAL",
        size: position.size,
        entryPrice: position.entryPrice,
      })),
    ];
    accounts.push({ accountId, items });
  }
  return accounts;
}

interface DrawnHolding {
  readonly asset: string;
  readonly quantity: string;
}

interface DrawnPosition {
  readonly instrument: string;
  readonly size: string;
  readonly entryPrice: string;
}

/** One to three assets, worth 5,000 to 250,000 USD together (log-uniform, in whole dollars). */
function drawHoldings(
  random: () => number,
  policy: Policy,
  opening: Readonly<Record<string, string>>,
): { collateralDollars: bigint; holdings: DrawnHolding[] } {
  const odds: Record<string, number> = { BTC: 0.7, ETH: 0.55, SOL: 0.35 };
  const chosen = Object.keys(odds).filter((asset) => random() < (odds[asset] ?? 0));
  if (chosen.length === 0) chosen.push("BTC");
  const collateralDollars = BigInt(Math.floor(5000 * Math.exp(random() * Math.log(50))));
  const holdings: DrawnHolding[] = [];
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
  return { collateralDollars, holdings };
}

/** A quarter of the book also holds a perpetual, mostly long, of 10% to 40% of its collateral. */
function drawPositions(
  random: () => number,
  collateralDollars: bigint,
  policy: Policy,
  opening: Readonly<Record<string, string>>,
): DrawnPosition[] {
  const positions: DrawnPosition[] = [];
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
  return positions;
}

/**
 * The loan, as a share of what the collateral lends (its value after haircuts): most of the book borrows
 * well within it, a tenth close to it. Returns the cash holding: the loan, negative, at 2 places.
 */
function drawLoan(
  random: () => number,
  drawn: { accountId: string; holdings: readonly DrawnHolding[]; positions: readonly DrawnPosition[] },
  policy: Policy,
  opening: Readonly<Record<string, string>>,
): string {
  const marks = new Map(Object.entries(opening).map(([asset, price]) => [asset, { price: dec(price) }]));
  const lendable = drawn.holdings.reduce((total, holding) => {
    const haircut = policy.assets.get(holding.asset)?.haircut ?? dec("0");
    return total.plus(
      dec(holding.quantity)
        .times(dec(opening[holding.asset] ?? "0"))
        .times(dec("1").minus(haircut)),
    );
  }, dec("0"));
  const draw = random();
  const loanPercent =
    draw < 0.6 ? units(random, 15, 50) : draw < 0.9 ? units(random, 50, 70) : units(random, 70, 85);
  let loan = quantize(lendable.times(dec(loanPercent.toString())).dividedBy(100), 2, Rounding.FLOOR);
  const accountOf = (cash: string): Account => ({
    accountId: drawn.accountId,
    cash: dec(cash),
    holdings: drawn.holdings.map((holding) => ({ asset: holding.asset, quantity: dec(holding.quantity) })),
    positions: drawn.positions.map((position) => ({
      instrument: position.instrument,
      size: dec(position.size),
      entryPrice: dec(position.entryPrice),
    })),
    pendingDeposits: [],
  });
  // Everyone opens healthy, above the warning line.
  for (let tries = 0; tries < 40; tries += 1) {
    const valuation = valueAccount(accountOf(loan.negated().toFixed(2)), marks, policy);
    if (!ratioBelow(valuation, dec("1.2"))) break;
    loan = loan.times("0.9");
  }
  return toFixedString(loan.negated(), 2, Rounding.FLOOR);
}

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
