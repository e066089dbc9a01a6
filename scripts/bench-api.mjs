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
  /**
   * Wait for a job to finish. Polls every `pollMs` near the end but not before: each poll is a request the
   * coordinator serves on the CPU the tasks share (every 5 ms cost W2 a few per cent of its makespan, a cost the
   * xargs baseline does not pay). The wait is a tenth of the time left at the rate so far, between `pollMs` and
   * 200 ms, so the end is still seen within about `pollMs`.
   */
  async function waitJob(c, id, pollMs) {
    const t0 = performance.now();
    for (;;) {
      const j = await api(c, 'GET', `/jobs/${id}`);
      if (j.finishedAt) return j;
      const done = j.counts.succeeded + j.counts.failed + j.counts.cancelled;
      const elapsed = performance.now() - t0;
      const left = done > 0 ? ((j.taskCount - done) * elapsed) / done : 0;
      await new Promise((r) => setTimeout(r, Math.min(200, Math.max(pollMs, left / 10))));
    }
  }
  /** A new grid has its own certificate: pin afresh on the next call. */
  const forget = () => { pinned = null; };
  return { api, waitJob, forget };
}
