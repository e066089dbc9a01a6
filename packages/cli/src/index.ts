export {
  resolveClientConfig,
  configFilePath,
  taskBaseEnv,
  normalizeCoordinatorUrl,
  resolveGiveUpAfter,
  DEFAULT_GIVE_UP_AFTER_MS,
  type ClientConfig,
  type SettingSource,
} from './config.js';
export { parseSpecText, loadSpecFile, collectInputs } from './spec-file.js';
export { planOutputs } from './commands/job-outputs.js';
export { emptyLogNote } from './commands/job-logs.js';
export { resolveServeConfig, SERVE_DEFAULTS } from './serve-config.js';
export { explainClientError } from './explain.js';
export { plural, taskValue } from './format.js';
export { nodeNamer } from './node-names.js';
export { Reconnector, Interrupted, type ReconnectOptions } from './reconnect.js';
export { parseService, type FoundGrid } from './discovery.js';
