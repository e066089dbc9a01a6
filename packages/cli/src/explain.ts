/**
 * Turn a client error into a message that says where the offending setting came from and what to do. The client
 * (which also runs in browsers) knows only a URL and a token; the CLI knows whether they came from a flag, the
 * environment or a file.
 */
import type { DsgError } from '@dsg/core';
import { describeSource, type ClientConfig, type SettingSource } from './config.js';

const WHERE_CREDENTIALS = "the grid's credentials.json (in its data dir: .dsg/credentials.json for `npm start`)";

function fixToken(src: SettingSource): string {
  switch (src.kind) {
    case 'flag':
      return `pass the adminToken from ${WHERE_CREDENTIALS} as --token`;
    case 'env':
      return `set DSG_TOKEN to the adminToken from ${WHERE_CREDENTIALS}, or unset DSG_TOKEN to use the config file`;
    case 'file':
      return `that file was written by \`dsg up\` for a grid that may have been replaced; start the grid again (\`npm start\` or \`dsg up\` rewrites it), or set DSG_TOKEN to the adminToken from ${WHERE_CREDENTIALS}`;
    case 'credentials':
      return `that file belongs to another grid than the one at this URL; pass --token with the adminToken from the credentials.json of the grid you mean`;
  }
}

/** The message for `e`, with the source of the URL or token added where it helps; other errors unchanged. */
export function explainClientError(e: DsgError, c: ClientConfig | null): string {
  if (!c) return e.message;
  const urlFrom = (): string => {
    const src = c.coordinatorSource;
    const raw = src.raw.trim().replace(/\/+$/, '');
    return raw === c.coordinator ? `the URL came from ${describeSource(src)}` : `"${src.raw}" from ${describeSource(src)}, read as ${c.coordinator}`;
  };
  const sameSource = c.coordinatorSource.kind === c.tokenSource.kind && c.coordinatorSource.name === c.tokenSource.name;
  switch (e.code) {
    case 'unauthorized':
      return [
        `the coordinator at ${c.coordinator} rejected the token: ${e.message}`,
        `  the token came from ${describeSource(c.tokenSource)}${sameSource ? '' : ` (${urlFrom()})`}`,
        `  to fix: ${fixToken(c.tokenSource)}`,
      ].join('\n');
    case 'forbidden':
      // A node token used for a command is a mix-up of the two tokens in credentials.json; a submitter or reader
      // token refused is a question of permission, which the grid's admin decides.
      if (/\bnode token\b|\bjoin token\b/.test(e.message))
        return [
          `the coordinator at ${c.coordinator} refused: ${e.message}`,
          `  the token came from ${describeSource(c.tokenSource)}; dsg commands need an admin, submitter or reader token (a node's join token only lets agents join)`,
          `  to fix: use adminToken, not joinToken, from ${WHERE_CREDENTIALS}`,
        ].join('\n');
      return [
        `the coordinator at ${c.coordinator} refused: ${e.message}`,
        `  the token came from ${describeSource(c.tokenSource)}; if you need this, ask the grid's admin (\`dsg token list\` shows roles and projects)`,
      ].join('\n');
    case 'unavailable':
      return `${e.message} (${urlFrom()})`;
    default:
      return e.message;
  }
}
