export * from './types.js';
export { schedule, byQueuePosition } from './schedule.js';
export { tasksToRead, type QueuedJobSummary } from './tasks-to-read.js';
export { checkCapacity, checkFree } from './filters.js';
export { loadAfter, scoreNode } from './rank.js';
export { seededRng } from './rng.js';
export * from './plugins.js';
export * from './explain.js';
export * from './fair-share.js';
