#!/usr/bin/env node
// Builds the dashboard (packages/web) into packages/web/dist/app: index.html and assets/app-HASH.{js,css}, one
// minified ES module bundle (Preact + the app + @dsg/client). The coordinator serves that folder; the CLI bundle
// copies it (scripts/bundle-cli.mjs). scripts/ensure.mjs runs this after the TypeScript build, so `npm run build`,
// `npm start` and `npm test` always serve a fresh dashboard. Prints the first load's gzipped size.
// Usage: node scripts/build-web.mjs [--quiet]
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const web = join(root, 'packages', 'web');
const out = join(web, 'dist', 'app');
const quiet = process.argv.includes('--quiet');
const started = Date.now();

const result = await build({
  entryPoints: [join(web, 'src', 'main.tsx')],
  bundle: true,
  write: false,
  format: 'esm',
  platform: 'browser',
  target: ['es2022', 'chrome110', 'firefox110', 'safari16'],
  minify: true,
  jsx: 'automatic',
  jsxImportSource: 'preact',
  legalComments: 'none',
  logLevel: 'warning',
  outdir: 'out',
  // Resolve the workspace packages' compiled JavaScript (the TypeScript build runs first).
  conditions: ['browser', 'import', 'default'],
});
const js = result.outputFiles.find((f) => f.path.endsWith('.js'));
if (!js) throw new Error('esbuild produced no JavaScript');
const css = readFileSync(join(web, 'src', 'app.css'));
const { transform } = await import('esbuild');
const cssMin = Buffer.from((await transform(css.toString('utf8'), { loader: 'css', minify: true })).code);

// Content hashes in the names: the coordinator can let browsers cache them for good.
const hash = (b) => createHash('sha256').update(b).digest('base64url').replace(/[^A-Za-z0-9]/g, '').slice(0, 8).toUpperCase();
const jsName = `app-${hash(js.contents)}.js`;
const cssName = `app-${hash(cssMin)}.css`;
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'assets'), { recursive: true });
writeFileSync(join(out, 'assets', jsName), js.contents);
writeFileSync(join(out, 'assets', cssName), cssMin);
const html = readFileSync(join(web, 'src', 'index.html'), 'utf8').replace('%JS%', jsName).replace('%CSS%', cssName);
writeFileSync(join(out, 'index.html'), html);

const gz = (b) => gzipSync(b, { level: 9 }).length;
const total = gz(Buffer.from(html)) + gz(js.contents) + gz(cssMin);
writeFileSync(join(out, 'size.json'), JSON.stringify({ firstLoadGzipBytes: total, js: gz(js.contents), css: gz(cssMin), html: gz(Buffer.from(html)) }) + '\n');
if (!quiet) process.stderr.write(`[dsg] built the dashboard in ${Date.now() - started} ms (first load ${(total / 1024).toFixed(1)} KiB gzipped: JS ${(gz(js.contents) / 1024).toFixed(1)}, CSS ${(gz(cssMin) / 1024).toFixed(1)})\n`);
