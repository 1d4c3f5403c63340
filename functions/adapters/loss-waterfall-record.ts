/**
 * The loss waterfall's record (domain: loss-waterfall.ts; docs/liquidation.md, section 9): a bankrupt
 * account's loss run through the waterfall once, as one flow of the insurance fund (insurance-fund-store.ts
 * `applyFundFlow`): the fund's cover, its events and the audit entry that keeps the split and, for ADL, the
 * ranking down to the next account in line.
 */
import { oppositeSide, rankAdl } from "../domain/adl.ts";
import type { FundFlowRequest } from "../domain/insurance-fund.ts";
import { waterfallEvents } from "../domain/liquidation-events.ts";
import {
  type AdlOutcome,
  type BankruptPosition,
  type Counterparty,
  runWaterfall,
  type WaterfallResult,
} from "../domain/loss-waterfall.ts";
import { type Dec, Rounding, toFixedString, ZERO } from "../domain/money.ts";
import type { Policy } from "../domain/policy.ts";
import { plain } from "../domain/snapshot.ts";
import { applyFundFlow, type FlowOutcome, type FundStoreDeps } from "./insurance-fund-store.ts";

/** A bankrupt account's loss, as the outbox holds its RECORD_LOSS (its id is the loss's reference). */
export interface LossToCover {
  readonly lossReference: string;
  readonly accountId: string;
  /** The RECORD_LOSS amount: negative equity after liquidation, UP at the currency scale, above 0. */
  readonly shortfall: Dec;
  /** The open position ADL can close (the RECORD_LOSS's `position`), or null when none was open. */
  readonly position: BankruptPosition | null;
  /** When the loss was recorded (the outbox item's createdAt): the flow's and the events' time. */
  readonly recordedAt: string;
}

/**
 * Runs the loss waterfall for one loss, once (flow id `<lossReference>:fund`): the fund covers what it can (a
 * BANKRUPTCY_COVER flow, of 0 when it is empty); past the fund, the policy's `afterFund` takes what it can
 * from the counterparties (DeleveragingRequested for ADL, LossSocialised for a socialised loss); what remains
 * is BadDebtRecorded. Every event is put with the flow, and the audit entry keeps the split and, for ADL, the
 * ranking down to the last account deleveraged and the next one in line.
 */
export async function coverLoss(
  deps: FundStoreDeps,
  loss: LossToCover,
  policy: Policy,
  counterparties: readonly Counterparty[],
  now: string,
): Promise<LossOutcome> {
  const scale = policy.currencyScale;
  const flowId = `${loss.lossReference}:fund`;
  const request: FundFlowRequest = {
    flowId,
    currency: policy.currency,
    cause: "BANKRUPTCY_COVER",
    amount: loss.shortfall,
    accountId: loss.accountId,
    sourceReference: loss.lossReference,
    recordedAt: loss.recordedAt,
  };
  const label = `${policy.policyId}@${policy.version}`;
  let decided: WaterfallResult | undefined;
  const outcome = await applyFundFlow(deps, request, scale, label, now, (head) => {
    const result = runWaterfall({
      bankruptcy: { accountId: loss.accountId, shortfall: loss.shortfall, position: loss.position },
      fund: head,
      policy: policy.lossWaterfall,
      counterparties,
      flowId,
      sourceReference: loss.lossReference,
      recordedAt: loss.recordedAt,
    });
    decided = result;
    const shared = result.adl?.cover ?? result.socialised?.cover ?? ZERO;
    return {
      flow: result.fundFlow,
      events: waterfallEvents(result, loss.lossReference, scale, loss.recordedAt),
      reason:
        `insurance fund: covers ${money(result.fundCover, scale)} of ${loss.accountId}'s loss of ` +
        `${money(result.shortfall, scale)} ${head.currency}; ${result.afterFund} ${money(shared, scale)}; ` +
        `bad debt ${money(result.badDebt, scale)}`,
      figures: {
        shortfall: money(result.shortfall, scale),
        fundCover: money(result.fundCover, scale),
        afterFund: result.afterFund,
        adlCover: money(result.adl?.cover ?? ZERO, scale),
        socialisedCover: money(result.socialised?.cover ?? ZERO, scale),
        badDebt: money(result.badDebt, scale),
        counterparties: String(counterparties.length),
        ...(loss.position ? { position: JSON.stringify(plain(loss.position)) } : {}),
        ...(result.adl ? { adl: JSON.stringify(plain(adlRecord(result.adl, loss, counterparties))) } : {}),
        ...(result.socialised
          ? {
              socialisedBaseTotal: result.socialised.baseTotal.toFixed(),
              charges: String(result.socialised.charges.length),
            }
          : {}),
      },
    };
  });
  return { ...outcome, waterfall: outcome.applied ? (decided ?? null) : null };
}

/** A loss's flow, and the waterfall it applied (null when the flow id was applied before). */
export interface LossOutcome extends FlowOutcome {
  readonly waterfall: WaterfallResult | null;
}

/**
 * What an ADL decision needs to be checked from its record: every instruction, and the standing of the next
 * account in line (the first one not deleveraged), so a reader sees where the ranking was cut.
 */
function adlRecord(adl: AdlOutcome, loss: LossToCover, counterparties: readonly Counterparty[]) {
  const position = loss.position;
  const ranking = position
    ? rankAdl(
        counterparties.flatMap(({ accountId, equity, position: held }) =>
          held?.instrument === position.instrument ? [{ ...held, accountId, equity }] : [],
        ),
        position.instrument,
        oppositeSide(position.side),
        position.markPrice,
      )
    : [];
  const next = ranking[adl.instructions.length];
  return {
    quantityNeeded: adl.quantityNeeded,
    quantityClosed: adl.quantityClosed,
    ranked: ranking.length,
    instructions: adl.instructions,
    nextInLine: next ? { accountId: next.accountId, rank: next.rank, score: next.score } : null,
  };
}

function money(value: Dec, scale: number): string {
  return toFixedString(value, scale, Rounding.HALF_EVEN);
}
