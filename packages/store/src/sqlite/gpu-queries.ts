/**
 * The queries that read a node's GPU device state: the devices of its active attempts. Each dispatch pass runs the
 * first, `applyPlan` the second for a node given GPU work; both go through the `attempts_gpu_active` partial index
 * (migration 14), so they cost what the GPU attempts are, whatever else runs (a test checks their query plans).
 */
export const GPU_HELD_SQL = "SELECT node_id, gpu_devices FROM attempts WHERE state IN ('assigned', 'running') AND gpu_devices IS NOT NULL";
export const GPU_HELD_OF_NODE_SQL = "SELECT node_id, gpu_devices FROM attempts WHERE node_id = ? AND state IN ('assigned', 'running') AND gpu_devices IS NOT NULL";
