export { DsgClient, type DsgClientOptions } from './client.js';
