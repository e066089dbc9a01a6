export { startCoordinator } from './coordinator.js';
export { COORDINATOR_DEFAULTS, type CoordinatorOptions, type RunningCoordinator } from './options.js';
export { Engine, type AgentLink, type EngineConfig } from './engine/engine.js';
export type { Clock } from './clock.js';
