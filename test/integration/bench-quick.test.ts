/**
 * `npm run bench -- --quick` still runs: every benchmark, at small sizes, as a child process on the test
 * run's DynamoDB Local, and its JSON has every benchmark with numeric figures. No timing is asserted: the
 * figures are measured, not judged, here.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, inject, it } from "vitest";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const directory = mkdtempSync(join(tmpdir(), "margin-call-bench-quick-"));

afterAll(() => {
  rmSync(directory, { recursive: true, force: true });
});

describe("npm run bench -- --quick", () => {
  it("runs P1–P6 and the memory figures and writes them, each with its reference and goal", async () => {
    const json = join(directory, "quick.json");
    await promisify(execFile)(
      process.execPath,
      ["--expose-gc", "--import", "tsx", "bench/run.ts", "--quick", "--json", json],
      {
        cwd: ROOT,
        env: { ...process.env, DYNAMODB_ENDPOINT: inject("dynamodbEndpoint") },
        maxBuffer: 64 * 2 ** 20,
        timeout: 840_000,
      },
    );
    const results = JSON.parse(readFileSync(json, "utf8")) as {
      commit: string;
      machine: { cpus: number; model: string; memoryBytes: number };
      node: string;
      date: string;
      mode: string;
      figures: Record<string, Array<Record<string, unknown>>>;
    };
    expect(results.mode).toBe("quick");
    expect(results.machine.cpus).toBeGreaterThan(0);
    expect(typeof results.machine.model).toBe("string");
    expect(results.node).toBe(process.version);
    expect(Number.isNaN(Date.parse(results.date))).toBe(false);
    for (const key of ["P1", "P2", "P3", "P4", "P5", "P6", "memory"]) {
      const figures = results.figures[key] ?? [];
      expect(figures.length, key).toBeGreaterThan(0);
      for (const figure of figures) {
        expect(typeof figure.measured, `${figure.id} measured`).toBe("number");
        expect(typeof figure.reference, `${figure.id} reference`).toBe("number");
        expect(typeof figure.goal, `${figure.id} goal`).toBe("string");
        expect([true, false, null]).toContain(figure.met);
      }
    }
  }, 900_000);
});
