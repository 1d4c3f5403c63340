/**
 * The other parties of the demo, acting as real systems would, through the upstream data contract only:
 * borrowers who answer some calls with deposits (in flight, then settled or failed), and an execution
 * system that works liquidation requests at the market within their limit prices and reports its fills.
 * A step that carries a Dutch-auction schedule is worked at the schedule's price of the moment: looked at
 * again every few seconds until it fills, its first cycle ends, or a retry of the call replaces it.
 */
import {
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
} from "@aws-sdk/client-dynamodb";
import type { z } from "zod";
import { fromImage, toItem } from "../../adapters/codec.ts";
import { auctionPrice } from "../../domain/auction.ts";
import { liquidationRequestedSchema, scheduleOfStep } from "../../domain/liquidation-events.ts";
import { Dec, dec, quantize, Rounding } from "../../domain/money.ts";
import type { Item } from "./book.ts";

export interface Clock {
  nowMs(): number;
  now(): string;
  /** Runs `task` when the simulated clock reaches `atMs`. */
  at(atMs: number, task: () => Promise<void>): void;
}

async function itemsOf(dynamo: DynamoDBClient, accountId: string): Promise<Item[]> {
  const result = await dynamo.send(
    new QueryCommand({
      TableName: "Accounts",
      KeyConditionExpression: "accountId = :id",
      ExpressionAttributeValues: { ":id": { S: accountId } },
      ConsistentRead: true,
    }),
  );
  return (result.Items ?? []).map(fromImage);
}

async function put(dynamo: DynamoDBClient, item: Item): Promise<void> {
  await dynamo.send(new PutItemCommand({ TableName: "Accounts", Item: toItem(item) }));
}

/** One change of an account as one transaction, as the data contract asks of upstream systems. */
async function putAll(dynamo: DynamoDBClient, items: readonly Item[]): Promise<void> {
  await dynamo.send(
    new TransactWriteItemsCommand({
      TransactItems: items.map((item) => ({ Put: { TableName: "Accounts", Item: toItem(item) } })),
    }),
  );
}

async function markOf(dynamo: DynamoDBClient, asset: string): Promise<Dec | undefined> {
  const result = await dynamo.send(
    new QueryCommand({
      TableName: "Prices",
      KeyConditionExpression: "asset = :asset",
      ExpressionAttributeValues: { ":asset": { S: asset } },
      ConsistentRead: true,
    }),
  );
  const prices = (result.Items ?? [])
    .map((item) => dec(String(fromImage(item).price)))
    .sort((a, b) => a.comparedTo(b));
  return prices[Math.floor(prices.length / 2)];
}

export interface ActorStats {
  depositsPending: number;
  depositsSettled: number;
  depositsFailed: number;
  fills: number;
  unfilled: number;
}

export class Borrowers {
  readonly stats: Pick<ActorStats, "depositsPending" | "depositsSettled" | "depositsFailed"> = {
    depositsPending: 0,
    depositsSettled: 0,
    depositsFailed: 0,
  };
  private readonly answered = new Set<string>();

  constructor(
    private readonly dynamo: DynamoDBClient,
    private readonly clock: Clock,
    private readonly random: () => number,
  ) {}

  /** Borrowers whose answer is fixed, for the named accounts the tests follow. */
  static readonly SCRIPTED: Readonly<Record<string, "PAYS" | "NEVER">> = {
    "ACC-CURES": "PAYS",
    "ACC-DEFAULTS": "NEVER",
    "ACC-ETH-HALT": "NEVER",
    "ACC-BANKRUPT": "NEVER",
    "ACC-EXHAUSTS": "NEVER",
  };

  /** A call notice reached the borrower: some answer it with a deposit, a few of which fail. */
  async onCall(accountId: string, callId: string): Promise<void> {
    if (this.answered.has(callId)) return;
    this.answered.add(callId);
    const script = Borrowers.SCRIPTED[accountId];
    if (script === "NEVER") return;
    if (!script && this.random() > 0.6) return;
    const state = await this.dynamo.send(
      new GetItemCommand({
        TableName: "MarginCalls",
        Key: { accountId: { S: accountId } },
        ConsistentRead: true,
      }),
    );
    const amountDue = state.Item
      ? JSON.parse(String(fromImage(state.Item).state)).call?.amountDue
      : undefined;
    if (!amountDue) return;
    const depositId = `WIRE-${callId.replace(/[^A-Za-z0-9]/g, "")}`;
    // 100% to 160% of the amount due, in cents; a well-funded scripted payer sends ten times the call, so
    // the cure holds while prices keep falling.
    const percent = script === "PAYS" ? 1000 : 100 + Math.floor(this.random() * 60);
    const amount = quantize(dec(amountDue).times(dec(String(percent)).dividedBy(100)), 2, Rounding.UP);
    const fails = script !== "PAYS" && this.random() < 0.12;
    // Scripted payers wire at once; the others take a few minutes, and settlement a few more.
    const sentAt = this.clock.nowMs() + (script === "PAYS" ? 10 : 30 + this.random() * 150) * 1000;
    const settlesAt = sentAt + (script === "PAYS" ? 30 : 60 + this.random() * 240) * 1000;
    const deposit = (status: string, seq: number): Item => ({
      accountId,
      sk: `DEPOSIT#${depositId}`,
      updatedAt: this.clock.now(),
      seq,
      depositId,
      amount: amount.toFixed(2),
      currency: "USD",
      status,
      initiatedAt: new Date(sentAt).toISOString(),
      ...(status === "SETTLED" ? { settledAt: this.clock.now() } : {}),
    });
    this.clock.at(sentAt, async () => {
      await put(this.dynamo, deposit("PENDING", 1));
      this.stats.depositsPending += 1;
    });
    this.clock.at(settlesAt, async () => {
      if (fails) {
        await put(this.dynamo, deposit("FAILED", 2));
        this.stats.depositsFailed += 1;
        return;
      }
      const items = await itemsOf(this.dynamo, accountId);
      const cash = items.find((item) => item.sk === "HOLDING#USD");
      const balance = dec(String(cash?.quantity ?? "0")).plus(amount);
      await putAll(this.dynamo, [
        deposit("SETTLED", 2),
        {
          accountId,
          sk: "HOLDING#USD",
          updatedAt: this.clock.now(),
          seq: Number(cash?.seq ?? 0) + 1,
          asset: "USD",
          quantity: balance.toFixed(2),
        },
      ]);
      this.stats.depositsSettled += 1;
    });
  }
}

/** A LiquidationRequested event's detail, as docs/events.md defines it. */
export type LiquidationRequest = z.infer<typeof liquidationRequestedSchema>;
type PlanStep = LiquidationRequest["plan"]["steps"][number];

/** Simulated seconds between two looks at a request whose auction has not reached the market yet. */
const AUCTION_LOOK_SECONDS = 10;

/** A step's limit at `nowMs`: its auction's price of the moment, or its fixed limit. */
function limitAt(step: PlanStep, request: LiquidationRequest, nowMs: number): Dec {
  if (!step.auction) return dec(step.limitPrice);
  const schedule = scheduleOfStep(step.auction);
  const startMs = Date.parse(schedule.startsAt ?? request.recordedAt);
  const elapsed = Math.max(0, Math.floor((nowMs - startMs) / 1000));
  return auctionPrice(schedule, elapsed).limitPrice;
}

/** Whether the request's auctions are still in their first cycle at `nowMs` (false without an auction). */
function inFirstCycle(request: LiquidationRequest, nowMs: number): boolean {
  return request.plan.steps.some((step) => {
    if (!step.auction) return false;
    const startMs = Date.parse(step.auction.startsAt ?? request.recordedAt);
    return nowMs - startMs < step.auction.cycleSeconds * 1000;
  });
}

/**
 * The most contracts of one perpetual the demo's market takes from one liquidation request at its limit: a
 * larger position is closed in part and the request reported done, as a venue without a backstop liquidity
 * provider would. What stays open of a bankrupt account is what the loss waterfall's ADL closes
 * (ACC-EXHAUSTS, book.ts).
 */
export const PERPETUAL_DEPTH = dec("5");

/**
 * One plan step filled at the market, a little worse than the mark and never past the limit, for no more
 * than is there (nor, for a perpetual, than the market's depth): the item's new quantity or size, and the
 * cash after the proceeds and the fee. Undefined when the limit does not allow a fill or nothing is left.
 */
function fillAtMarket(
  step: PlanStep,
  limit: Dec,
  item: Item,
  asset: string,
  mark: Dec,
  cashBefore: Dec,
  now: string,
): { cash: Dec; write: Item; quantity: Dec; price: Dec; fee: Dec } | undefined {
  const fillable = step.side === "SELL" ? mark.greaterThanOrEqualTo(limit) : mark.lessThanOrEqualTo(limit);
  if (!fillable) return undefined;
  const slip = dec("0.001");
  const atMarket = quantize(
    step.side === "SELL" ? mark.times(dec("1").minus(slip)) : mark.times(dec("1").plus(slip)),
    step.target.kind === "HOLDING" && asset === "SOL" ? 3 : 2,
    Rounding.HALF_EVEN,
  );
  // A little worse than the mark, never past the limit.
  const price = step.side === "SELL" ? Dec.max(atMarket, limit) : Dec.min(atMarket, limit);
  const available = dec(String(step.target.kind === "HOLDING" ? item.quantity : item.size)).abs();
  // Never more than is there: an earlier attempt may have filled part of it already.
  const wanted = Dec.min(
    dec(step.quantity),
    step.target.kind === "POSITION" ? PERPETUAL_DEPTH : dec(step.quantity),
  );
  const quantity = wanted.greaterThan(available) ? available : wanted;
  if (quantity.isZero()) return undefined;
  let cash = cashBefore;
  let write: Item;
  if (step.target.kind === "HOLDING") {
    const held = dec(String(item.quantity));
    const next = step.side === "SELL" ? held.minus(quantity) : held.plus(quantity);
    cash = step.side === "SELL" ? cash.plus(quantity.times(price)) : cash.minus(quantity.times(price));
    write = { ...item, quantity: next.toFixed(), seq: Number(item.seq) + 1, updatedAt: now };
  } else {
    const size = dec(String(item.size));
    const closed = size.isNegative() ? quantity.negated() : quantity;
    cash = cash.plus(closed.times(price.minus(dec(String(item.entryPrice)))));
    write = { ...item, size: size.minus(closed).toFixed(), seq: Number(item.seq) + 1, updatedAt: now };
  }
  const fee = quantize(quantity.times(price).times(dec("0.0005")), 2, Rounding.UP);
  return { cash: cash.minus(fee), write, quantity, price, fee };
}

export class ExecutionSystem {
  readonly stats: Pick<ActorStats, "fills" | "unfilled"> = { fills: 0, unfilled: 0 };
  private readonly seen = new Set<string>();
  /** The latest request of each call: a retry replaces the request it retries. */
  private readonly latest = new Map<string, { requestId: string; attempt: number }>();

  constructor(
    private readonly dynamo: DynamoDBClient,
    private readonly clock: Clock,
    private readonly random: () => number,
  ) {}

  /** Takes a request as an execution system would: only if it satisfies the event's schema (else throws). */
  onLiquidationRequested(event: unknown): void {
    const detail = liquidationRequestedSchema.parse(event);
    if (this.seen.has(detail.requestId)) return;
    this.seen.add(detail.requestId);
    const current = this.latest.get(detail.callId);
    if (!current || detail.attempt > current.attempt) {
      this.latest.set(detail.callId, { requestId: detail.requestId, attempt: detail.attempt });
    }
    const at = this.clock.nowMs() + (20 + this.random() * 60) * 1000;
    this.clock.at(at, () => this.look(detail));
  }

  /** Works the request if it is still the call's latest; an auction not yet at the market is looked at again. */
  private async look(detail: LiquidationRequest): Promise<void> {
    if (this.latest.get(detail.callId)?.requestId !== detail.requestId) return;
    if (await this.work(detail)) return;
    const next = this.clock.nowMs() + AUCTION_LOOK_SECONDS * 1000;
    if (inFirstCycle(detail, next)) this.clock.at(next, () => this.look(detail));
    else this.stats.unfilled += 1; // the engine retries with a fresh plan after its retry period
  }

  /**
   * Works each step at the market if its limit of the moment allows; fills move holdings and cash, then one
   * final report. Says whether anything filled.
   */
  private async work(detail: LiquidationRequest): Promise<boolean> {
    const items = await itemsOf(this.dynamo, detail.accountId);
    const bySk = new Map(items.map((item) => [String(item.sk), item]));
    const cashItem = bySk.get("HOLDING#USD");
    let cash = dec(String(cashItem?.quantity ?? "0"));
    const writes: Item[] = [];
    const reports: Item[] = [];
    const now = this.clock.now();
    for (const [index, step] of detail.plan.steps.entries()) {
      const sk =
        step.target.kind === "HOLDING"
          ? `HOLDING#${step.target.asset}`
          : `POSITION#${step.target.instrument}`;
      const item = bySk.get(sk);
      if (!item) continue;
      const asset = step.target.kind === "HOLDING" ? step.target.asset : String(item.underlying);
      const mark = await markOf(this.dynamo, asset);
      if (!mark) continue;
      const fill = fillAtMarket(
        step,
        limitAt(step, detail, this.clock.nowMs()),
        item,
        asset,
        mark,
        cash,
        now,
      );
      if (!fill) continue;
      cash = fill.cash;
      writes.push(fill.write);
      const reportId = `FILL-${detail.requestId.replace(/[^A-Za-z0-9]/g, "")}-${index + 1}`;
      reports.push({
        accountId: detail.accountId,
        sk: `EXEC#${reportId}`,
        updatedAt: now,
        seq: 1,
        reportId,
        requestId: detail.requestId,
        target: step.target,
        side: step.side,
        filledQuantity: fill.quantity.toFixed(),
        averagePrice: fill.price.toFixed(),
        fee: fill.fee.toFixed(2),
        final: false,
        executedAt: now,
      });
    }
    return this.report(detail, { cashItem, cash, writes, reports, now });
  }

  /** The fills, the new cash and the reports of one request: one transaction (the data contract's rule). */
  private async report(
    detail: LiquidationRequest,
    filled: { cashItem: Item | undefined; cash: Dec; writes: Item[]; reports: Item[]; now: string },
  ): Promise<boolean> {
    const { cashItem, cash, writes, reports, now } = filled;
    const last = reports[reports.length - 1];
    if (!last) return false; // nothing within the limits of the moment
    reports[reports.length - 1] = { ...last, final: true };
    await putAll(this.dynamo, [
      ...writes,
      {
        accountId: detail.accountId,
        sk: "HOLDING#USD",
        updatedAt: now,
        seq: Number(cashItem?.seq ?? 0) + 1,
        asset: "USD",
        quantity: quantize(cash, 2, Rounding.FLOOR).toFixed(2),
      },
      ...reports,
    ]);
    this.stats.fills += 1;
    return true;
  }
}
