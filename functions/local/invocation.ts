/**
 * One local invocation of a handler, ended as Lambda ends one: at the function's timeout from the template
 * (wall clock, as Lambda counts it, whatever the engine's simulated clock says), or when a test kills it.
 * A stopped invocation rejects with Lambda's own message, so the mapping treats it as Lambda would (a stream
 * batch is retried, a queue message comes back after its visibility timeout).
 *
 * In Lambda the process of a timed-out invocation stops: nothing it had not sent yet reaches AWS. In one
 * Node process the handler's promise cannot be stopped, so every AWS call it still makes is refused instead:
 * `guardStoppedInvocations` adds a middleware to the handlers' clients that fails any call made inside an
 * invocation that has ended (AsyncLocalStorage carries the invocation through the handler's awaits). What
 * a stopped invocation had already sent may still land, as with Lambda: a request in flight completes.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { Context } from "aws-lambda";
import { type LocalFunction, lambdaContext } from "./deployment.ts";

export interface Invocation {
  readonly requestId: string;
  readonly functionId: string;
  /** Why it ended early (a timeout, a kill), or undefined while it may still run. */
  readonly stopped: string | undefined;
  /** Ends the invocation now, as a timeout would: it rejects with `reason`, and its AWS calls fail. */
  kill(reason: string): void;
}

const scope = new AsyncLocalStorage<Invocation>();

/** The invocation the calling code runs in, if any. */
export function currentInvocation(): Invocation | undefined {
  return scope.getStore();
}

export class InvocationStopped extends Error {
  override readonly name = "InvocationStopped";
}

/**
 * Runs `handler` as one invocation of `fn`: resolves with its result, or rejects with Lambda's
 * "Task timed out after N seconds" once the timeout passes (`timeoutMs` overrides the template's, for
 * tests), or with the reason it was killed.
 */
export function invoke<T>(
  fn: LocalFunction,
  requestId: string,
  handler: (context: Context) => Promise<T>,
  timeoutMs = fn.timeoutSeconds * 1000,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let stopped: string | undefined;
    const invocation: Invocation = {
      requestId,
      functionId: fn.logicalId,
      get stopped() {
        return stopped;
      },
      kill(reason) {
        if (stopped !== undefined) return;
        stopped = reason;
        clearTimeout(timer);
        reject(new InvocationStopped(`${requestId}: ${reason}`));
      },
    };
    const timer = setTimeout(
      () => invocation.kill(`Task timed out after ${(timeoutMs / 1000).toFixed(2)} seconds`),
      timeoutMs,
    );
    scope
      .run(invocation, () => handler(lambdaContext(fn, requestId, timeoutMs)))
      .then(
        (result) => {
          clearTimeout(timer);
          if (stopped === undefined) resolve(result);
        },
        (error: unknown) => {
          clearTimeout(timer);
          if (stopped === undefined) reject(error);
        },
      );
  });
}

/** The handlers' AWS clients, as functions/handlers/runtime.ts creates them. */
interface Clients {
  readonly [name: string]: { readonly middlewareStack: object };
}

/** Adds to each client a middleware that refuses every call made inside an invocation that has ended. */
export function guardStoppedInvocations(clients: Clients): void {
  for (const client of Object.values(clients)) {
    // Every SDK v3 client's stack takes an initialize-step middleware; the clients' own generic types differ.
    const stack = client.middlewareStack as {
      add(
        middleware: (next: (args: unknown) => Promise<unknown>) => (args: unknown) => Promise<unknown>,
        options: object,
      ): void;
    };
    stack.add(
      (next) => async (args) => {
        const reason = currentInvocation()?.stopped;
        if (reason !== undefined)
          throw new InvocationStopped(`the invocation has ended (${reason}): no call reaches AWS`);
        return next(args);
      },
      { step: "initialize", name: "stoppedInvocationGuard" },
    );
  }
}
