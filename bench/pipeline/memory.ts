/** The memory figures: each handler's peak heap per 1,000 accounts, beside the function's MemorySize. */
import { type Figure, reported } from "../figures.ts";
import type { Pipeline } from "./harness.ts";
import type { HeapTracker } from "./stats.ts";

function memorySizeOf(pipeline: Pipeline, handler: string): number {
  const resources = pipeline.runtime.template.Resources;
  const id = Object.keys(resources).find(
    (key) => key.startsWith(`${handler}Function`) && resources[key]?.Type === "AWS::Lambda::Function",
  );
  const size = id ? resources[id]?.Properties?.MemorySize : undefined;
  return typeof size === "number" ? size : Number.NaN;
}

/** Invocations of fewer accounts than this are reported per invocation: scaling them up would mislead. */
const PER_THOUSAND_FROM = 200;

export function memoryFigures(
  pipeline: Pipeline,
  trackers: Record<string, HeapTracker>,
  phase: string,
): Figure[] {
  return Object.entries(trackers)
    .filter(([, tracker]) => tracker.invocations > 0)
    .map(([handler, tracker]) => {
      const perInvocation = Math.round(tracker.accounts / tracker.invocations);
      const peak = tracker.peakBytes / 2 ** 20;
      const scaled = perInvocation >= PER_THOUSAND_FROM;
      return reported({
        id: `memory ${handler} (${phase})`,
        benchmark: scaled
          ? `peak heap of one ${handler} invocation per 1,000 accounts`
          : `peak heap of one ${handler} invocation (about ${perInvocation} accounts)`,
        unit: scaled ? "MiB/1,000 accounts" : "MiB",
        measured: scaled ? (peak * 1000) / perInvocation : peak,
        reference: memorySizeOf(pipeline, handler),
        referenceUnit: "MB",
        referenceLabel: "the function's MemorySize",
        notes:
          `largest rise ${peak.toFixed(1)} MiB in one invocation; ${tracker.invocations} invocations, ` +
          `about ${perInvocation} accounts each`,
      });
    });
}
