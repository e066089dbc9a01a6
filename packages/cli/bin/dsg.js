#!/usr/bin/env node
// Thin launcher: the CLI is compiled TypeScript in ../dist. Tell the user how to build it if it is missing.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
const main = fileURLToPath(new URL('../dist/src/main.js', import.meta.url));
if (!existsSync(main)) {
  process.stderr.write('dsg: the CLI is not built yet. From the repository root run: npm run build\n');
  process.exit(1);
}
await import(main);
