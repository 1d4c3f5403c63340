/**
 * The safety net's harness (issue 12): one seed drives a hostile book generated with fast-check, the
 * DynamoDB faults injected into the handlers' client (SDK middleware, never an edit of the code under
 * test; among them invocations stopped mid-flight, as Lambda stops one at its timeout), and the order in which the mappings' pollers are scheduled. A failing run prints its seed;
 * `CHAOS_SEED=<seed> npx vitest run test/integration/safety-net.test.ts` replays the same book and the same
 * fault decisions (DynamoDB Local's own timing is not under the seed).
 */
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import fc from "fast-check";
import { currentInvocation, InvocationStopped } from "../../functions/local/invocation.ts";
import type { Item } from "./pipeline.ts";
import { holding, perpetual, profile } from "./upstream.ts";

/** The seeded generator of the fault and schedule decisions: the demo book's (mulberry32). */
export { seededRandom as seeded } from "../../functions/local/demo/book.ts";

export interface FaultRates {
  /** Before the request: ProvisionedThroughputExceededException. */
  readonly throttle: number;
  /** Before a TransactWriteItems: TransactionCanceledException (TransactionConflict). */
  readonly conflict: number;
  /** After a write succeeded: the reply is lost (the caller sees an error, the write stands). */
  readonly lostReply: number;
  /** Before the request: up to this many milliseconds of latency, on a fifth of the requests. */
  readonly latencyMs: number;
  /**
   * Before the request: the invocation making it is stopped, as Lambda stops one at its timeout
   * (functions/local/invocation.ts): it fails, and neither this request nor any later one reaches DynamoDB.
   */
  readonly kill: number;
}

export type FaultCounts = Record<"throttled" | "conflicts" | "lostReplies" | "delayed" | "killed", number>;

const WRITES = new Set([
  "PutItemCommand",
  "UpdateItemCommand",
  "TransactWriteItemsCommand",
  "DeleteItemCommand",
]);

function awsError(name: string, message: string, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(message), { name, $fault: "client", $metadata: {}, ...extra });
}

/**
 * Injects faults into `client` while `active()` says so. The middleware sits before the SDK's retries
 * (step "initialize"): the engine sees each fault, as it would once the SDK's own retries are spent.
 */
export function injectDynamoFaults(
  client: DynamoDBClient,
  random: () => number,
  rates: FaultRates,
  active: () => boolean,
): FaultCounts {
  const counts: FaultCounts = { throttled: 0, conflicts: 0, lostReplies: 0, delayed: 0, killed: 0 };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (!active()) return next(args);
      const command = context.commandName ?? "";
      if (random() < 0.2 && rates.latencyMs > 0) {
        counts.delayed += 1;
        await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * rates.latencyMs)));
      }
      const invocation = currentInvocation();
      if (invocation && random() < rates.kill) {
        counts.killed += 1;
        invocation.kill("injected: stopped at its timeout");
        throw new InvocationStopped("injected: the invocation was stopped before this request");
      }
      if (random() < rates.throttle) {
        counts.throttled += 1;
        throw awsError("ProvisionedThroughputExceededException", "injected: throughput exceeded");
      }
      if (command === "TransactWriteItemsCommand" && random() < rates.conflict) {
        counts.conflicts += 1;
        throw awsError("TransactionCanceledException", "injected: transaction conflict", {
          CancellationReasons: [{ Code: "TransactionConflict" }],
        });
      }
      const result = await next(args);
      if (WRITES.has(command) && random() < rates.lostReply) {
        counts.lostReplies += 1;
        throw awsError("TimeoutError", "injected: the reply to a write that succeeded was lost");
      }
      return result;
    },
    { step: "initialize", name: "chaosFaults" },
  );
  return counts;
}

/** What the oracle must expect of each hostile kind: valued like any account, or parked. */
export const HOSTILE_KINDS = {
  DUST_SHORT: "valued",
  ZERO_HOLDINGS: "valued",
  LONG_NAME: "valued",
  BAD_EMAIL: "valued",
  UNLISTED_OWNED: "valued",
  FUTURE_TIMESTAMPS: "valued",
  OVERSIZED_EXTENSION: "valued",
  EDGE_QUANTITY: "valued",
  UNLISTED_BORROWED: "parked",
  WIDE_HOLDING: "parked",
} as const;
export type HostileKind = keyof typeof HOSTILE_KINDS;

export interface BookAccount {
  readonly accountId: string;
  readonly kind: HostileKind | "PLAIN";
  readonly items: readonly Item[];
  /** The items that break the contract (to be quarantined), by sort key. */
  readonly breaking: readonly string[];
}

/** The levered crypto account of the pipeline tests with a loan of `loan` USD. */
function levered(accountId: string, loan: string): Item[] {
  return [
    profile(accountId),
    holding(accountId, "USD", `-${loan}`),
    holding(accountId, "BTC", "1.25000000"),
    holding(accountId, "ETH", "6.00000000"),
    perpetual(accountId, "BTC-PERP", "0.500", "64250.50"),
  ];
}

function hostile(kind: HostileKind, accountId: string, loan: string, size: number): BookAccount {
  const base = levered(accountId, loan);
  const replace = (sk: string, item: Item) => base.map((other) => (other.sk === sk ? item : other));
  switch (kind) {
    case "DUST_SHORT":
      return {
        accountId,
        kind,
        items: replace("HOLDING#ETH", holding(accountId, "ETH", "-0.000000000000000001")),
        breaking: [],
      };
    case "ZERO_HOLDINGS":
      return {
        accountId,
        kind,
        items: [
          ...base,
          ...Array.from({ length: size }, (_, i) =>
            holding(accountId, `Z${String(i).padStart(30, "0")}`, "0"),
          ),
        ],
        breaking: [],
      };
    case "LONG_NAME":
      return {
        accountId,
        kind,
        items: replace("PROFILE", { ...profile(accountId), borrowerName: "N".repeat(200 + size) }),
        breaking: ["PROFILE"],
      };
    case "BAD_EMAIL":
      return {
        accountId,
        kind,
        items: replace("PROFILE", {
          ...profile(accountId),
          contact: { phoneE164: "+12125550142", email: "@".repeat((size % 50) + 1) },
        }),
        breaking: ["PROFILE"],
      };
    case "UNLISTED_OWNED":
      return {
        accountId,
        kind,
        items: [...base, holding(accountId, "AIRDROP", String(size * 1000))],
        breaking: [],
      };
    case "FUTURE_TIMESTAMPS":
      return {
        accountId,
        kind,
        items: base.map((item) => ({ ...item, updatedAt: "2099-12-31T23:59:59Z" })),
        breaking: [],
      };
    case "OVERSIZED_EXTENSION":
      return {
        accountId,
        kind,
        items: base.map((item) => ({ ...item, x_note: "x".repeat(20_000 + size) })),
        breaking: [],
      };
    case "EDGE_QUANTITY":
      // 40 characters, the longest decimal the contract allows.
      return {
        accountId,
        kind,
        items: replace("HOLDING#BTC", holding(accountId, "BTC", `1.${"2".repeat(38)}`)),
        breaking: [],
      };
    case "UNLISTED_BORROWED":
      return { accountId, kind, items: [...base, holding(accountId, "AIRDROP", "-5")], breaking: [] };
    case "WIDE_HOLDING": {
      const wide: Item = { ...holding(accountId, "BTC", "1.25000000") };
      for (let i = 0; i < 1_000 + size; i += 1) wide[`attribute${i}`] = "x";
      return { accountId, kind, items: replace("HOLDING#BTC", wide), breaking: ["HOLDING#BTC"] };
    }
  }
}

/** A book of `plain` accounts and one of each hostile kind plus `extraHostile` more, from `seed`. */
export function hostileBook(seed: number, plain: number, extraHostile: number): BookAccount[] {
  const kinds = Object.keys(HOSTILE_KINDS) as HostileKind[];
  const loan = fc.integer({ min: 30_000, max: 62_000 }).map((usd) => `${usd}.00`);
  const arbitrary = fc.record({
    plainLoans: fc.array(loan, { minLength: plain, maxLength: plain }),
    hostile: fc.array(
      fc.record({ kind: fc.constantFrom(...kinds), loan, size: fc.integer({ min: 1, max: 400 }) }),
      {
        minLength: kinds.length + extraHostile,
        maxLength: kinds.length + extraHostile,
      },
    ),
  });
  const [drawn] = fc.sample(arbitrary, { seed, numRuns: 1 });
  if (!drawn) throw new Error("no book drawn");
  const book: BookAccount[] = drawn.plainLoans.map((usd, i) => ({
    accountId: `ACC-P${String(i).padStart(3, "0")}`,
    kind: "PLAIN",
    items: levered(`ACC-P${String(i).padStart(3, "0")}`, usd),
    breaking: [],
  }));
  drawn.hostile.forEach((draw, i) => {
    // Every kind at least once, then the drawn ones.
    const kind = i < kinds.length ? (kinds[i] as HostileKind) : draw.kind;
    // The index last: an SMS names its account by the id's last four characters, which must differ.
    book.push(hostile(kind, `ACC-${kind}-H${String(i).padStart(3, "0")}`, draw.loan, draw.size));
  });
  return book;
}
