/**
 * Data lifecycle: retention of finished work, garbage collection of blobs and logs, and disk use for `dsg status`.
 *
 * What goes: finished plain jobs and finished workflows (a workflow as a whole, never one of its stages alone)
 * older than `maxAge`, and, while blobs and logs take more than `maxBytes`, the oldest finished work next. Their
 * rows go first (one commit per chunk, each re-checking that the work is still finished), then their logs; then
 * every blob that no remaining job refers to — as an input, a task's input from an earlier stage, or an output.
 *
 * What never goes: anything a queued or running job or an unfinished workflow needs. Those jobs are never chosen
 * (only finished work is), and their blobs stay referenced by their rows. Blobs and log dirs written within
 * `grace` are left alone even when nothing refers to them yet: an upload for a submit in flight, or an output an
 * agent sends before reporting its attempt (a HEAD on a blob refreshes its time for the same reason: a client that
 * found a blob and skipped its upload is about to submit a job naming it).
 *
 * Order and crashes: rows before files, so a crash between them leaves only unreferenced files, swept next run.
 * One collection runs at a time; a dry run reports the same choice without changing anything.
 */
import { stat } from 'node:fs/promises';
import type { GcReportV1, StatusV1 } from '@dsg/core';
import type { FinishedWork, Store } from '@dsg/store';
import type { Clock } from '../clock.js';
import type { BlobStore } from '../files/blob-store.js';
import type { LogStore } from '../files/log-store.js';
import type { Logger } from '../logger.js';

export interface RetentionSettings {
  /** Finished work older than this is removed. Null: kept forever. */
  readonly maxAgeMs: number | null;
  /** While blobs and logs take more than this, the oldest finished work is removed. Null: no limit. */
  readonly maxBytes: number | null;
  /** Between periodic collections. */
  readonly intervalMs: number;
  /** Unreferenced blobs and log dirs younger than this are kept (uploads and outputs in flight). */
  readonly graceMs: number;
}

export interface DataLifecycleDeps {
  readonly store: Store;
  readonly blobs: BlobStore;
  readonly logs: LogStore;
  readonly clock: Clock;
  readonly log: Logger;
  readonly settings: RetentionSettings;
  /** Files that make up the database, for its size. */
  readonly databaseFiles: readonly string[];
}

/** Defaults that keep data: finished work for 30 days, no size limit, a collection every hour, 1 hour of grace. */
export const DEFAULT_RETENTION: RetentionSettings = { maxAgeMs: 30 * 86_400_000, maxBytes: null, intervalMs: 3_600_000, graceMs: 3_600_000 };

const LISTED = 200;
/**
 * Small jobs are deleted together up to this many tasks per commit (a job of more than 2,000 tasks is deleted alone,
 * by the store, 2,000 tasks per commit): 20,000 held the event loop for hundreds of ms on a loaded machine.
 */
const TASKS_PER_COMMIT = 2_000;

export class DataLifecycle {
  lastGc: GcReportV1 | null = null;
  private running: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: DataLifecycleDeps) {}

  /** Run a collection now (after any under way). */
  collect(options: { readonly dryRun: boolean }): Promise<GcReportV1> {
    const run = this.running.then(() => this.collectOnce(options.dryRun));
    this.running = run.catch(() => undefined);
    return run;
  }

  private async collectOnce(dryRun: boolean): Promise<GcReportV1> {
    const { store, blobs, logs, clock, settings } = this.deps;
    const now = clock.now();
    const work = await store.listFinishedWork(100_000);
    const chosen: Array<{ w: FinishedWork; why: 'age' | 'size' }> = [];
    const rest: FinishedWork[] = [];
    for (const w of work) {
      if (settings.maxAgeMs !== null && w.finishedAt < now - settings.maxAgeMs) chosen.push({ w, why: 'age' });
      else rest.push(w);
    }
    const logDirs = await logs.listJobs();
    const logBytes = new Map(logDirs.map((d) => [d.jobId, d.bytes]));
    if (settings.maxBytes !== null) {
      let total = logDirs.reduce((n, d) => n + d.bytes, 0);
      for await (const b of blobs.list()) total += b.size;
      const freedBy = (w: FinishedWork): number => w.outputBytes + w.jobIds.reduce((n, id) => n + (logBytes.get(id) ?? 0), 0);
      for (const c of chosen) total -= freedBy(c.w);
      for (const w of rest) {
        if (total <= settings.maxBytes) break;
        chosen.push({ w, why: 'size' });
        total -= freedBy(w);
      }
    }

    // Rows first, in chunks (each a commit that re-checks the work is still finished).
    let removedJobs: Set<string>;
    if (dryRun) {
      removedJobs = new Set(chosen.flatMap((c) => c.w.jobIds));
    } else {
      removedJobs = new Set();
      // Commits sized by the tasks they delete (~3 µs each), so none holds the event loop for long.
      for (let i = 0; i < chosen.length; ) {
        const batch: typeof chosen = [];
        let tasks = 0;
        while (i < chosen.length && (batch.length === 0 || tasks + chosen[i]!.w.taskCount <= TASKS_PER_COMMIT)) {
          tasks += chosen[i]!.w.taskCount;
          batch.push(chosen[i++]!);
        }
        for (const id of await store.deleteFinishedWork(batch.map((c) => ({ kind: c.w.kind, id: c.w.id })))) removedJobs.add(id);
        await new Promise((r) => setImmediate(r));
      }
    }
    const removed = chosen.filter((c) => c.w.jobIds.every((id) => removedJobs.has(id)));

    // Then logs: of the removed jobs, and of jobs that no longer exist (a crash between rows and files).
    const old = now - settings.graceMs;
    const logsFreed = { jobs: 0, bytes: 0 };
    for (const d of logDirs) {
      const gone = removedJobs.has(d.jobId) || (d.mtimeMs < old && !(await store.jobExists(d.jobId)));
      if (!gone) continue;
      logsFreed.jobs++;
      logsFreed.bytes += dryRun ? d.bytes : await logs.removeJob(d.jobId);
    }

    // Then blobs nothing refers to any more.
    const referenced = await store.referencedBlobs(dryRun ? removedJobs : undefined);
    const blobsFreed = { count: 0, bytes: 0 };
    for await (const b of blobs.list()) {
      if (referenced.has(b.sha256) || b.mtimeMs >= old) continue;
      if (!dryRun) await blobs.remove(b.sha256);
      blobsFreed.count++;
      blobsFreed.bytes += b.size;
    }

    const report: GcReportV1 = {
      dryRun,
      at: new Date(now).toISOString(),
      removed: removed.slice(0, LISTED).map((c) => ({ kind: c.w.kind, id: c.w.id, name: c.w.name, finishedAt: new Date(c.w.finishedAt).toISOString(), why: c.why })),
      jobs: removed.filter((c) => c.w.kind === 'job').length,
      workflows: removed.filter((c) => c.w.kind === 'workflow').length,
      logs: logsFreed,
      blobs: blobsFreed,
      bytesFreed: logsFreed.bytes + blobsFreed.bytes,
    };
    if (!dryRun) {
      this.lastGc = report;
      if (report.jobs + report.workflows + blobsFreed.count + logsFreed.jobs > 0)
        this.deps.log.info({ jobs: report.jobs, workflows: report.workflows, blobs: blobsFreed.count, bytesFreed: report.bytesFreed }, 'garbage collected');
    }
    return report;
  }

  async status(): Promise<StatusV1> {
    const { store, blobs, logs, settings } = this.deps;
    let databaseBytes = 0;
    for (const f of this.deps.databaseFiles) databaseBytes += (await stat(f).catch(() => ({ size: 0 }))).size;
    const blobTotals = { count: 0, bytes: 0 };
    for await (const b of blobs.list()) {
      blobTotals.count++;
      blobTotals.bytes += b.size;
    }
    const logDirs = await logs.listJobs();
    const stats = await store.stats();
    return {
      disk: { databaseBytes, blobs: blobTotals, logs: { jobs: logDirs.length, bytes: logDirs.reduce((n, d) => n + d.bytes, 0) } },
      jobs: { ...stats.jobsByState },
      workflows: { ...stats.workflowsByState },
      nodes: { ...stats.nodesByState },
      retention: {
        maxAgeDays: settings.maxAgeMs === null ? null : settings.maxAgeMs / 86_400_000,
        maxBytes: settings.maxBytes,
        intervalMinutes: settings.intervalMs / 60_000,
      },
      lastGc: this.lastGc,
    };
  }
}
