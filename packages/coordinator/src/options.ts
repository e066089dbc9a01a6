/** Options for one coordinator process. The CLI's config module builds these (defaults < file < DSG_* env < flags). */
export interface CoordinatorOptions {
  /** Directory for the SQLite database, blobs, logs, outputs and credentials (created if missing). */
  readonly dataDir: string;
  /** Address to listen on. Default `0.0.0.0` (reachable on the LAN; every route needs a token). */
  readonly host?: string;
  /** Port. Default 7070; 0 picks a free port. */
  readonly port?: number;
  /** Seconds between agent heartbeats. Default 5. */
  readonly heartbeatIntervalSeconds?: number;
  /** Seconds without a heartbeat before a node is declared lost and its tasks requeued. Default 30. */
  readonly nodeTimeoutSeconds?: number;
  /** Log level. Default `info`. */
  readonly logLevel?: 'debug' | 'info' | 'warn' | 'error' | 'silent';
}

export interface RunningCoordinator {
  /** Base URL reachable from this machine, e.g. `http://127.0.0.1:7070`. */
  readonly url: string;
  readonly port: number;
  /** Admin token (also written to `credentialsFile`). */
  readonly adminToken: string;
  /** Token agents use to join. */
  readonly joinToken: string;
  /** `<dataDir>/credentials.json`, mode 0600: { url, adminToken, joinToken }. */
  readonly credentialsFile: string;
  close(): Promise<void>;
}
