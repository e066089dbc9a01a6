/** The Clock port: the only source of "now" in the coordinator, so tests can drive time. */
export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };
