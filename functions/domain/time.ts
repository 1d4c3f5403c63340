/**
 * The state machine's time arithmetic, in one place: ISO-8601 UTC instants moved by whole seconds and
 * compared. Every deadline, reminder, pause, grace period and confirmation delay is computed here.
 */

/** `iso` moved by `seconds` (negative: back), as an ISO-8601 UTC instant with milliseconds. */
export function addSeconds(iso: string, seconds: number): string {
  return new Date(Date.parse(iso) + seconds * 1000).toISOString();
}

/** `now` is at or after `instant`. */
export function atOrAfter(now: string, instant: string): boolean {
  return Date.parse(now) >= Date.parse(instant);
}
