/**
 * The dashboard's addresses: every page has its own, in the URL's fragment (`#/jobs/job_…`), so a page can be
 * bookmarked and shared and the coordinator serves one file for all of them. Pure: parse and format only.
 */
export type Route =
  | { page: 'overview' }
  | { page: 'jobs'; query: Record<string, string> }
  | { page: 'job'; id: string; query: Record<string, string> }
  | { page: 'task'; id: string; index: number; query: Record<string, string> }
  | { page: 'workflows'; query: Record<string, string> }
  | { page: 'workflow'; id: string }
  | { page: 'nodes' }
  | { page: 'node'; id: string }
  | { page: 'ledger'; query: Record<string, string> }
  | { page: 'audit'; query: Record<string, string> }
  | { page: 'not-found'; path: string };

const ID = /^[A-Za-z0-9_.:-]{1,200}$/;

export function parseRoute(hash: string): Route {
  const text = hash.replace(/^#/, '');
  const [pathPart = '', queryPart = ''] = text.split('?', 2);
  const query: Record<string, string> = {};
  for (const kv of queryPart.split('&')) {
    if (!kv) continue;
    const [k = '', v = ''] = kv.split('=', 2);
    try {
      query[decodeURIComponent(k)] = decodeURIComponent(v);
    } catch {
      /* a mangled parameter is ignored */
    }
  }
  const parts = pathPart.split('/').filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return '';
    }
  });
  const [a, b, c, d] = parts;
  if (parts.length === 0) return { page: 'overview' };
  if (a === 'jobs' && parts.length === 1) return { page: 'jobs', query };
  if (a === 'jobs' && b && ID.test(b) && parts.length === 2) return { page: 'job', id: b, query };
  if (a === 'jobs' && b && ID.test(b) && c === 'tasks' && d !== undefined && /^\d{1,9}$/.test(d) && parts.length === 4)
    return { page: 'task', id: b, index: Number(d), query };
  if (a === 'workflows' && parts.length === 1) return { page: 'workflows', query };
  if (a === 'workflows' && b && ID.test(b) && parts.length === 2) return { page: 'workflow', id: b };
  if (a === 'nodes' && parts.length === 1) return { page: 'nodes' };
  if (a === 'nodes' && b && ID.test(b) && parts.length === 2) return { page: 'node', id: b };
  if (a === 'ledger' && parts.length === 1) return { page: 'ledger', query };
  if (a === 'audit' && parts.length === 1) return { page: 'audit', query };
  return { page: 'not-found', path: pathPart };
}

/** `#/path?k=v` with the empty values left out. */
export function href(path: string, query: Record<string, string | number | undefined | null> = {}): string {
  const qs = Object.entries(query)
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
    .join('&');
  return `#${path}${qs ? `?${qs}` : ''}`;
}
