// @vitest-environment node
import type { Loop } from "../../src/api/types";
import { rollUp, rollUpBy } from "../../src/lib/rollup";

const loop = (loop_id: string, area: string | null, health: number | null, criticality: number, status: Loop["status"]): Loop => ({
  loop_id,
  name: loop_id,
  description: "",
  unit: null,
  area,
  engineering_units: null,
  active: true,
  created_at: null,
  updated_at: null,
  status,
  health_score: health,
  main_problem: null,
  kpi_window_end: null,
  criticality,
  bad_actor_score: null,
});

describe("roll-up per area", () => {
  it("weights health by criticality and leaves offline loops out of the score", () => {
    // (90 * 1 + 40 * 4) / (1 + 4) = 50
    expect(rollUp([loop("a", "A", 90, 1, "good"), loop("b", "A", 40, 4, "poor"), loop("c", "A", null, 5, "offline")])).toEqual({
      loops: 3,
      health_score: 50,
      status_counts: { good: 1, fair: 0, poor: 1, not_assessed: 0, offline: 1 },
    });
    expect(rollUp([loop("c", "A", null, 5, "offline")]).health_score).toBeNull();
  });

  it("counts not-assessed loops but leaves them out of the health", () => {
    const rolled = rollUp([loop("a", "A", 90, 1, "good"), loop("b", "A", null, 5, "not_assessed")]);
    expect(rolled.health_score).toBe(90);
    expect(rolled.status_counts).toMatchObject({ good: 1, not_assessed: 1 });
  });

  it("groups by area, sorted, loops without an area last", () => {
    const groups = rollUpBy([loop("a", "Utilities", 80, 3, "good"), loop("b", null, 70, 3, "fair"), loop("c", "Reactors", 60, 3, "fair")], (l) => l.area);
    expect(groups.map((group) => [group.name, group.health_score])).toEqual([
      ["Reactors", 60],
      ["Utilities", 80],
      [null, 70],
    ]);
  });
});
