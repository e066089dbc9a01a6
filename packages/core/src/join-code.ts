/**
 * Join codes: four words a person can read aloud in a classroom ("`dsg agent --join apple-river-cannon-ozone`"),
 * as good as the join token for the code's short life. The words are BIP-39's English list (2,048 words, chosen
 * so that no two share their first four letters and few look alike; MIT-licensed via @scure/bip39), so a code
 * holds 44 bits. Failed attempts are limited per address (60 a minute) and for all addresses together (600 a
 * minute), so within a default one-hour life at most 36,000 guesses are tried: a chance of about 2 × 10^-9 per live
 * code (docs/SECURITY.md › Join codes).
 *
 * Pure (no I/O): the coordinator draws the words with a CSPRNG and passes the draw in.
 */
import { wordlist } from '@scure/bip39/wordlists/english.js';
import { ValidationError } from './errors.js';

export const JOIN_CODE_WORDS: readonly string[] = wordlist;
export const JOIN_CODE_LENGTH = 4;
const INDEX = new Map(JOIN_CODE_WORDS.map((w, i) => [w, i]));

/** The code for these word indexes (each 0…2047), e.g. from `crypto.randomInt`. */
export function joinCodeFromIndexes(indexes: readonly number[]): string {
  if (indexes.length !== JOIN_CODE_LENGTH || indexes.some((i) => !Number.isInteger(i) || i < 0 || i >= JOIN_CODE_WORDS.length))
    throw new RangeError(`expected ${JOIN_CODE_LENGTH} word indexes from 0 to ${JOIN_CODE_WORDS.length - 1}`);
  return indexes.map((i) => JOIN_CODE_WORDS[i]!).join('-');
}

/**
 * Does this text look like a join code rather than a token? Four words separated by -, space, . or _ — and not a
 * token: `dsg_<role>_<random>`, whose base64url part can be all letters with one `_` in it (`dsg_node_VGLjQ…Sa_ALuq…`
 * is four "words"; about one token in 1,300), which must never be read as a code.
 */
export const looksLikeJoinCode = (text: string): boolean => !/^\s*dsg_/.test(text) && /^\s*[a-z]+([\s._-]+[a-z]+){3}\s*$/i.test(text);

/**
 * A join code as typed (any case; words separated by hyphens, spaces, dots or underscores) → its one spelling
 * `word-word-word-word`. A word not in the list is named, with the list words that start alike.
 */
export function normalizeJoinCode(text: string, where = '--join'): string {
  const words = text.trim().toLowerCase().split(/[\s._-]+/).filter(Boolean);
  if (words.length !== JOIN_CODE_LENGTH)
    throw new ValidationError([{ path: where, message: `a join code is ${JOIN_CODE_LENGTH} words like apple-river-cannon-ozone; got ${words.length} word${words.length === 1 ? '' : 's'} in "${text}"` }]);
  const unknown = words.filter((w) => !INDEX.has(w));
  if (unknown.length > 0) {
    throw new ValidationError(unknown.map((w) => {
      const near = JOIN_CODE_WORDS.filter((x) => x.startsWith(w.slice(0, 3))).slice(0, 5);
      return { path: where, message: `"${w}" is not a join-code word${near.length > 0 ? ` (did you mean ${near.join(', ')}?)` : ''}; check the code with whoever gave it to you` };
    }));
  }
  return words.join('-');
}
