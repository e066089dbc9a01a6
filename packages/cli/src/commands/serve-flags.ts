/** Flags shared by `dsg up` and `dsg coordinator`, turned into CoordinatorOptions through serve-config.ts. */
import type { Command } from 'commander';
import type { CoordinatorOptions } from '@dsg/coordinator';
import { processEnv, type LogLevel } from '../config.js';
import { readServeConfigFile, resolveServeConfig, SERVE_DEFAULTS, type ServeFlags } from '../serve-config.js';

export type { ServeFlags };

export function addServeFlags(cmd: Command, defaultLevel: LogLevel): Command {
  return cmd
    .option('--config <file>', 'settings file, YAML or JSON: dataDir, host, port, heartbeatSeconds, nodeTimeoutSeconds, logLevel, maxQueuedTasks, maxQueuedTasksPerProject (env DSG_CONFIG)')
    .option('--data-dir <dir>', 'where the database, logs, blobs and credentials live (env DSG_DATA_DIR; default .dsg)')
    .option('-p, --port <port>', 'port for the API, dashboard and agents (env DSG_PORT; default 7070; 0 = any free port)')
    .option('--host <address>', 'address to listen on (env DSG_HOST; default 0.0.0.0)')
    .option('--heartbeat <seconds>', 'seconds between agent heartbeats; an agent silent for 3 of them is disconnected (env DSG_HEARTBEAT; default 2)')
    .option('--node-timeout <seconds>', 'seconds a node may be out of reach (disconnected or silent) before it is declared lost and its tasks requeued (env DSG_NODE_TIMEOUT; default 10)')
    .option('--max-queued-tasks <n>', 'admission: most tasks waiting to start in the grid; a submit over it gets HTTP 429 (env DSG_MAX_QUEUED_TASKS; default 1000000)')
    .option('--max-queued-tasks-per-project <n>', 'admission: most tasks waiting to start per project (env DSG_MAX_QUEUED_TASKS_PER_PROJECT; default 1000000)')
    .option('--log-level <level>', `debug, info, warn, error or silent (env DSG_LOG_LEVEL; default ${defaultLevel})`);
}

export function coordinatorOptions(flags: ServeFlags, defaultLevel: LogLevel): CoordinatorOptions {
  const { file, fileName } = readServeConfigFile(flags, processEnv);
  return resolveServeConfig({ flags, env: processEnv, file, fileName, defaults: { ...SERVE_DEFAULTS, logLevel: defaultLevel }, cwd: process.cwd() });
}
