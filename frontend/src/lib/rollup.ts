// Roll-up of loops per group (area): criticality-weighted mean health sum(c*h)/sum(c) over the
// loops with a score, and loops per status — the gateway's formula for its unit roll-up.

import type { Loop, LoopStatus, UnitRollup } from "../api/types";

export interface GroupRollup extends Omit<UnitRollup, "unit"> {
  name: string | null;
}

export function rollUp(loops: Loop[]): Omit<GroupRollup, "name"> {
  const counts: Record<LoopStatus, number> = { good: 0, fair: 0, poor: 0, not_assessed: 0, offline: 0 };
  let weighted = 0;
  let weights = 0;
  for (const loop of loops) {
    counts[loop.status] = (counts[loop.status] ?? 0) + 1;
    if (loop.health_score !== null) {
      weighted += loop.health_score * loop.criticality;
      weights += loop.criticality;
    }
  }
  return { loops: loops.length, health_score: weights ? Math.round((weighted / weights) * 100) / 100 : null, status_counts: counts };
}

/** One roll-up per distinct value of ``key`` (sorted; loops without a value last, as null). */
export function rollUpBy(loops: Loop[], key: (loop: Loop) => string | null): GroupRollup[] {
  const groups = new Map<string, Loop[]>();
  for (const loop of loops) {
    const name = key(loop) ?? "";
    groups.set(name, [...(groups.get(name) ?? []), loop]);
  }
  const names = [...groups.keys()].filter(Boolean).sort((a, b) => a.localeCompare(b));
  const out: GroupRollup[] = names.map((name) => ({ name, ...rollUp(groups.get(name)!) }));
  if (groups.has("")) out.push({ name: null, ...rollUp(groups.get("")!) });
  return out;
}
