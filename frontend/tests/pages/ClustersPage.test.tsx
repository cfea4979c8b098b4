// The clusters page against a fake gateway: each member's unit, period, strength and why it
// belongs, the likely source and its reason.
import { screen, within } from "@testing-library/react";

import { ClustersPage } from "../../src/pages/ClustersPage";
import { fakeGateway } from "../fakeGateway";
import { renderPage } from "../renderApp";

const ANSWER = {
  start: "2026-01-10T09:00:00Z",
  end: "2026-01-10T11:00:00Z",
  loops_analysed: 12,
  oscillating_loops: 6,
  basis: "raw",
  clusters: [
    {
      period_s: 40.6,
      likely_source: "FIC208041",
      source_reason: "its valve is sticky (stiction verdict)",
      source_evidence: { stiction_verdict: "stiction", stiction_index: 0.8 },
      members: [
        {
          loop_id: "FIC208041",
          role: "source",
          unit: "U209 Distillation",
          area: "Separation",
          period_s: 40.6,
          amplitude_pct_of_span: 12.5,
          power_share: 0.62,
          coherence_with_source: null,
          ngi: 0.021,
          nli: 0.134,
          why: "likely source of the cluster's oscillation",
        },
        {
          loop_id: "LIC208050",
          role: "member",
          unit: "U209 Distillation",
          area: "Separation",
          period_s: 40.1,
          amplitude_pct_of_span: 3.2,
          power_share: 0.41,
          coherence_with_source: 0.96,
          lag_behind_source_s: 10.1,
          ngi: -0.002,
          nli: 0.05,
          granger_from_source: 0.31,
          why: "coherence 0.96 with FIC208041; driven by it (Granger 0.31 from it, 0.01 back)",
        },
      ],
    },
  ],
};

describe("ClustersPage", () => {
  it("shows each member's unit, period, strength and why it belongs", async () => {
    const { api } = fakeGateway({ "GET /oscillation-clusters": () => ANSWER });
    renderPage(<ClustersPage />, { api, path: "/clusters", at: "/clusters" });
    expect(await screen.findByRole("heading", { name: /Cluster 1: 2 loops/ })).toBeInTheDocument();
    const table = screen.getByRole("table");
    const headers = within(table).getAllByRole("columnheader").map((cell) => cell.textContent);
    expect(headers).toEqual([
      "Loop",
      "Unit",
      "Period",
      "Strength",
      "Coherence with source",
      "Cycle vs source",
      "Non-linearity",
      "Why it belongs",
      "Details",
    ]);
    const [source, member] = within(table).getAllByRole("row").slice(1);
    expect(within(source).getByText("likely source")).toBeInTheDocument();
    expect(within(source).getByText("its valve is sticky (stiction verdict)")).toBeInTheDocument();
    expect(within(member).getByText("U209 Distillation · Separation")).toBeInTheDocument();
    expect(within(member).getByText("±3.2 % of span, 41 % of its variance")).toBeInTheDocument();
    expect(within(member).getByText("0.96")).toBeInTheDocument();
    // its cycle against the source's, in seconds and degrees of its 40.1-s period
    expect(within(member).getByText("10 s behind (91°)")).toBeInTheDocument();
    // the bicoherence: the source's signal is non-linear, the member's is not
    expect(within(source).getByText("non-linear (NGI 0.021, NLI 0.134)")).toBeInTheDocument();
    expect(within(member).getByText("linear (NGI -0.002, NLI 0.050)")).toBeInTheDocument();
    expect(within(member).getByText(/driven by it \(Granger 0.31 from it/)).toBeInTheDocument();
    // fields without a column of their own stay visible as details
    expect(within(member).getAllByRole("cell").at(-1)).toHaveTextContent(/0\.31/);
  });
});
