#!/usr/bin/env node
// Thin launcher. The CLI runs from its bundle (../bundle/dsg.js, made by scripts/bundle-cli.mjs after every build:
// one file per command starts in half the time), or from the compiled files in ../dist when DSG_NO_BUNDLE=1 or
// there is no bundle. Tell the user how to build it when neither exists.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
const bundle = fileURLToPath(new URL('../bundle/dsg.js', import.meta.url));
const compiled = fileURLToPath(new URL('../dist/src/main.js', import.meta.url));
const main = process.env.DSG_NO_BUNDLE !== '1' && existsSync(bundle) ? bundle : compiled;
if (!existsSync(main)) {
  process.stderr.write('dsg: the CLI is not built yet. From the repository root run: npm run build\n');
  process.exit(1);
}
await import(main);
