/**
 * Which output paths an attempt may upload: exactly those its job declared. The agent globs the working dir with
 * tinyglobby (which matches with picomatch); the coordinator checks each uploaded path against the same globs with
 * picomatch, so a path the agent may collect is one the coordinator accepts, and nothing else is.
 */
import picomatch from 'picomatch/posix.js';
import { isPlainRelativePath } from './spec.js';

/**
 * A matcher for one job's declared output globs (`outputs` + `optionalOutputs`). It accepts a path only if it is a
 * plain relative path (no `..`, `.`, empty segment, leading `/` or backslash) that one of the globs matches.
 */
export function outputPathMatcher(globs: readonly string[]): (path: string) => boolean {
  const ms = globs.map((g) => picomatch(g.replace(/^(\.\/)+/, ''), { dot: true }));
  return (path) => isPlainRelativePath(path) && ms.some((m) => m(path));
}
