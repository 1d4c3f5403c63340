/**
 * One-line assertions, in the spirit of TigerBeetle's style guide: a broken invariant stops the step with
 * its reason rather than writing a wrong decision. Paired with the tests, which check the same facts from
 * the outside.
 */
export class InvariantError extends Error {
  override readonly name = "InvariantError";
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new InvariantError(`invariant: ${message}`);
}
