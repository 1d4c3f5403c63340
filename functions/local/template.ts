/**
 * The synthesized CloudFormation template is the one definition of the engine's resources. The local
 * runtime and the tests read the tables (and later the event source mappings and schedules) from it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildApp } from "../../lib/app.ts";

export interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly Metadata?: Record<string, unknown>;
}

export interface CfnTemplate {
  readonly Resources: Record<string, CfnResource>;
}

/**
 * Synthesizes the stack in-process, exactly as `npm run synth` does (cdk-nag included), without asset
 * bundling, and returns its template. The cloud assembly goes to a temporary folder that is removed.
 */
export function synthesizeTemplate(context: Record<string, unknown> = {}): CfnTemplate {
  const outdir = mkdtempSync(join(tmpdir(), "margin-call-synth-"));
  try {
    const { app, stack } = buildApp({ outdir, context: { "aws:cdk:bundling-stacks": [], ...context } });
    const assembly = app.synth();
    return assembly.getStackByName(stack.stackName).template as CfnTemplate;
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/** The resources of one CloudFormation type, by logical id. */
export function resourcesOfType(template: CfnTemplate, type: string): Array<[string, CfnResource]> {
  return Object.entries(template.Resources).filter(([, resource]) => resource.Type === type);
}
