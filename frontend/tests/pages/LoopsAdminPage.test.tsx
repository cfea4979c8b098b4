// Importing a loop list on the loops admin page: the file's text goes to the gateway as CSV or
// JSON; the gateway's row errors are listed; a validation-only run says nothing was imported.
import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";

import { LoopsAdminPage, catalogueFormatOf } from "../../src/pages/LoopsAdminPage";
import { fakeGateway, json } from "../fakeGateway";
import { renderPage } from "../renderApp";

const ADMIN = ["viewer", "engineer", "admin"] as const;
const LIST = "loop_id,loop_type,pv_lo,pv_hi\nTIC-901,temperature,0,500\n";

function gateway(answer: () => unknown) {
  return fakeGateway({
    "GET /loops": () => ({ items: [], total: 0, offset: 0, limit: 25 }),
    "POST /loops/catalogue": answer,
  });
}

describe("loop list import", () => {
  it("tells CSV from JSON by the file name", () => {
    expect(catalogueFormatOf("plant.JSON")).toBe("json");
    expect(catalogueFormatOf("plant.csv")).toBe("csv");
    expect(catalogueFormatOf("plant.txt")).toBe("csv");
  });

  it("sends the CSV as it is and reports the loops imported", async () => {
    const { api, requests } = gateway(() => ({ loops: 1, dry_run: false, loop_ids: ["TIC-901"] }));
    renderPage(<LoopsAdminPage />, { api, roles: [...ADMIN], path: "/admin/loops", at: "/admin/loops" });
    await userEvent.upload(await screen.findByLabelText("Loop list file"), new File([LIST], "plant.csv", { type: "text/csv" }));
    await userEvent.click(screen.getByRole("button", { name: "Import loop list" }));
    expect(await screen.findByRole("status")).toHaveTextContent("1 loops imported from plant.csv.");
    const sent = requests.find((request) => request.path === "/loops/catalogue")!;
    expect(sent.body).toBe(LIST);
    expect(sent.contentType).toBe("text/csv");
    expect(sent.query.get("dry_run")).toBeNull();
  });

  it("validates only on request and lists the rows the gateway refused", async () => {
    const { api, requests } = gateway(() =>
      json(
        {
          title: "Invalid loop list",
          status: 422,
          detail: "1 invalid cells; nothing was imported",
          errors: [{ parameter: "row 2: pv_lo and pv_hi", location: "body", message: "give both limits of the PV range, or neither" }],
        },
        422,
      ),
    );
    renderPage(<LoopsAdminPage />, { api, roles: [...ADMIN], path: "/admin/loops", at: "/admin/loops" });
    await userEvent.upload(await screen.findByLabelText("Loop list file"), new File(['[{"loop_id": "TIC-901", "pv_lo": 0}]'], "plant.json"));
    await userEvent.click(screen.getByLabelText("Validate only"));
    await userEvent.click(screen.getByRole("button", { name: "Import loop list" }));
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("row 2: pv_lo and pv_hi: give both limits of the PV range, or neither");
    const sent = requests.find((request) => request.path === "/loops/catalogue")!;
    expect(sent.contentType).toBe("application/json");
    expect(sent.query.get("dry_run")).toBe("true");
  });
});
