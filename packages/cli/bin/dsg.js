#!/usr/bin/env node
// Thin launcher. The CLI runs from its bundle (../bundle/dsg.js, made by scripts/bundle-cli.mjs after every build:
// one file per command starts in half the time), or from the compiled files in ../dist when DSG_NO_BUNDLE=1 or
// there is no bundle. Tell the user how to build it when neither exists.
//
// DSG needs Node 22 or newer. On an older Node inside the repository, the scripts behind `npm start` / `npm test`
// have fetched Node 24 into <repo>/.dsg-node/24: run on that one; anywhere else, say what to install.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

// Built-ins through require(), not `import`: an ES import of node:fs builds a facade that reads all its exports,
// loading fs/promises, streams and readline with them (see scripts/bundle-cli.mjs).
const require = createRequire(import.meta.url);
const { existsSync } = require('node:fs');

const MIN_NODE_MAJOR = 22;
if (Number(process.versions.node.split('.')[0]) < MIN_NODE_MAJOR) {
  const arch = { x64: 'x64', arm64: 'arm64' }[process.arch];
  const fetched = fileURLToPath(new URL(`../../../.dsg-node/24/node_modules/node-${process.platform}-${arch}/bin/node`, import.meta.url));
  if (arch && existsSync(fetched)) {
    const child = require('node:child_process').spawn(fetched, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
    child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
  } else {
    process.stderr.write(`dsg: this is Node ${process.versions.node}; dsg needs Node ${MIN_NODE_MAJOR} or newer (Node ${process.versions.node.split('.')[0]} is past its end of life).\n`
      + 'Install Node 24 LTS (https://nodejs.org, or `nvm install 24`) and run the command again. '
      + 'Inside the repository, `npm start` fetches one for you.\n');
    process.exit(1);
  }
} else {
  const bundle = fileURLToPath(new URL('../bundle/dsg.js', import.meta.url));
  const compiled = fileURLToPath(new URL('../dist/src/main.js', import.meta.url));
  const main = process.env.DSG_NO_BUNDLE !== '1' && existsSync(bundle) ? bundle : compiled;
  if (!existsSync(main)) {
    process.stderr.write('dsg: the CLI is not built yet. From the repository root run: npm run build\n');
    process.exit(1);
  }
  await import(main);
}
