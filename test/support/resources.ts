/** What a test can ask Node about the resources a component left behind. */

/** Active (ref'd) Node timers of this process, from `process.getActiveResourcesInfo()`. */
export function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}
