// What a LAN advertisement may say is untrusted: parseService keeps only well-formed DSG answers. And the
// advertise setting follows the usual precedence (defaults < file < env < flag).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseService, resolveServeConfig, SERVE_DEFAULTS } from '@dsg/cli';

const FP = `sha256:${'ab'.repeat(32)}`;
const good = { txt: { id: '0123456789ab', name: 'lab', api: '1', tls: '1', fp: FP }, addresses: ['fe80::1', '10.0.0.5'], port: 7070 };

describe('parseService', () => {
  it('builds the URL from the first IPv4 address and the TLS flag', () => {
    assert.deepEqual(parseService(good), { gridId: '0123456789ab', name: 'lab', api: '1', tls: true, tlsFingerprint: FP, url: 'https://10.0.0.5:7070', addresses: ['10.0.0.5'], port: 7070 });
    assert.equal(parseService({ ...good, txt: { ...good.txt, tls: '0', fp: undefined } })?.url, 'http://10.0.0.5:7070');
  });
  it('falls back to the address the answer came from', () => {
    assert.equal(parseService({ ...good, addresses: [], referer: { address: '10.0.0.9' } })?.url, 'https://10.0.0.9:7070');
  });
  it('rejects malformed or foreign answers', () => {
    for (const bad of [
      { ...good, txt: { ...good.txt, id: 'nope' } },
      { ...good, txt: { ...good.txt, fp: 'sha256:zz' } },
      { ...good, txt: { ...good.txt, tls: 'yes' } },
      { ...good, txt: { ...good.txt, name: 'x'.repeat(64) } },
      { ...good, txt: { ...good.txt, api: undefined } },
      { ...good, port: 0 },
      { ...good, addresses: ['fe80::1'] },
      { ...good, txt: undefined },
    ]) assert.equal(parseService(bad), null, JSON.stringify(bad));
  });
});

describe('advertise setting', () => {
  const resolve = (flags: Record<string, unknown>, env: Record<string, string>, file: Record<string, unknown> | null) =>
    resolveServeConfig({ flags, env, file, fileName: 'grid.yaml', defaults: SERVE_DEFAULTS, cwd: '/tmp' });
  it('is on by default, off by file, env or flag, and the flag wins', () => {
    assert.equal(resolve({}, {}, null).advertise, true);
    assert.equal(resolve({}, {}, { advertise: false }).advertise, false);
    assert.equal(resolve({}, { DSG_ADVERTISE: 'false' }, { advertise: true }).advertise, false);
    assert.equal(resolve({ advertise: false }, { DSG_ADVERTISE: 'true' }, null).advertise, false);
    assert.equal(resolve({}, {}, null).gridName, undefined);
    assert.equal(resolve({}, { DSG_GRID_NAME: 'lab' }, null).gridName, 'lab');
  });
  it('names the bad source', () => {
    assert.throws(() => resolve({}, { DSG_ADVERTISE: 'maybe' }, null), /DSG_ADVERTISE/);
  });
});
