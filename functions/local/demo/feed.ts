/**
 * The demo's market feed and the actors' schedule, on one pump: every 30 simulated seconds the feeds
 * publish the market's prices through the upstream data contract (a write to the Prices table), and the
 * tasks the actors set for a simulated time (a deposit settling, a fill) run once the clock reaches it.
 */
import { PutItemCommand } from "@aws-sdk/client-dynamodb";
import { toItem } from "../../adapters/codec.ts";
import type { LocalRuntime } from "../runtime.ts";
import type { Clock } from "./actors.ts";
import { OPENING, priceAt, publishes, SOURCES, volatilityAt } from "./market.ts";

const TICK_SECONDS = 30;
const PUMP_INTERVAL_MS = 25;

/** The price of each asset over the scenario (one source's), as the report draws it. */
export type PricePath = Record<string, Array<{ t: string; price: string }>>;

/** The price feeds: opening prices until the scenario starts, then the crash, second by simulated second. */
export class MarketFeed {
  /** index:kraken's prices during the scenario, for the report. */
  readonly pricePath: PricePath = { BTC: [], ETH: [], SOL: [] };
  /** The asOf of each tick published, by the tick's event id, to measure how soon a call follows it. */
  readonly tickAsOf = new Map<string, string>();
  /** The simulated time the crash begins; until then, the feeds publish opening prices. */
  private startMs = Number.POSITIVE_INFINITY;
  private seq = 0;

  constructor(private readonly runtime: LocalRuntime) {}

  /** Starts the crash now, and returns when that was. */
  startScenario(): number {
    this.startMs = this.runtime.nowMs();
    return this.startMs;
  }

  get scenarioStartMs(): number {
    return this.startMs;
  }

  /** The last price published of an asset during the scenario, or its opening price. */
  lastPrice(asset: string): string | undefined {
    return this.pricePath[asset]?.at(-1)?.price ?? OPENING[asset];
  }

  /** One tick: each source that is live publishes each asset's price now. */
  async publish(): Promise<void> {
    const second = Math.max(0, Math.floor((this.runtime.nowMs() - this.startMs) / 1000));
    const asOf = this.runtime.now();
    for (const asset of Object.keys(OPENING)) {
      for (const source of SOURCES) {
        if (!publishes(asset, source, second)) continue;
        this.seq += 1;
        const price = priceAt(asset, source, second);
        this.tickAsOf.set(`tick:${asset}:${source}:${this.seq}`, asOf);
        await this.runtime.dynamo.send(
          new PutItemCommand({
            TableName: "Prices",
            Item: toItem({
              asset,
              source,
              price,
              asOf,
              seq: this.seq,
              ...(source === "index:coinbase" ? { realizedVolatility: volatilityAt(second) } : {}),
            }),
          }),
        );
        if (source === "index:kraken" && Number.isFinite(this.startMs))
          this.pricePath[asset]?.push({ t: asOf, price });
      }
    }
  }
}

/** The actors' clock: the runtime's simulated time, and the tasks they set for later. */
export class ActorSchedule implements Clock {
  private readonly tasks: Array<{ atMs: number; task: () => Promise<void> }> = [];

  constructor(private readonly runtime: LocalRuntime) {}

  nowMs(): number {
    return this.runtime.nowMs();
  }

  now(): string {
    return this.runtime.now();
  }

  at(atMs: number, task: () => Promise<void>): void {
    this.tasks.push({ atMs, task });
  }

  /** Runs the tasks that are due, one after the other; a task's failure goes to `onError`. */
  async runDue(onError: (error: unknown) => void): Promise<void> {
    const due = this.tasks.filter((task) => task.atMs <= this.runtime.nowMs());
    for (const task of due) this.tasks.splice(this.tasks.indexOf(task), 1);
    for (const task of due) await task.task().catch(onError);
  }
}

/** Drives the feed and the schedule every 25 ms, one round at a time, until stopped. */
export class MarketPump {
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private lastTickMs = Number.NEGATIVE_INFINITY;
  /** After Ctrl-C the services go away under work in flight: its errors are not news. */
  private stopping = false;

  constructor(
    private readonly runtime: LocalRuntime,
    private readonly feed: MarketFeed,
    private readonly schedule: ActorSchedule,
    private readonly log: (line: string) => void,
  ) {}

  /** Publishes the opening prices, then starts pumping. */
  async open(): Promise<void> {
    await this.feed.publish();
    this.lastTickMs = this.runtime.nowMs();
    this.timer = setInterval(() => this.round(), PUMP_INTERVAL_MS);
  }

  /** Stops feeding the market and running the actors' tasks. */
  stop(): void {
    clearInterval(this.timer);
  }

  /** Ctrl-C: stop at once, and quietly. */
  abort(): void {
    this.stopping = true;
    this.stop();
  }

  private round(): void {
    if (this.busy) return;
    this.busy = true;
    void (async () => {
      try {
        if (this.runtime.nowMs() - this.lastTickMs >= TICK_SECONDS * 1000) {
          this.lastTickMs = this.runtime.nowMs();
          await this.feed.publish();
        }
        await this.schedule.runDue((error) => {
          if (!this.stopping) this.log(`actor: ${String(error)}`);
        });
      } catch (error) {
        if (!this.stopping) this.log(`market: ${error instanceof Error ? error.message : String(error)}`);
      } finally {
        this.busy = false;
      }
    })();
  }
}
