/**
 * Fail closed, not open: what the engine does with each kind of account item that breaks the contract
 * (docs/data-contract.md, "When an item breaks the contract"). The stream consumer quarantines every such
 * item; this decides whether the account can still be valued without a guess in the borrower's or the
 * lender's disfavour:
 *
 * - `PROFILE`: only the fields valuation needs (`currency`, `policyId`, `timeZone`, with `accountId`,
 *   `updatedAt`, `seq`) must hold. The delivery fields are taken one by one: a phone number, an e-mail
 *   address or a borrower name that breaks the contract is left out (its channel is then NONE), never
 *   the account. Unknown attributes are left out too.
 * - `HOLDING`, `POSITION`, `DEPOSIT`, `EXEC`: the account is unvaluable. A broken holding or position may
 *   be a loan; a broken deposit or execution report may be money the borrower paid or a sale already
 *   made: leaving any of them out could call or liquidate a borrower on a guess.
 * - An item of no known kind (its `sk`) has no bearing on the valuation: left out.
 *
 * An owned asset the policy does not list (an airdropped token) counts as zero collateral; a borrowed one
 * makes the account unvaluable (account-inputs.ts `assetsNeeded`).
 */
import { z } from "zod";
import {
  AccountId,
  type AccountItem,
  AssetCode,
  accountItemType,
  Email,
  formatIssues,
  PhoneE164,
  type ProfileItem,
  parseAccountItem,
  Timestamp,
  TimeZone,
} from "./contract.ts";

export type ItemVerdict =
  /** Use the item; `leftOut` names what of it was left out (a PROFILE's broken delivery fields). */
  | { readonly kind: "USE"; readonly item: AccountItem; readonly leftOut?: string }
  /** No bearing on the valuation. */
  | { readonly kind: "IGNORE"; readonly reason: string }
  /** The account cannot be valued while this item is as it is. */
  | { readonly kind: "UNVALUABLE"; readonly reason: string };

const ProfileCore = z.object({
  accountId: AccountId,
  sk: z.literal("PROFILE"),
  updatedAt: Timestamp,
  seq: z.int().nonnegative(),
  currency: AssetCode,
  policyId: z.string().min(1).max(128),
  timeZone: TimeZone,
});

/** A reason names at most this many issues: an item with thousands of them must not make it unbounded. */
const ISSUES_SHOWN = 5;

const BorrowerName = z.string().min(1).max(200);

function field<T>(schema: z.ZodType<T>, value: unknown): T | undefined {
  const parsed = schema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}

/** A PROFILE whose delivery fields break the contract, with what valuation needs: or undefined. */
function salvageProfile(
  raw: Record<string, unknown>,
): { profile: ProfileItem; leftOut: string[] } | undefined {
  const core = ProfileCore.safeParse(raw);
  if (!core.success) return undefined;
  const contact = (typeof raw.contact === "object" && raw.contact !== null ? raw.contact : {}) as Record<
    string,
    unknown
  >;
  const phoneE164 = field(PhoneE164, contact.phoneE164);
  const email = field(Email, contact.email);
  const borrowerName = field(BorrowerName, raw.borrowerName);
  const leftOut = [
    ...(contact.phoneE164 !== undefined && phoneE164 === undefined ? ["contact.phoneE164"] : []),
    ...(contact.email !== undefined && email === undefined ? ["contact.email"] : []),
    ...(raw.borrowerName !== undefined && borrowerName === undefined ? ["borrowerName"] : []),
  ];
  const profile: ProfileItem = {
    ...core.data,
    contact: {
      ...(phoneE164 !== undefined ? { phoneE164 } : {}),
      ...(email !== undefined ? { email } : {}),
    },
    ...(borrowerName !== undefined ? { borrowerName } : {}),
  };
  return { profile, leftOut };
}

/** What to do with one (unmarshalled) item of an account's, by its kind. */
export function judgeAccountItem(raw: Record<string, unknown>): ItemVerdict {
  const parsed = parseAccountItem(raw);
  if (parsed.ok) return { kind: "USE", item: parsed.value };
  const sk = typeof raw.sk === "string" ? raw.sk : undefined;
  const type = sk === undefined ? undefined : accountItemType(sk);
  const shown = parsed.issues.slice(0, ISSUES_SHOWN);
  const more = parsed.issues.length - shown.length;
  const reason = `item ${String(raw.sk).slice(0, 200)} breaks the contract: ${formatIssues(shown)}${more > 0 ? ` (and ${more} more issues)` : ""}`;
  if (type === undefined) return { kind: "IGNORE", reason };
  if (type === "PROFILE") {
    const salvaged = salvageProfile(raw);
    if (salvaged) {
      const leftOut = salvaged.leftOut.length > 0 ? salvaged.leftOut.join(", ") : "unknown attributes";
      return { kind: "USE", item: salvaged.profile, leftOut };
    }
  }
  return { kind: "UNVALUABLE", reason };
}
