/**
 * The policy versions the pipeline tests activate: the stack's policy (lib/config/policies.json) as a test
 * changes it, put and activated as an operator would, then the runtime started again on the test's clock so
 * the next invocation reads them.
 */
import { readFileSync } from "node:fs";
import {
  type Authorship,
  activate,
  putPolicyVersion,
  readActiveSet,
} from "../../functions/adapters/policy-store.ts";
import {
  type Runtime,
  resetRuntime,
  runtimeWithPolicies,
  setClock,
} from "../../functions/handlers/runtime.ts";
import type { Pipeline } from "./pipeline.ts";

/** The stack's first policy document, as lib/config/policies.json has it: what the tests' versions change. */
export function stackPolicy(): Record<string, unknown> {
  const [policy] = JSON.parse(
    readFileSync(new URL("../../lib/config/policies.json", import.meta.url), "utf8"),
  ) as Record<string, unknown>[];
  if (!policy) throw new Error("lib/config/policies.json holds no policy");
  return policy;
}

/**
 * Puts each document as a new version, in order, and activates them all in one change of the active set
 * read first; then resets the runtime onto the pipeline's clock and returns it with the policies it now reads.
 */
export async function activatePolicies(
  p: Pipeline,
  documents: readonly Record<string, unknown>[],
  author: Authorship,
): Promise<Runtime> {
  const read = await readActiveSet(p.db.dynamodb, "Policies");
  const activations = [];
  for (const document of documents)
    activations.push(await putPolicyVersion(p.db.dynamodb, "Policies", document, author));
  await activate(p.db.dynamodb, "Policies", read, activations, author);
  resetRuntime();
  setClock(() => p.now());
  return await runtimeWithPolicies();
}
