/** One benchmark figure: what was measured, its reference from the same run, and the goal it is held to. */
export interface Figure {
  /** e.g. "P3 p99". */
  readonly id: string;
  readonly benchmark: string;
  readonly unit: string;
  readonly measured: number;
  readonly reference: number;
  /** The reference's unit, when it is not the figure's (then no ratio is shown). */
  readonly referenceUnit?: string;
  readonly referenceLabel: string;
  /** e.g. "≤ 2× reference", or "report" when the figure has no goal. */
  readonly goal: string;
  /** Whether the goal is met; null when there is none. */
  readonly met: boolean | null;
  readonly notes?: string;
}

export const BENCHMARK_KEYS = ["P1", "P2", "P3", "P4", "P5", "P6", "memory"] as const;
export type BenchmarkKey = (typeof BENCHMARK_KEYS)[number];

type Base = Omit<Figure, "goal" | "met">;

/** A figure held to measured ≤ factor × reference. */
export function ratioGoal(figure: Base, factor: number): Figure {
  return {
    ...figure,
    goal: `≤ ${factor}× reference`,
    met: figure.reference > 0 && figure.measured <= factor * figure.reference,
  };
}

/** A figure held to measured ≤ limit, in its own unit. */
export function limitGoal(figure: Base, limit: number): Figure {
  return { ...figure, goal: `≤ ${limit} ${figure.unit}`, met: figure.measured <= limit };
}

/** A figure reported beside its reference, with no goal. */
export function reported(figure: Base): Figure {
  return { ...figure, goal: "report", met: null };
}
