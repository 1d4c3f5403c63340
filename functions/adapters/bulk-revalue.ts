/**
 * One page of a sweep segment, revalued in bulk (docs/pipeline.md, section 8). Per page:
 *
 * 1. one strongly consistent Scan page of the Accounts table, every item kind, grouped by account (a scan
 *    returns an account's items together, in sort-key order): a Scan of PROFILEs would need one Query per
 *    account after it. A page that stops inside an account leaves that account to the next page, which
 *    starts at its first item;
 * 2. at once: the accounts' MarginCalls states and their trigger-index KEYS items (BatchGetItem), and one
 *    strongly consistent Query per asset not yet read in this invocation (resolved per policy by
 *    `resolveMark`, as account-inputs.ts does);
 * 3. the float screen (domain/screen.ts `screenFloats`) on the accounts that may be cleared;
 * 4. the exact revaluation `revalueAccount`, one account at a time, on every other account.
 *
 * An account is cleared, and neither revalued nor written, only when the exact path would change nothing
 * and its index needs no upkeep: its state is HEALTHY without a halt (or it has none, which is the same
 * initial state), every mark it needs is OK, the floats decide it HEALTHY under the proven bound (so
 * `transition` keeps the state as it is), and its KEYS item is fresh with every stored entry still on the
 * right side of the mark. Everything else goes to the exact path, which decides and re-indexes as before.
 */
import { ScanCommand } from "@aws-sdk/client-dynamodb";
import type { ProfileItem } from "../domain/contract.ts";
import type { CallState } from "../domain/machine.ts";
import { dec, isCanonicalDecimal } from "../domain/money.ts";
import { type ResolvedMark, resolveMark, type SourceMark } from "../domain/prices.ts";
import { compileAccounts, MarginState, prepareScreen, Recheck, screenFloats } from "../domain/screen.ts";
import type { Account } from "../domain/valuation.ts";
import { accountOf, assetsNeeded, loadSources, usableItems, valuedAccount } from "./account-inputs.ts";
import { batchGet } from "./batch-get.ts";
import { fromImage, toItem } from "./codec.ts";
import type { EngineDeps } from "./engine.ts";
import { type FanOutMessage, type PageResult, revalueWithin } from "./fan-out.ts";
import type { PolicyEntry } from "./settings.ts";
import { lineOf, REFRESH_AFTER_SECONDS } from "./trigger-index.ts";

type Item = Record<string, unknown>;
type SweepMessage = Extract<FanOutMessage, { type: "SWEEP_SEGMENT" }>;

export interface SweepPageResult extends PageResult {
  /** Accounts the screen cleared: no exact revaluation, no write. */
  readonly cleared: number;
}

interface AccountGroup {
  readonly accountId: string;
  readonly items: Item[];
  /** The page may not hold all of the account's items: the exact path reads the account itself. */
  partial: boolean;
}

interface ScannedPage {
  readonly groups: AccountGroup[];
  readonly scanned: number;
  readonly startKey: Record<string, unknown> | undefined;
}

function groupByAccount(items: readonly Item[], partial: boolean): AccountGroup[] {
  const groups = new Map<string, AccountGroup>();
  let current: AccountGroup | undefined;
  for (const item of items) {
    const accountId = String(item.accountId);
    if (current?.accountId !== accountId) {
      const earlier = groups.get(accountId);
      // A scan keeps an account's items together; were they ever apart, the exact path reads it whole.
      if (earlier) earlier.partial = true;
      current = earlier ?? { accountId, items: [], partial };
      groups.set(accountId, current);
    }
    current.items.push(item);
  }
  return [...groups.values()];
}

/**
 * One Scan page, grouped by account. When the segment continues, the page's last account may go on in the
 * next page: it is left to that page, which starts at its first item. An account with more items than a
 * page is read in pieces, each `partial`: only the piece with its PROFILE (an account's last item, "PROFILE"
 * sorting after every other kind) is swept, and it goes to the exact path, which reads the account whole.
 */
async function scanAccounts(deps: EngineDeps, message: SweepMessage, limit: number): Promise<ScannedPage> {
  const page = await deps.dynamo.send(
    new ScanCommand({
      TableName: deps.tables.accounts,
      Segment: message.segment,
      TotalSegments: message.totalSegments,
      Limit: limit,
      ConsistentRead: true,
      ...(message.startKey ? { ExclusiveStartKey: toItem(message.startKey) } : {}),
    }),
  );
  const items = (page.Items ?? []).map(fromImage);
  const scanned = page.ScannedCount ?? 0;
  const stoppedAt = page.LastEvaluatedKey ? fromImage(page.LastEvaluatedKey) : undefined;
  let kept = items;
  let startKey = stoppedAt;
  if (stoppedAt) {
    const lastAccount = items.at(-1)?.accountId;
    let cut = items.length;
    while (cut > 0 && items[cut - 1]?.accountId === lastAccount) cut -= 1;
    const before = items[cut - 1];
    if (before) {
      kept = items.slice(0, cut);
      startKey = { accountId: before.accountId, sk: before.sk };
    }
  }
  const groups = groupByAccount(kept, stoppedAt !== undefined && kept === items);
  // The rest of an account that did not fit in the page before.
  const first = groups[0];
  if (first && message.startKey && first.accountId === String(message.startKey.accountId))
    first.partial = true;
  return { groups, scanned, startKey };
}

interface Candidate {
  readonly accountId: string;
  readonly entry: PolicyEntry;
  readonly account: Account;
  readonly assets: readonly string[];
}

/** The account as loadAccountInputs would build it, or undefined when that would fail (the exact path says why). */
function candidateOf(group: AccountGroup, policies: ReadonlyMap<string, PolicyEntry>): Candidate | undefined {
  if (group.partial) return undefined;
  const items = usableItems(group.items);
  if (!Array.isArray(items)) return undefined;
  const profile = items.find((item): item is ProfileItem => item.sk === "PROFILE");
  const entry = profile ? policies.get(profile.policyId) : undefined;
  if (!entry) return undefined;
  const account = valuedAccount(accountOf(group.accountId, items, entry.policy.currency), entry);
  if ("ok" in account) return undefined;
  return { accountId: group.accountId, entry, account, assets: assetsNeeded(account, entry) };
}

async function readStates(deps: EngineDeps, ids: readonly string[]): Promise<Map<string, CallState>> {
  const items = await batchGet(
    deps.dynamo,
    deps.tables.marginCalls,
    ids.map((id) => ({ accountId: { S: id } })),
  );
  // The same decoding as engine.ts readCallState.
  return new Map(items.map((item) => [String(item.accountId), JSON.parse(String(item.state)) as CallState]));
}

/** What the trigger index recorded of an account (trigger-index.ts `syncTriggerIndex`, its KEYS item). */
interface StoredKeys {
  /** `<asset>#<DOWN|UP>#<shard>|<encoded price>#<kind>#<accountId>`, one per entry. */
  readonly entries: readonly string[];
  readonly refreshedAt: number;
}

const KEYS_LINE = "ACCOUNT#";

async function readIndexKeys(deps: EngineDeps, ids: readonly string[]): Promise<Map<string, StoredKeys>> {
  const items = await batchGet(
    deps.dynamo,
    deps.tables.triggerIndex,
    ids.map((id) => ({ line: { S: `${KEYS_LINE}${id}` }, triggerKey: { S: "KEYS" } })),
  );
  return new Map(
    items.map((item) => [
      String(item.line).slice(KEYS_LINE.length),
      {
        entries: String(item.keys ?? "")
          .split("\n")
          .filter(Boolean),
        refreshedAt: typeof item.refreshedAtEpochSeconds === "number" ? item.refreshedAtEpochSeconds : 0,
      },
    ]),
  );
}

/**
 * Whether the account's index needs no upkeep that the exact path's `syncTriggerIndex` would do: a KEYS
 * item refreshed less than REFRESH_AFTER_SECONDS ago, entries only for assets the account needs, every
 * DOWN entry below the mark and every UP entry above it (the mark is inside the stored band: no line was
 * crossed since the account was indexed). A missing, late or crossed index sends the account to exact.
 */
function indexCurrent(
  keys: StoredKeys | undefined,
  marks: ReadonlyMap<string, ResolvedMark>,
  nowSeconds: number,
): boolean {
  if (!keys || nowSeconds - keys.refreshedAt >= REFRESH_AFTER_SECONDS) return false;
  for (const entry of keys.entries) {
    const [line = "", triggerKey = ""] = entry.split("|");
    const [asset = "", direction = ""] = line.split("#");
    // An entry on a line other than its account's (written before LINE_SHARDS changed) is one no tick reads.
    const accountId = triggerKey.slice(triggerKey.lastIndexOf("#") + 1);
    if (direction !== "DOWN" && direction !== "UP") return false;
    if (line !== lineOf(asset, direction, accountId)) return false;
    const mark = marks.get(asset);
    // The key's order-preserving form (trigger-index.ts `encodePrice`) without its padding zeros.
    const text = triggerKey.slice(0, triggerKey.indexOf("#")).replace(/^0+(?=\d)/, "");
    if (!mark || !isCanonicalDecimal(text)) return false;
    const price = dec(text);
    const behind =
      direction === "DOWN" ? price.greaterThanOrEqualTo(mark.price) : price.lessThanOrEqualTo(mark.price);
    if (behind) return false;
  }
  return true;
}

/** The sources of each asset, read once per invocation: one strongly consistent Query per asset. */
export type PriceSources = Map<string, Promise<SourceMark[]>>;

function sourcesOf(deps: EngineDeps, cache: PriceSources, asset: string): Promise<SourceMark[]> {
  let sources = cache.get(asset);
  if (!sources) {
    sources = loadSources(deps.dynamo, deps.tables, asset);
    // Read ahead for the whole page: a failure surfaces where an account awaits it, never unhandled.
    sources.catch(() => undefined);
    cache.set(asset, sources);
  }
  return sources;
}

interface Screenable {
  readonly candidate: Candidate;
  readonly marks: ReadonlyMap<string, ResolvedMark>;
}

/** The marks of a candidate that may be cleared, or undefined when the exact path must see it. */
async function screenable(
  deps: EngineDeps,
  cache: PriceSources,
  candidate: Candidate,
  stored: { state: CallState | undefined; keys: StoredKeys | undefined },
  nowMs: number,
): Promise<Screenable | undefined> {
  const { state, keys } = stored;
  // Anything but a settled HEALTHY state needs the machine: an open call, a warning, a halt, a cure...
  if (state && (state.status !== "HEALTHY" || state.halt !== null)) return undefined;
  const marks = new Map<string, ResolvedMark>();
  for (const asset of candidate.assets) {
    const sources = await sourcesOf(deps, cache, asset);
    const mark = resolveMark(asset, sources, candidate.entry.policy, nowMs);
    if (mark?.status !== "OK") return undefined;
    marks.set(asset, mark);
  }
  return indexCurrent(keys, marks, Math.floor(nowMs / 1000)) ? { candidate, marks } : undefined;
}

/** The accounts the floats decide HEALTHY under the proven bound, screened per policy. */
function clearedByScreen(accepted: readonly Screenable[]): Set<string> {
  const byPolicy = new Map<string, Screenable[]>();
  for (const item of accepted) {
    const policyId = item.candidate.entry.policy.policyId;
    const group = byPolicy.get(policyId) ?? [];
    group.push(item);
    byPolicy.set(policyId, group);
  }
  const cleared = new Set<string>();
  for (const group of byPolicy.values()) {
    const policy = group[0]?.candidate.entry.policy;
    if (!policy) continue;
    // One policy resolves an asset to one mark: the accounts' marks merge without conflict.
    const marks = new Map(group.flatMap((item) => [...item.marks]));
    const book = compileAccounts(
      group.map((item) => item.candidate.account),
      policy,
    );
    const { state, recheck } = screenFloats(book, prepareScreen(book, marks, policy));
    group.forEach((item, index) => {
      if (recheck[index] === Recheck.NONE && state[index] === MarginState.HEALTHY) {
        cleared.add(item.candidate.accountId);
      }
    });
  }
  return cleared;
}

/** The page's accounts the screen clears: reads states, KEYS and prices at once, then screens. */
async function screenPage(
  deps: EngineDeps,
  candidates: readonly Candidate[],
  cache: PriceSources,
  nowMs: number,
): Promise<Set<string>> {
  const ids = candidates.map((candidate) => candidate.accountId);
  // States and prices are read at once. revalueAccount reads prices after the state so that a decision
  // cannot undo a newer one; this path writes nothing, and what it does not clear is read again there.
  for (const candidate of candidates) for (const asset of candidate.assets) sourcesOf(deps, cache, asset);
  const [states, keys] = await Promise.all([readStates(deps, ids), readIndexKeys(deps, ids)]);
  const accepted = await Promise.all(
    candidates.map((candidate) =>
      screenable(
        deps,
        cache,
        candidate,
        { state: states.get(candidate.accountId), keys: keys.get(candidate.accountId) },
        nowMs,
      ),
    ),
  );
  return clearedByScreen(accepted.filter((item): item is Screenable => item !== undefined));
}

/**
 * One page of one segment of the parallel scan of the Accounts table: the screen clears what it can, the
 * exact revaluation does the rest, one account at a time. `cache` holds the prices read in this invocation.
 */
export async function processSweepPage(
  deps: EngineDeps,
  message: SweepMessage,
  limit: number,
  clock: () => string,
  cache: PriceSources = new Map(),
  deadlineMs = Number.POSITIVE_INFINITY,
): Promise<SweepPageResult> {
  const nowMs = Date.parse(clock());
  const page = await scanAccounts(deps, message, limit);
  // Only onboarded accounts (with a PROFILE item) are swept, as they always were.
  const swept = page.groups.filter((group) => group.items.some((item) => item.sk === "PROFILE"));
  const candidates = swept.flatMap((group) => candidateOf(group, deps.policies) ?? []);
  const cleared =
    candidates.length > 0 ? await screenPage(deps, candidates, cache, nowMs) : new Set<string>();
  const event = { type: "REVALUE", cause: "SWEEP", eventId: message.eventId } as const;
  const exact = swept.filter((group) => !cleared.has(group.accountId)).map((group) => group.accountId);
  const { outcomes, leftover } = await revalueWithin(deps, exact, event, clock, deadlineMs);
  return {
    outcomes,
    read: page.scanned,
    cleared: cleared.size,
    continuation: page.startKey ? { ...message, startKey: page.startKey } : undefined,
    leftover,
  };
}
