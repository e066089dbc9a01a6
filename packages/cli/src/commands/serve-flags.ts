/** Flags shared by `dsg up` and `dsg coordinator`, turned into CoordinatorOptions. */
import type { Command } from 'commander';
import { ValidationError } from '@dsg/core';
import type { CoordinatorOptions } from '@dsg/coordinator';
import { dataDir, logLevel, processEnv, type LogLevel } from '../config.js';
import { parsePositiveNumber } from './parse-flags.js';

export interface ServeFlags {
  dataDir?: string;
  port?: string;
  host?: string;
  heartbeat?: string;
  nodeTimeout?: string;
  logLevel?: string;
}

export function addServeFlags(cmd: Command, defaultLevel: LogLevel): Command {
  return cmd
    .option('--data-dir <dir>', 'where the database, logs, blobs and credentials live (env DSG_DATA_DIR)', undefined)
    .option('-p, --port <port>', 'port for the API, dashboard and agents (env DSG_PORT; 0 = any free port)')
    .option('--host <address>', 'address to listen on (env DSG_HOST)', undefined)
    .option('--heartbeat <seconds>', 'seconds between agent heartbeats', '5')
    .option('--node-timeout <seconds>', 'seconds of silence before a node is declared lost and its tasks requeued', '30')
    .option('--log-level <level>', `debug, info, warn, error or silent (env DSG_LOG_LEVEL; default ${defaultLevel})`);
}

export function coordinatorOptions(f: ServeFlags, defaultLevel: LogLevel): CoordinatorOptions {
  const portText = f.port ?? processEnv['DSG_PORT'] ?? '7070';
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ValidationError([{ path: '--port', message: `expected a port number from 0 to 65535, got "${portText}"` }]);
  const heartbeat = parsePositiveNumber(f.heartbeat ?? '5', '--heartbeat');
  const nodeTimeout = parsePositiveNumber(f.nodeTimeout ?? '30', '--node-timeout');
  if (nodeTimeout <= heartbeat) throw new ValidationError([{ path: '--node-timeout', message: `must be longer than --heartbeat (${heartbeat}s)` }]);
  return {
    dataDir: dataDir(f.dataDir, processEnv),
    host: f.host ?? processEnv['DSG_HOST'] ?? '0.0.0.0',
    port,
    heartbeatIntervalSeconds: heartbeat,
    nodeTimeoutSeconds: nodeTimeout,
    logLevel: logLevel(f.logLevel, processEnv, defaultLevel),
  };
}
