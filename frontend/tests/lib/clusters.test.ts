// @vitest-environment node
import { clusterCounts, lagOf, nonlinearityOf, normaliseClusters } from "../../src/lib/clusters";

const NO_EVIDENCE = {
  role: null,
  unit: null,
  area: null,
  amplitudePct: null,
  powerShare: null,
  coherence: null,
  lagS: null,
  ngi: null,
  nli: null,
  why: null,
};

describe("normaliseClusters", () => {
  it("reads each member's unit, strength, coherence and why it belongs", () => {
    const [cluster] = normaliseClusters({
      clusters: [
        {
          period_s: 40,
          likely_source: "FIC-1",
          source_reason: "its valve is sticky",
          members: [
            { loop_id: "FIC-1", role: "source", unit: "U1", area: "A", period_s: 40, amplitude_pct_of_span: 9.1, power_share: 0.6 },
            { loop_id: "LIC-2", role: "member", unit: "U1", period_s: 41, coherence_with_source: 0.95, why: "coherence 0.95 with FIC-1", nli: 0.1 },
          ],
        },
      ],
    });
    expect(cluster.sourceReason).toBe("its valve is sticky");
    expect(cluster.members[0]).toMatchObject({ role: "source", unit: "U1", area: "A", amplitudePct: 9.1, powerShare: 0.6, coherence: null });
    expect(cluster.members[1]).toMatchObject({ role: "member", periodS: 41, coherence: 0.95, why: "coherence 0.95 with FIC-1", area: null });
    expect(cluster.members[1]).toMatchObject({ nli: 0.1, ngi: null, lagS: null });
  });

  it("tells a member's cycle against the source's and its non-linearity", () => {
    const [cluster] = normaliseClusters({
      clusters: [
        {
          period_s: 60,
          members: [
            { loop_id: "A", role: "source", period_s: 60, ngi: 0.02, nli: 0.2 },
            { loop_id: "B", role: "member", period_s: 60, lag_behind_source_s: 15.2, ngi: 0.01, nli: -0.1 },
            { loop_id: "C", role: "member", period_s: 60, lag_behind_source_s: -6 },
          ],
        },
      ],
    });
    const [a, b, c] = cluster.members;
    expect(nonlinearityOf(a)).toBe("non-linear (NGI 0.020, NLI 0.200)");
    expect(nonlinearityOf(b)).toBe("linear (NGI 0.010, NLI -0.100)");
    expect(nonlinearityOf(c)).toBeNull(); // too short a window for the bicoherence
    expect(lagOf(b)).toBe("15 s behind (91°)");
    expect(lagOf(c)).toBe("6 s ahead (36°)");
    expect(lagOf(a)).toBeNull();
  });

  it("reads clusters with member objects and a likely source", () => {
    const clusters = normaliseClusters({
      clusters: [
        {
          cluster_id: 7,
          period_s: 164,
          members: [
            { loop_id: "TIC-1", period_s: 160, stiction_index: 0.8 },
            { loop_id: "PIC-2", period_s: 168 },
          ],
          likely_source: { loop_id: "TIC-1", reason: "strongest stiction evidence" },
        },
      ],
    });
    expect(clusters).toEqual([
      {
        id: "7",
        periodS: 164,
        members: [
          { loopId: "TIC-1", periodS: 160, ...NO_EVIDENCE, details: { period_s: 160, stiction_index: 0.8 } },
          { loopId: "PIC-2", periodS: 168, ...NO_EVIDENCE, details: { period_s: 168 } },
        ],
        source: "TIC-1",
        sourceReason: "strongest stiction evidence",
        sourceEvidence: {},
      },
    ]);
  });

  it("reads the diagnostics service's answer (member ids, likely source and its evidence)", () => {
    const answer = {
      start: "2026-01-10T00:00:00Z",
      end: "2026-01-11T00:00:00Z",
      loops_analysed: 12,
      oscillating_loops: 4,
      clusters: [{ period_s: 88, members: ["PIC-301", "FIC-302"], likely_source: "PIC-301", source_evidence: { stiction_verdict: "stiction", stiction_index: 0.81 } }],
    };
    const [cluster] = normaliseClusters(answer);
    expect(cluster).toMatchObject({ periodS: 88, source: "PIC-301", sourceEvidence: { stiction_index: 0.81 } });
    expect(cluster.members.map((member) => member.loopId)).toEqual(["PIC-301", "FIC-302"]);
    expect(clusterCounts(answer)).toEqual({ loopsAnalysed: 12, oscillatingLoops: 4, onMinuteMeans: false });
    expect(clusterCounts({ ...answer, basis: "minute_means" }).onMinuteMeans).toBe(true);
    expect(clusterCounts([])).toEqual({ loopsAnalysed: null, oscillatingLoops: null, onMinuteMeans: false });
  });

  it("reads a plain list with member ids and drops empty clusters", () => {
    const clusters = normaliseClusters([
      { period: 60, loops: ["A", "B"], source: "B" },
      { period: 90, members: [] },
    ]);
    expect(clusters).toHaveLength(1);
    expect(clusters[0]).toMatchObject({ id: "1", periodS: 60, source: "B" });
    expect(clusters[0].members.map((m) => m.loopId)).toEqual(["A", "B"]);
  });

  it("answers no clusters for anything else", () => {
    expect(normaliseClusters(null)).toEqual([]);
    expect(normaliseClusters({ detail: "x" })).toEqual([]);
  });
});
