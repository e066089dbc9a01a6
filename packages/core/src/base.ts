/**
 * The small, dependency-free part of core that every `dsg` command needs at start-up: errors, units, the API
 * prefix and the version. Its own entry point (`@dsg/core/base`) so the CLI's start path and the client do not load
 * the spec's zod schemas (~0.9 MB of bundled code, ~130 ms to compile at every `dsg --version`); the package root
 * re-exports all of it.
 */
export * from './errors.js';
export * from './units.js';
export * from './api-prefix.js';
export { DSG_VERSION } from './version.js';
export * from './states.js';
