/**
 * What a failed call to SNS or EventBridge means for a side effect that must happen at most once. The
 * engine's SNS and EventBridge clients make one attempt per call (no SDK retries: a retry after a reply
 * that was lost would publish twice), so each failure is classified here instead:
 *
 * - THROTTLED: the service refused the request for its rate, or the request never left (no connection, no
 *   name resolution, no credentials). Nothing was sent; wait and try again.
 * - REFUSED: the service answered with a client error (4xx): nothing was sent, and trying again will not
 *   help (an invalid or opted-out phone number, a bad parameter).
 * - UNCERTAIN: a server error (5xx), a timeout or a broken connection. The request may have been accepted:
 *   sending again could deliver twice, so it is recorded as uncertain and never repeated.
 */

export type FailureKind = "THROTTLED" | "REFUSED" | "UNCERTAIN";

const THROTTLING_CODES = new Set([
  "Throttling",
  "ThrottlingException",
  "ThrottledException",
  "TooManyRequestsException",
  "RequestThrottled",
  "KMSThrottlingException",
]);

/** Failures before a request is on the wire: it certainly was not accepted. */
const NOT_SENT_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "CredentialsProviderError"]);

interface ServiceErrorShape {
  readonly name?: unknown;
  readonly Code?: unknown;
  readonly code?: unknown;
  readonly $metadata?: { readonly httpStatusCode?: unknown };
}

/** Classifies an error thrown by an AWS SDK v3 client call. */
export function failureKind(error: unknown): FailureKind {
  const shape = (typeof error === "object" && error !== null ? error : {}) as ServiceErrorShape;
  const code = typeof shape.Code === "string" ? shape.Code : typeof shape.name === "string" ? shape.name : "";
  const status = typeof shape.$metadata?.httpStatusCode === "number" ? shape.$metadata.httpStatusCode : 0;
  if (THROTTLING_CODES.has(code) || status === 429) return "THROTTLED";
  const cause = typeof shape.code === "string" ? shape.code : code;
  if (status === 0 && (NOT_SENT_CODES.has(cause) || NOT_SENT_CODES.has(code))) return "THROTTLED";
  if (status >= 400 && status < 500) return "REFUSED";
  return "UNCERTAIN";
}

/** A short, log-safe description of an error: its code and message, never a phone number. */
export function describeFailure(error: unknown): string {
  const shape = (typeof error === "object" && error !== null ? error : {}) as ServiceErrorShape;
  const code = typeof shape.name === "string" ? shape.name : "Error";
  const message = error instanceof Error ? error.message.replace(/\+?\d{7,}/g, "[number]") : String(error);
  return `${code}: ${message}`.slice(0, 300);
}
