export { startCoordinator } from './coordinator.js';
export type { CoordinatorOptions, RunningCoordinator } from './options.js';
export { Engine, type AgentLink, type EngineConfig } from './engine/engine.js';
export type { Clock } from './clock.js';
