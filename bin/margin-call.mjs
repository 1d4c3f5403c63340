#!/usr/bin/env node
// The `margin-call` CLI (package.json "bin"): runs the TypeScript source through tsx.
import { register } from "tsx/esm/api";

register();
await import("../functions/cli/margin-call.ts");
