/**
 * Cursor pagination as the API does it (keyset: each page names the cursor of the next). Going back needs the
 * cursors of the pages before, so the pager keeps them as a stack: page N's cursor is `stack[N]`, page 0's is none.
 * Pure and immutable: each move returns a new state (kept in the URL, so a page of results can be linked).
 */
export interface PagerState {
  /** Cursors of the pages up to the current one; [] on the first page. */
  readonly cursors: readonly string[];
}

export const firstPage = (): PagerState => ({ cursors: [] });

/** The cursor to ask the API for the current page (undefined: the first page). */
export const currentCursor = (s: PagerState): string | undefined => s.cursors[s.cursors.length - 1];

/** 1-based page number for people. */
export const pageNumber = (s: PagerState): number => s.cursors.length + 1;

/** Next page, given the current page's `nextCursor` (unchanged when there is none). */
export function nextPage(s: PagerState, nextCursor: string | null): PagerState {
  if (!nextCursor) return s;
  return { cursors: [...s.cursors, nextCursor] };
}

export function previousPage(s: PagerState): PagerState {
  return s.cursors.length === 0 ? s : { cursors: s.cursors.slice(0, -1) };
}

/** Most pages remembered (a URL stays short): past it, the oldest cursors are dropped and "previous" stops there. */
export const MAX_REMEMBERED = 20;

/** The pager as one URL parameter ("c1,c2"), and back; invalid parts are dropped. */
export function encodePager(s: PagerState): string {
  return s.cursors.slice(-MAX_REMEMBERED).map(encodeURIComponent).join(',');
}

export function decodePager(text: string | null | undefined): PagerState {
  if (!text) return firstPage();
  const cursors = text.split(',').filter((c) => c.length > 0 && c.length <= 200).slice(-MAX_REMEMBERED).map((c) => {
    try {
      return decodeURIComponent(c);
    } catch {
      return '';
    }
  }).filter((c) => c.length > 0);
  return { cursors };
}
