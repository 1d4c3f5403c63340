/**
 * The loss waterfall of a run, from the events the engine put on the bus (docs/events.md): the insurance
 * fund's flows in ledger order, each loss with what the fund, auto-deleveraging and a socialised charge took
 * of it and what stayed bad debt, and every DeleveragingRequested and LossSocialised with its instructions or
 * charges. Pure: each detail is read with its schema (liquidation-events.ts), so an event that breaks its
 * contract fails here rather than show wrong figures. The live progress line's fund figures are here too.
 */
import {
  badDebtRecordedSchema,
  deleveragingRequestedSchema,
  insuranceFundFlowSchema,
  lossSocialisedSchema,
} from "../../domain/liquidation-events.ts";
import { type Dec, dec, Rounding, sum, toFixedString, ZERO } from "../../domain/money.ts";
import type { ReportLoss, ReportLossWaterfall } from "../report.ts";
import type { RecordedEvent } from "./findings.ts";

const detailsOf = (events: readonly RecordedEvent[], detailType: string) =>
  events.filter((event) => event.detailType === detailType).map((event) => event.detail);

/** The waterfall of `currency` (at `scale` places) as the events tell it. */
export function lossWaterfallOf(
  events: readonly RecordedEvent[],
  currency: string,
  scale: number,
): ReportLossWaterfall {
  const flows = detailsOf(events, "InsuranceFundFlow")
    .map((detail) => insuranceFundFlowSchema.parse(detail))
    .filter((flow) => flow.currency === currency)
    .sort((a, b) => a.seq - b.seq);
  const deleveraging = detailsOf(events, "DeleveragingRequested")
    .map((detail) => deleveragingRequestedSchema.parse(detail))
    .filter((adl) => adl.currency === currency);
  const socialised = detailsOf(events, "LossSocialised")
    .map((detail) => lossSocialisedSchema.parse(detail))
    .filter((loss) => loss.currency === currency);
  const badDebts = detailsOf(events, "BadDebtRecorded")
    .map((detail) => badDebtRecordedSchema.parse(detail))
    .filter((debt) => debt.currency === currency);
  const money = (value: Dec) => toFixedString(value, scale, Rounding.HALF_EVEN);
  /** The event of a loss's waterfall: its reference extends the loss's (`<lossReference>:adl`, ...). */
  const ofLoss = <T extends { reference: string }>(list: readonly T[], lossReference: string) =>
    list.filter((event) => event.reference.startsWith(`${lossReference}:`));
  const covers = new Map(
    flows.filter((flow) => flow.cause === "BANKRUPTCY_COVER").map((flow) => [flow.sourceReference, flow]),
  );
  const recorded = detailsOf(events, "LossRecorded").map((detail) => ({
    reference: String(detail.reference),
    accountId: String(detail.accountId),
    amount: String(detail.amount),
    t: String(detail.recordedAt),
  }));
  // A cover whose LossRecorded was not seen still names its loss: the flow's request is the shortfall.
  for (const [reference, flow] of covers) {
    if (!recorded.some((loss) => loss.reference === reference)) {
      recorded.push({
        reference,
        accountId: String(flow.accountId),
        amount: flow.requested,
        t: flow.recordedAt,
      });
    }
  }
  const losses = recorded.map((loss): ReportLoss => {
    const cover = covers.get(loss.reference);
    const [badDebt] = ofLoss(badDebts, loss.reference);
    return {
      t: loss.t,
      accountId: loss.accountId,
      reference: loss.reference,
      shortfall: money(dec(badDebt?.shortfall ?? loss.amount)),
      settled: cover !== undefined,
      // A cover debits the fund: its amount is negative, or 0 when the fund was empty.
      fundCover: money(cover ? dec(cover.amount).negated() : ZERO),
      adlCover: money(sum(ofLoss(deleveraging, loss.reference).map((adl) => dec(adl.cover)))),
      socialisedCover: money(sum(ofLoss(socialised, loss.reference).map((charge) => dec(charge.amount)))),
      badDebt: money(badDebt ? dec(badDebt.amount) : ZERO),
    };
  });
  return {
    currency,
    flows: flows.map((flow) => ({
      t: flow.recordedAt,
      seq: flow.seq,
      cause: flow.cause,
      amount: flow.amount,
      balanceAfter: flow.balanceAfter,
      accountId: flow.accountId,
      reference: flow.reference,
      sourceReference: flow.sourceReference,
    })),
    losses: losses.sort((a, b) => a.t.localeCompare(b.t) || a.reference.localeCompare(b.reference)),
    deleveraging: deleveraging.map((adl) => ({
      t: adl.recordedAt,
      reference: adl.reference,
      bankruptAccountId: adl.bankruptAccountId,
      instrument: adl.instrument,
      bankruptSide: adl.bankruptSide,
      bankruptcyPrice: adl.bankruptcyPrice,
      quantityNeeded: adl.quantityNeeded,
      quantityClosed: adl.quantityClosed,
      cover: adl.cover,
      instructions: [...adl.instructions].sort((a, b) => a.rank - b.rank),
    })),
    socialised: socialised.map((loss) => ({
      t: loss.recordedAt,
      reference: loss.reference,
      bankruptAccountId: loss.bankruptAccountId,
      base: loss.base,
      baseTotal: loss.baseTotal,
      amount: loss.amount,
      charges: loss.charges,
    })),
  };
}

/** A decimal string with thousands separators in its integer part: "-12345.60" → "-12,345.60". */
export function groupThousands(amount: string): string {
  const [whole = "", fraction] = amount.split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return fraction === undefined ? grouped : `${grouped}.${fraction}`;
}

/** What the progress line says of the fund: its balance, as its head holds it, and the losses so far. */
export interface FundProgress {
  readonly currency: string;
  /** The BALANCE item's balance, at the currency's scale; "0.00" before the first flow. */
  readonly balance: string;
  readonly waterfall: ReportLossWaterfall;
}

/** `fund 12,345.67 USD · losses 2 (fund 1,000.00, bad debt 0.00)`, with ADL and socialised covers when any. */
export function fundProgressText(progress: FundProgress, scale: number): string {
  const { losses } = progress.waterfall;
  const total = (pick: (loss: ReportLoss) => string) =>
    groupThousands(toFixedString(sum(losses.map((loss) => dec(pick(loss)))), scale, Rounding.HALF_EVEN));
  const parts = [`fund ${total((loss) => loss.fundCover)}`];
  if (losses.some((loss) => !dec(loss.adlCover).isZero()))
    parts.push(`ADL ${total((loss) => loss.adlCover)}`);
  if (losses.some((loss) => !dec(loss.socialisedCover).isZero()))
    parts.push(`socialised ${total((loss) => loss.socialisedCover)}`);
  parts.push(`bad debt ${total((loss) => loss.badDebt)}`);
  return `fund ${groupThousands(progress.balance)} ${progress.currency} · losses ${losses.length} (${parts.join(", ")})`;
}
