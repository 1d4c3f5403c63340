/**
 * Lambda event filtering, as an event source mapping applies it before invoking the handler: a record is
 * delivered when it matches any of the mapping's filter patterns. Supports the rules the engine's
 * mappings use and the common ones besides: exact values, `exists`, `anything-but`, `prefix`,
 * `equals-ignore-case` and `numeric` ranges. A pattern with any other rule is refused loudly.
 * https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html
 */

type Pattern = { readonly [key: string]: Pattern | readonly Matcher[] };
type Matcher = string | number | boolean | null | Readonly<Record<string, unknown>>;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function numericMatches(value: unknown, conditions: readonly unknown[]): boolean {
  if (typeof value !== "number") return false;
  for (let i = 0; i + 1 < conditions.length; i += 2) {
    const operator = conditions[i];
    const bound = conditions[i + 1] as number;
    const ok =
      operator === "="
        ? value === bound
        : operator === "<"
          ? value < bound
          : operator === "<="
            ? value <= bound
            : operator === ">"
              ? value > bound
              : operator === ">="
                ? value >= bound
                : undefined;
    if (ok === undefined) throw new Error(`unsupported numeric operator ${String(operator)}`);
    if (!ok) return false;
  }
  return true;
}

function matcherMatches(matcher: Matcher, value: unknown, present: boolean): boolean {
  if (!isPlainObject(matcher)) return present && !isPlainObject(value) && value === matcher;
  const [rule, argument] = Object.entries(matcher)[0] ?? [];
  switch (rule) {
    case "exists":
      return argument === present && (!present || !isPlainObject(value));
    case "anything-but": {
      if (!present || isPlainObject(value)) return false;
      const excluded = Array.isArray(argument) ? argument : [argument];
      return !excluded.includes(value);
    }
    case "prefix":
      return present && typeof value === "string" && value.startsWith(String(argument));
    case "equals-ignore-case":
      return present && typeof value === "string" && value.toLowerCase() === String(argument).toLowerCase();
    case "numeric":
      return present && numericMatches(value, argument as unknown[]);
    default:
      throw new Error(`unsupported filter rule ${String(rule)}`);
  }
}

function fieldMatches(matchers: readonly Matcher[], value: unknown, present: boolean): boolean {
  // A JSON array value matches when any of its elements matches.
  if (Array.isArray(value)) return value.some((element) => fieldMatches(matchers, element, true));
  return matchers.some((matcher) => matcherMatches(matcher, value, present));
}

export function matchesPattern(pattern: Pattern, event: unknown): boolean {
  const object = isPlainObject(event) ? event : {};
  return Object.entries(pattern).every(([key, rule]) => {
    const present = Object.hasOwn(object, key);
    const value = object[key];
    if (Array.isArray(rule)) return fieldMatches(rule, value, present);
    // A nested pattern on an absent field matches only through `exists: false` leaves.
    return matchesPattern(rule as Pattern, present ? value : undefined);
  });
}

/** The mapping's FilterCriteria.Filters[].Pattern strings; no filters means every record. */
export function compileFilters(patterns: readonly string[]): (event: unknown) => boolean {
  const compiled = patterns.map((pattern) => JSON.parse(pattern) as Pattern);
  if (compiled.length === 0) return () => true;
  return (event) => compiled.some((pattern) => matchesPattern(pattern, event));
}
