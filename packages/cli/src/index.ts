export { resolveClientConfig, configFilePath, taskBaseEnv, type ClientConfig } from './config.js';
export { parseSpecText, loadSpecFile, collectInputs } from './spec-file.js';
export { planOutputs } from './commands/job-outputs.js';
export { resolveServeConfig, SERVE_DEFAULTS } from './serve-config.js';
