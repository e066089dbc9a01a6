export * from './types.js';
export { schedule } from './schedule.js';
export { checkCapacity, checkFree } from './filters.js';
export { loadAfter, scoreNode } from './rank.js';
export { seededRng } from './rng.js';
