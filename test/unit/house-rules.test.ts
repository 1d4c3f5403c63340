// The house rules in .dependency-cruiser.cjs must bite: cruise a fixture tree that mirrors the real folders and
// breaks each rule once, and check that exactly the expected rules fire on exactly the expected imports.
// `npm run deps` runs the same rules on the real code (docs/architecture.md explains them).
import { fileURLToPath } from "node:url";
import { cruise, type ICruiseResult } from "dependency-cruiser";
import extractDepcruiseOptions from "dependency-cruiser/config-utl/extract-depcruise-options";
import extractTSConfig from "dependency-cruiser/config-utl/extract-ts-config";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const FIXTURES = fileURLToPath(new URL("../fixtures/house-rules", import.meta.url));

async function cruiseFixtures(): Promise<ICruiseResult> {
  const options = await extractDepcruiseOptions(`${ROOT}.dependency-cruiser.cjs`);
  const tsConfig = extractTSConfig(`${ROOT}tsconfig.json`);
  const result = await cruise(
    ["functions", "lib", "bin", "bench"],
    { ...options, baseDir: FIXTURES },
    {},
    { tsConfig },
  );
  if (typeof result.output === "string") throw new Error("expected a cruise result object");
  return result.output;
}

describe("house rules (dependency-cruiser)", () => {
  it("fires each rule on the fixture import that breaks it, and on nothing else", async () => {
    const result = await cruiseFixtures();
    const fired = result.summary.violations
      .map((violation) => `${violation.rule.name}: ${violation.from} -> ${violation.to}`)
      .sort();

    expect(fired).toEqual(
      [
        "adapters-not-to-outer-code: functions/adapters/bad.ts -> functions/handlers/entry.ts",
        "bench-through-domain-or-local-runtime: bench/bad.ts -> functions/adapters/store.ts",
        "cli-not-to-handlers-local-or-lib: functions/cli/bad.ts -> functions/local/runner.ts",
        "domain-imports-only-zod-and-decimal: functions/domain/bad.ts -> functions/adapters/store.ts",
        "domain-imports-only-zod-and-decimal: functions/domain/bad.ts -> path",
        "handlers-not-to-local-cli-or-lib: functions/handlers/bad.ts -> functions/local/runner.ts",
        "handlers-not-to-local-cli-or-lib: functions/handlers/bad.ts -> lib/stack.ts",
        "lib-not-to-runtime-code: lib/bad.ts -> functions/adapters/store.ts",
        // A cycle is reported once, on the edge the cruise met first.
        "no-circular: functions/adapters/ping.ts -> functions/adapters/pong.ts",
        "not-to-unresolvable: functions/adapters/lost.ts -> ./missing.ts",
        "notify-imports-only-domain: functions/notify/bad.ts -> functions/adapters/store.ts",
        "production-not-to-test: bin/bad.ts -> test/support/builders.ts",
      ].sort(),
    );
    expect(result.summary.error).toBe(fired.length);
  });

  it("lets the domain import zod, decimal.js and its own files", async () => {
    const result = await cruiseFixtures();
    const money = result.modules.find((module) => module.source === "functions/domain/money.ts");
    expect(money?.dependencies.map((dependency) => dependency.module).sort()).toEqual(["decimal.js", "zod"]);
    expect(result.summary.violations.filter((violation) => violation.from === money?.source)).toEqual([]);
  });
});
