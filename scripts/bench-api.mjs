// The admin API calls the bench scripts make against a grid they started: over its pinned TLS certificate (the grid
// serves TLS with its own certificate by default), as the CLI does. Load after the build (ensure.mjs) has run.
import { join } from 'node:path';

export function benchApi(root) {
  let pinned = null;
  async function api(c, method, path, body) {
    if (!pinned) {
      const tls = await import(join(root, 'packages', 'client', 'dist', 'src', 'tls.js'));
      pinned = tls.coordinatorFetch(c.url, c.tlsFingerprint ? tls.parseFingerprint(c.tlsFingerprint) : null);
    }
    const r = await pinned(`${c.url}/api/v1${path}`, {
      method, headers: { authorization: `Bearer ${c.adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
    return r.json();
  }
  async function waitJob(c, id, pollMs) {
    for (;;) {
      const j = await api(c, 'GET', `/jobs/${id}`);
      if (j.finishedAt) return j;
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }
  /** A new grid has its own certificate: pin afresh on the next call. */
  const forget = () => { pinned = null; };
  return { api, waitJob, forget };
}
