export { startAgent, type AgentPorts } from './agent.js';
export type { AgentOptions, RunningAgent } from './options.js';
export type { Executor, ExecSpec, ExecEvents, ExecHandle, ExecResult } from './executor/executor.js';
export { NativeExecutor, type NativeExecutorOptions } from './executor/native-executor.js';
export { FakeExecutor, type FakeBehaviour } from './executor/fake-executor.js';
export { SystemProbe, FakeProbe, offeredCapacity, type Probe } from './probe/probe.js';
export { parseNvidiaSmi, probeNvidia } from './probe/nvidia.js';
export { AttemptRun, type RunnerDeps } from './runner.js';
export { CoordinatorHttp } from './coordinator-http.js';
