// Role-aware parts: loops admin for admins only, "Diagnose" for engineers, the navigation.
import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";

import { Layout } from "../../src/components/Layout";
import { LoopsAdminPage } from "../../src/pages/LoopsAdminPage";
import { DiagnosisPanel } from "../../src/pages/loop/DiagnosisPanel";
import { fakeGateway, json } from "../fakeGateway";
import { renderPage } from "../renderApp";

const FINDING = {
  loop_id: "TIC-205",
  window_start: "2026-01-10T10:00:00Z",
  window_end: "2026-01-10T11:00:00Z",
  category: "oscillation",
  severity: 0.6,
  confidence: 0.9,
  evidence: { period_s: 164 },
  recommendation: "Find the source of the oscillation.",
  trigger: "scheduled",
  created_at: null,
};

describe("role-aware UI", () => {
  it("hides the loops admin from engineers and refuses the page", async () => {
    const { api } = fakeGateway({ "GET /loops": () => ({ items: [], total: 0, offset: 0, limit: 25 }) });
    renderPage(
      <Layout>
        <LoopsAdminPage />
      </Layout>,
      { api, roles: ["viewer", "engineer"], path: "/admin/loops", at: "/admin/loops" },
    );
    expect(screen.queryByRole("link", { name: "Loops admin" })).not.toBeInTheDocument();
    expect(screen.getByRole("alert")).toHaveTextContent("needs the admin role");
  });

  it("lets an admin register a loop", async () => {
    const created: unknown[] = [];
    const { api } = fakeGateway({
      "GET /loops": () => ({ items: [], total: 0, offset: 0, limit: 25 }),
      "POST /loops": (request) => {
        created.push(request.body);
        return json({}, 201);
      },
    });
    renderPage(<LoopsAdminPage />, { api, roles: ["viewer", "engineer", "admin"], path: "/admin/loops", at: "/admin/loops" });
    await userEvent.click(await screen.findByRole("button", { name: "+ New loop" }));
    await userEvent.type(screen.getByLabelText("Loop id (tag)"), "FIC-900");
    await userEvent.type(screen.getByLabelText("Unit"), "U900");
    await userEvent.click(screen.getByRole("button", { name: "Create loop" }));
    expect(await screen.findByRole("status")).toHaveTextContent("Loop FIC-900 created.");
    expect(created).toEqual([{ loop_id: "FIC-900", unit: "U900", area: null, engineering_units: null }]);
  });

  it("shows findings to everyone and the diagnose button to engineers only", async () => {
    const findings = () => ({ loop_id: "TIC-205", count: 1, items: [FINDING] });
    const viewer = fakeGateway({ "GET /loops/TIC-205/diagnostics": findings });
    const { unmount } = renderPage(<DiagnosisPanel loopId="TIC-205" />, { api: viewer.api, roles: ["viewer"], path: "/x", at: "/x" });
    expect(await screen.findByText("Find the source of the oscillation.")).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: /Diagnose/ })).not.toBeInTheDocument();
    unmount();

    const engineer = fakeGateway({
      "GET /loops/TIC-205/diagnostics": findings,
      "POST /loops/TIC-205/diagnostics/run": () => json({ detail: "diagnostics service is not reachable" }, 503, { "retry-after": "5" }),
    });
    renderPage(<DiagnosisPanel loopId="TIC-205" />, { api: engineer.api, roles: ["engineer"], path: "/x", at: "/x" });
    await userEvent.click(await screen.findByRole("button", { name: "Diagnose the last hour" }));
    await waitFor(() => expect(screen.getByRole("alert")).toHaveTextContent("Diagnostics service is not reachable. Try again in 5 s."));
  });
});
