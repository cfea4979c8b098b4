// The configuration editor: engineers change settings (only the changed ones are sent, the
// gateway's 422 lands on the field), viewers see them read-only.
import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";

import { LoopConfigPage } from "../../src/pages/loop/LoopConfigPage";
import { fakeGateway, json } from "../fakeGateway";
import { renderPage } from "../renderApp";

const CONFIG = {
  loop_id: "FIC-101",
  is_default: true,
  loop_type: "other",
  criticality: 3,
  normal_modes: null,
  op_lo: 0,
  op_hi: 100,
  sat_margin: null,
  pv_lo: null,
  pv_hi: null,
  deadband: null,
  dead_time_s: null,
  apc_enabled: false,
  apc_modes: null,
  kpi_window_min: 15,
  updated_at: null,
  updated_by: null,
};

function gateway(put = (body: Record<string, unknown>) => json({ ...CONFIG, ...body, is_default: false, updated_by: "engineer", updated_at: "2026-01-10T12:00:00Z" }) as unknown) {
  return fakeGateway({
    "GET /loops/FIC-101/config": () => CONFIG,
    "PUT /loops/FIC-101/config": (request) => put(request.body as Record<string, unknown>),
  });
}

describe("LoopConfigPage", () => {
  it("lets an engineer change a setting and sends only that setting", async () => {
    const { api, requests } = gateway();
    renderPage(<LoopConfigPage />, { api, roles: ["viewer", "engineer"], path: "/fleet/loops/:loopId/config", at: "/fleet/loops/FIC-101/config" });
    const criticality = await screen.findByLabelText("Criticality");
    await userEvent.selectOptions(criticality, "5");
    await userEvent.type(screen.getByLabelText("Deadband"), "0.5");
    await userEvent.click(screen.getByRole("button", { name: "Save configuration" }));
    expect(await screen.findByRole("status")).toHaveTextContent("Configuration saved");
    const put = requests.find((request) => request.method === "PUT")!;
    expect(put.body).toEqual({ criticality: 5, deadband: 0.5 });
    expect(screen.getByText(/Last changed .* by engineer/)).toBeInTheDocument();
  });

  it("shows invalid input next to the field and sends nothing", async () => {
    const { api, requests } = gateway();
    renderPage(<LoopConfigPage />, { api, roles: ["engineer"], path: "/fleet/loops/:loopId/config", at: "/fleet/loops/FIC-101/config" });
    const high = await screen.findByLabelText("OP high limit (%)");
    await userEvent.clear(high);
    await userEvent.type(high, "-5");
    await userEvent.click(screen.getByRole("button", { name: "Save configuration" }));
    expect(high).toHaveAttribute("aria-invalid", "true");
    expect(high).toHaveAccessibleDescription(/greater than the OP low limit/);
    expect(requests.some((request) => request.method === "PUT")).toBe(false);
  });

  it("puts the gateway's parameter errors on the fields", async () => {
    const { api } = gateway(() => json({ status: 422, detail: "dead_time_s: too large", errors: [{ parameter: "dead_time_s", location: "body", message: "must be at most 86400" }] }, 422));
    renderPage(<LoopConfigPage />, { api, roles: ["engineer"], path: "/fleet/loops/:loopId/config", at: "/fleet/loops/FIC-101/config" });
    await userEvent.type(await screen.findByLabelText("Dead time (s)"), "60");
    await userEvent.click(screen.getByRole("button", { name: "Save configuration" }));
    await waitFor(() => expect(screen.getByLabelText("Dead time (s)")).toHaveAccessibleDescription(/must be at most 86400/));
    expect(screen.getByRole("alert")).toHaveTextContent("Not saved");
  });

  it("is read-only for a viewer", async () => {
    const { api } = gateway();
    renderPage(<LoopConfigPage />, { api, roles: ["viewer"], path: "/fleet/loops/:loopId/config", at: "/fleet/loops/FIC-101/config" });
    expect(await screen.findByRole("note")).toHaveTextContent("read-only");
    expect(screen.getByLabelText("Criticality")).toBeDisabled();
    expect(screen.queryByRole("button", { name: "Save configuration" })).not.toBeInTheDocument();
  });
});
