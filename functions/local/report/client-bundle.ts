/**
 * The page's script as one self-contained string: esbuild bundles the typed browser code in ./client/
 * (with the chart models it shares with the server) into an IIFE when the first report is written, and the
 * result is kept for the rest of the process. The type checker and the linter see the source; the page gets
 * plain JavaScript with nothing to fetch.
 */

import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { buildSync } from "esbuild";

const ENTRY_PATH = fileURLToPath(new URL("./client/index.ts", import.meta.url));

let bundled: string | undefined;

export function clientScript(): string {
  if (bundled === undefined) {
    const result = buildSync({
      entryPoints: [ENTRY_PATH],
      absWorkingDir: dirname(ENTRY_PATH),
      bundle: true,
      write: false,
      format: "iife",
      platform: "browser",
      target: "es2020",
      charset: "ascii",
      legalComments: "none",
      logLevel: "silent",
    });
    const output = result.outputFiles[0];
    if (output === undefined) throw new Error("esbuild produced no bundle for the report's script");
    bundled = output.text;
  }
  return bundled;
}
