export { DsgClient, type DsgClientOptions } from './client.js';
export type { FetchLike, RequestInitLike, ResponseLike } from './fetch-like.js';
