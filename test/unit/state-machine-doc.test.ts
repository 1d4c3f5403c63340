/**
 * Keeps docs/state-machine.md honest: its mermaid diagram must name every status and show exactly the status
 * transitions that transition() makes. The scenarios below drive the real machine (assess + transition) on
 * one stock bought on margin, whose ratio (200·P − 10,000) / (0.25 · 200·P) = 4 − 200/P falls with P:
 * warning below $68.97 (ratio 1.10), breach below $66.67 (ratio 1), hard floor at $57.14 and below (ratio 0.5).
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { assess } from "../../functions/domain/assess.ts";
import {
  type CallState,
  type EngineEvent,
  initialState,
  STATUSES,
  type Status,
  type Step,
  transition,
} from "../../functions/domain/machine.ts";
import { dec } from "../../functions/domain/money.ts";
import type { Policy } from "../../functions/domain/policy.ts";
import type { ResolvedMark } from "../../functions/domain/prices.ts";
import type { Account } from "../../functions/domain/valuation.ts";
import { account, flatTier, marks, NOW, policy } from "../support/domain-builders.ts";

const DOC = fileURLToPath(new URL("../../docs/state-machine.md", import.meta.url));

/** The first ```mermaid block that holds a stateDiagram-v2. */
function mermaidBlock(markdown: string): string {
  for (const match of markdown.matchAll(/```mermaid\n([\s\S]*?)```/g)) {
    const body = match[1] ?? "";
    if (/^\s*stateDiagram-v2\b/.test(body)) return body;
  }
  throw new Error("docs/state-machine.md has no ```mermaid stateDiagram-v2 block");
}

/** Every `A --> B` (optionally `: label`) in the diagram, as "A-->B"; `[*]` is kept as is. */
function diagramEdges(diagram: string): Set<string> {
  const edges = new Set<string>();
  for (const line of diagram.split("\n")) {
    const match = /^\s*(\[\*\]|[A-Za-z_][\w]*)\s*-->\s*(\[\*\]|[A-Za-z_][\w]*)\s*(?::.*)?$/.exec(line);
    if (match?.[1] && match[2]) edges.add(`${match[1]}-->${match[2]}`);
  }
  return edges;
}

const isStatus = (name: string): name is Status => (STATUSES as readonly string[]).includes(name);

const stockPolicy = policy({
  assets: { XYZ: { quantityScale: 0, priceScale: 2, haircut: "0", longTiers: flatTier("0.25", "0.5") } },
  warning: { cushion: "0.10" },
  call: {
    restoreBuffer: "0.05",
    exitBuffer: "0.05",
    minimumTransferAmount: "0",
    threshold: "0",
    curePeriodSeconds: 3_600,
    reminderOffsetsSeconds: [1_200],
    hardFloorRatio: "0.5",
    hardFloorConfirmSeconds: 0,
  },
  deposits: { minimumCureAmount: "500", maxPauseSeconds: 1_800 },
  liquidation: { limitPriceSlippage: "0.02", dustNotional: "0", retrySeconds: 300, maxAttempts: 3 },
  prices: { maxAgeSeconds: 60, maxDivergence: "0.05", minimumSources: 1, haltGraceSeconds: 600 },
});
const borrower = account({ cash: "-10000", holdings: { XYZ: "200" } });
/** The same policy with the product's default hard-floor confirmation (30 s). */
const confirmingPolicy = policy({
  ...stockPolicy.document,
  call: { ...stockPolicy.document.call, hardFloorConfirmSeconds: 30 },
});

/** Status edges ("FROM-->TO", self-loops included) and halt-overlay edges seen while driving the machine. */
const observed = { status: new Set<string>(), overlay: new Set<string>() };

/** One account walked through transition(), recording every audited edge it takes. */
class Walk {
  state: CallState = initialState(borrower.accountId, NOW);
  private clock = 0;
  private events = 0;

  constructor(
    private readonly rules: Policy = stockPolicy,
    /** The account as upstream holds it now: a walk may pay a call or hold nothing to sell. */
    public holder: Account = borrower,
  ) {
    observed.status.add(`[*]-->${this.state.status}`);
  }

  /** A settled deposit of `amount`: the cash holding and the deposit record, as one upstream change. */
  pay(amount: string): void {
    this.holder = {
      ...this.holder,
      cash: this.holder.cash.plus(amount),
      settledDeposits: [
        ...(this.holder.settledDeposits ?? []),
        { depositId: `wire-${this.clock}`, amount: dec(amount), settledAt: this.at() },
      ],
    };
  }

  private at(): string {
    return new Date(Date.parse(NOW) + this.clock * 1000).toISOString();
  }

  private step(price: string, secondsLater: number, event: EngineEvent, stale: boolean): Step {
    this.clock += secondsLater;
    const now = this.at();
    const resolved = new Map<string, ResolvedMark>(
      [...marks({ XYZ: price }, now)].map(([asset, mark]) => [
        asset,
        stale ? { ...mark, status: "STALE", detail: "feed silent" } : mark,
      ]),
    );
    const step = transition(this.state, assess(this.holder, resolved, this.rules), this.rules, event, now);
    const audits = step.effects.filter((effect) => effect.kind === "AUDIT");
    const halts = this.state.halt === null && step.next.halt !== null;
    const resumes = this.state.halt !== null && step.next.halt === null;
    if (halts) observed.overlay.add("PRICES_OK-->HALTED");
    if (resumes) observed.overlay.add("HALTED-->GRACE");
    // The halt and the resume are audited first, with from = to; they belong to the overlay, not to the
    // statuses. A final execution report is still processed in the step that halts.
    const transitions = halts || resumes ? audits.slice(1) : audits;
    for (const audit of transitions) observed.status.add(`${audit.from}-->${audit.to}`);
    this.state = step.next;
    return step;
  }

  revalue(price: string, secondsLater = 60, stale = false): Step {
    const eventId = `e${++this.events}`;
    return this.step(price, secondsLater, { type: "REVALUE", cause: "PRICE_TICK", eventId }, stale);
  }

  finalReport(price: string, secondsLater = 60, stale = false): Step {
    const requestId = this.state.call?.liquidationRequestId;
    if (!requestId) throw new Error(`no liquidation request to report on (status ${this.state.status})`);
    const eventId = `e${++this.events}`;
    return this.step(
      price,
      secondsLater,
      { type: "EXECUTION_REPORT", eventId, requestId, final: true },
      stale,
    );
  }

  /** The current request ends with nothing filled, valued at `price`. */
  emptyReport(price: string): Step {
    const requestId = this.state.call?.liquidationRequestId;
    if (!requestId) throw new Error(`no liquidation request to report on (status ${this.state.status})`);
    const fill = {
      reportId: `empty-${this.events}`,
      requestId,
      target: { kind: "HOLDING", asset: "XYZ" } as const,
      side: "SELL" as const,
      filledQuantity: "0",
      averagePrice: null,
      fee: "0",
      final: true,
    };
    const eventId = `e${++this.events}`;
    return this.step(
      price,
      60,
      { type: "EXECUTION_REPORT", eventId, requestId, final: true, fills: [fill] },
      false,
    );
  }

  /** Revalues at `price` and checks the status reached: pins each scenario to its intent. */
  go(price: string, expected: Status, secondsLater = 60): void {
    this.revalue(price, secondsLater);
    expect(this.state.status).toBe(expected);
  }

  /** Reports the current liquidation request as finished, valued at `price`, and checks the status. */
  fill(price: string, expected: Status, stale = false): void {
    this.finalReport(price, 60, stale);
    expect(this.state.status).toBe(expected);
  }
}

/** Drives every path that the reading of machine.ts finds. */
function driveScenarios(): void {
  // Warning, clearing it, a call with a reminder, a cure and back to healthy.
  const first = new Walk();
  first.go("100", "HEALTHY");
  first.go("68", "WARNING");
  first.go("80", "HEALTHY");
  first.go("68", "WARNING");
  first.go("60", "CALLED");
  first.go("60", "CALLED", 1_200);
  expect(first.state.call?.remindersSent).toBe(1);
  first.go("80", "CURED");
  first.go("80", "HEALTHY");

  // A gap straight into breach, cured, then back into the warning zone.
  const second = new Walk();
  second.go("60", "CALLED");
  second.go("80", "CURED");
  second.go("68", "WARNING");

  // Called again after a cure, liquidated at the deadline, one retry, completed, healthy again.
  const third = new Walk();
  third.go("60", "CALLED");
  third.go("80", "CURED");
  third.go("60", "CALLED");
  third.go("60", "LIQUIDATING", 3_600);
  third.go("60", "LIQUIDATING", 300);
  expect(third.state.call?.liquidationAttempts).toBe(2);
  third.fill("60", "LIQUIDATED");
  third.go("100", "HEALTHY");

  // The hard floor from HEALTHY, completed, then the warning zone.
  const fourth = new Walk();
  fourth.go("50", "LIQUIDATING");
  fourth.fill("68", "LIQUIDATED");
  fourth.go("68", "WARNING");

  // Liquidated, then called again.
  const fifth = new Walk();
  fifth.go("50", "LIQUIDATING");
  fifth.fill("60", "LIQUIDATED");
  fifth.go("60", "CALLED");

  // Liquidation ending with negative equity, then equity restored.
  const sixth = new Walk();
  sixth.go("50", "LIQUIDATING");
  sixth.fill("40", "BAD_DEBT");
  sixth.go("100", "HEALTHY");

  // The halt overlay: stale prices halt, a second stale tick does nothing, recovery starts the grace period.
  const seventh = new Walk();
  seventh.go("100", "HEALTHY");
  expect(seventh.revalue("100", 60, true).next.halt).not.toBeNull();
  expect(seventh.revalue("100", 60, true).effects).toEqual([]);
  expect(seventh.revalue("100").next.resumedAt).not.toBeNull();

  // Out of breach but not cured at the deadline ($67.50: ratio 1.037, cure line 1.05): the remaining
  // deficit is liquidated. The final report arrives while prices are stale, and still settles it.
  const eighth = new Walk();
  eighth.go("60", "CALLED");
  eighth.go("67.50", "LIQUIDATING", 3_600);
  eighth.fill("67.50", "LIQUIDATED", true);
  expect(eighth.state.halt).not.toBeNull();

  // The hard floor is confirmed by a revaluation 30 s after it was first seen: CALLED first, then LIQUIDATING.
  const ninth = new Walk(confirmingPolicy);
  ninth.go("50", "CALLED");
  expect(ninth.state.call?.hardFloorSince).not.toBeNull();
  ninth.go("50", "CALLED", 29);
  ninth.go("50", "LIQUIDATING", 1);

  // Paid the call in full, then in breach again: the call is met by the deposit and a new call is issued.
  // At $60: A = 2,000, M = 3,000, target 3,150, a call of 1,150. Paid; at $58, A = 2,750 < M = 2,900.
  const tenth = new Walk();
  tenth.go("60", "CALLED");
  tenth.pay("1150");
  tenth.go("58", "CALLED");
  expect(tenth.state.call?.callId).toBe("acct-1:call:2");

  // Liquidating, the market recovers and the execution system sells nothing: nothing is outstanding and
  // nothing needs selling, so the call closes as met by the market.
  const twelfth = new Walk();
  twelfth.go("50", "LIQUIDATING");
  twelfth.emptyReport("80");
  expect(twelfth.state.status).toBe("CURED");

  // A loan with nothing to sell: called, and then a bad-debt case for the operator, with no request.
  const eleventh = new Walk(stockPolicy, account({ cash: "-100" }));
  eleventh.go("60", "BAD_DEBT");
}

describe("docs/state-machine.md", () => {
  const diagram = mermaidBlock(readFileSync(DOC, "utf8"));
  const edges = diagramEdges(diagram);
  beforeAll(driveScenarios);

  it("names every status of the machine in its diagram", () => {
    const nodes = new Set([...edges].flatMap((edge) => edge.split("-->")));
    for (const status of STATUSES) expect(nodes, status).toContain(status);
  });

  it("shows every status transition the machine makes", () => {
    const missing = [...observed.status].filter((edge) => !edges.has(edge)).sort();
    expect(missing, "edges transition() makes that the diagram lacks").toEqual([]);
  });

  it("shows no status transition the scenarios do not produce", () => {
    const statusEdges = [...edges].filter((edge) =>
      edge.split("-->").every((node) => node === "[*]" || isStatus(node)),
    );
    const unexplained = statusEdges.filter((edge) => !observed.status.has(edge)).sort();
    expect(unexplained, "diagram edges no scenario reaches").toEqual([]);
  });

  it("shows the halt overlay the machine applies", () => {
    expect(observed.overlay.size).toBe(2);
    for (const edge of observed.overlay) expect(edges, edge).toContain(edge);
  });

  it("issues the call notice before the liquidation on the hard-floor path, in one step", () => {
    const walk = new Walk();
    const step = walk.revalue("50");
    expect(step.next.status).toBe("LIQUIDATING");
    expect(
      step.effects.map((effect) =>
        effect.kind === "AUDIT"
          ? `AUDIT ${effect.from}->${effect.to}`
          : effect.kind === "NOTIFY"
            ? `NOTIFY ${effect.notice}`
            : effect.kind === "REQUEST_LIQUIDATION"
              ? `REQUEST_LIQUIDATION ${effect.reason}`
              : effect.kind,
      ),
    ).toEqual([
      "AUDIT HEALTHY->CALLED",
      "NOTIFY CALL",
      "AUDIT CALLED->LIQUIDATING",
      "NOTIFY LIQUIDATION_NOTICE",
      "REQUEST_LIQUIDATION HARD_FLOOR",
    ]);
    expect(edges).toContain("HEALTHY-->CALLED");
    expect(edges).toContain("CALLED-->LIQUIDATING");
  });
});
