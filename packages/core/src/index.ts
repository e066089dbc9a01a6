export * from './ids.js';
export * from './errors.js';
export * from './units.js';
export * from './resources.js';
export * from './states.js';
export * from './outcome.js';
export * from './spec.js';
export * from './gpu-devices.js';
export * from './constraints.js';
export * from './workflow.js';
export * from './workflow-release.js';
export * from './spawn-limits.js';
export * from './api-prefix.js';
export * from './wire.js';
export * from './protocol.js';
export * from './output-paths.js';
export * from './node-policy.js';
export { DSG_VERSION } from './version.js';
export * from './audit.js';
export * from './ledger.js';
export * from './join-code.js';
export * from './dashboard.js';
// wire-schemas.ts (answers' zod schemas, for the OpenAPI description) is its own entry point, @dsg/core/wire-schemas:
// building them costs ~25 ms of CPU at import, which the CLI and the agent must not pay.
