// Uploading historian exports on the loops admin page: the files, tag map and options go to the
// gateway as one multipart form; the report or the refused rows (file, line, column) are shown.
// Where each loop's data comes from is shown on the loop page, the fleet table and the admin list.
import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";

import type { ExportImport, Loop } from "../../src/api/types";
import { dataSourceText } from "../../src/lib/dataSource";
import { problemText } from "../../src/pages/ExportUploadForm";
import { FleetPage } from "../../src/pages/FleetPage";
import { LoopsAdminPage } from "../../src/pages/LoopsAdminPage";
import { LoopDetailPage } from "../../src/pages/loop/LoopDetailPage";
import { fakeGateway, json } from "../fakeGateway";
import { renderPage } from "../renderApp";

const ADMIN = ["viewer", "engineer", "admin"] as const;
const WIDE = "timestamp,FIC1.PV\n2024-03-01 10:00:00,1.5\n";
const MAP = "loop_id,pv_tag\nFIC1,FIC1.PV\n";

const REPORT: ExportImport = {
  dry_run: false,
  files: [{ file: "a.csv", layout: "wide CSV", rows: 2, values: 2, bad_quality: 1, bad_rows: 0, unmapped_tags: ["OTHER"], missing_tags: [] }],
  loops: [{ loop_id: "FIC1", samples: 2, start: "2024-03-01T10:00:00Z", end: "2024-03-01T10:00:01Z" }],
  values: 2,
  samples_stored: 2,
  values_stored: 2,
  bad_quality: 1,
  bad_rows: 0,
  start: "2024-03-01T10:00:00Z",
  end: "2024-03-01T10:00:01Z",
  seconds: 0.1,
  skipped: [],
  catalogue_loops: 1,
  next_steps: ["python -m clpm_aggregation backfill --hours 9000 --loop FIC1"],
};

function loop(loopId: string, source: string | null, detail: string | null): Loop {
  return {
    loop_id: loopId,
    name: loopId,
    description: "",
    unit: "U1",
    area: "A1",
    engineering_units: "m3/h",
    active: true,
    created_at: null,
    updated_at: null,
    status: "good",
    health_score: 90,
    main_problem: null,
    kpi_window_end: null,
    criticality: 3,
    bad_actor_score: 30,
    data_source: source,
    data_source_detail: detail,
  };
}

const LOOPS = [loop("FIC1", "import", "a.csv, b.csv"), loop("TIC2", "opcua", "opc.tcp://plc:4840: ns=2;s=TIC2.PV"), loop("SIM3", "simulated", null)];

function adminGateway(answer: () => unknown) {
  return fakeGateway({
    "GET /loops": () => ({ items: LOOPS, total: LOOPS.length, offset: 0, limit: 25 }),
    "POST /loops/import": answer,
  });
}

async function chooseFiles() {
  await userEvent.upload(await screen.findByLabelText("Export files"), [new File([WIDE], "a.csv", { type: "text/csv" }), new File([WIDE], "b.csv", { type: "text/csv" })]);
  await userEvent.upload(screen.getByLabelText("Tag map"), new File([MAP], "tags.csv", { type: "text/csv" }));
}

describe("data source text", () => {
  it("names simulated, imported files and OPC UA endpoints", () => {
    expect(dataSourceText(LOOPS[0])).toBe("Imported files: a.csv, b.csv");
    expect(dataSourceText(loop("X", "import", "one.csv"))).toBe("Imported file: one.csv");
    expect(dataSourceText(LOOPS[1])).toBe("OPC UA: opc.tcp://plc:4840: ns=2;s=TIC2.PV");
    expect(dataSourceText(LOOPS[2])).toBe("Simulated");
    expect(dataSourceText(loop("Y", null, null))).toBe("Unknown");
  });
});

describe("export upload", () => {
  it("sends the exports, the tag map and the options as one form and shows the report", async () => {
    const { api, requests } = adminGateway(() => REPORT);
    renderPage(<LoopsAdminPage />, { api, roles: [...ADMIN], path: "/admin/loops", at: "/admin/loops" });
    await chooseFiles();
    await userEvent.type(screen.getByLabelText("Timezone of timestamps without one"), "Europe/Berlin");
    await userEvent.click(screen.getByRole("button", { name: "Upload exports" }));
    const report = await screen.findByLabelText("Import report");
    expect(report).toHaveTextContent("Imported 2 samples of 1 loops; 1 loops in the catalogue.");
    expect(report).toHaveTextContent("1 bad-quality values not stored, 0 rows skipped");
    expect(within(report).getByRole("row", { name: /FIC1/ })).toHaveTextContent("FIC12");
    expect(report).toHaveTextContent("Not in the tag map (ignored): a.csv: OTHER");
    const sent = requests.find((request) => request.path === "/loops/import")!;
    expect(sent.method).toBe("POST");
    const form = sent.body as FormData;
    expect(form).toBeInstanceOf(FormData);
    expect((form.getAll("exports") as File[]).map((file) => file.name)).toEqual(["a.csv", "b.csv"]);
    expect((form.get("tag_map") as File).name).toBe("tags.csv");
    expect(form.get("timezone")).toBe("Europe/Berlin");
    expect(form.get("dry_run")).toBe("false");
    expect(sent.contentType).toBeUndefined(); // fetch sets multipart/form-data with its boundary
  });

  it("sends a dry run on request and lists the rows the gateway refused", async () => {
    const { api, requests } = adminGateway(() =>
      json(
        {
          title: "Invalid upload",
          status: 422,
          detail: "1 problems; nothing was imported (fix them, or set skip_bad_rows)",
          errors: [{ parameter: "b.csv: line 3: FIC1.PV", location: "body", message: "not a number: 'one'" }],
          problems: [{ file: "b.csv", line: 3, column: "FIC1.PV", reason: "not a number: 'one'" }],
          problem_count: 1,
        },
        422,
      ),
    );
    renderPage(<LoopsAdminPage />, { api, roles: [...ADMIN], path: "/admin/loops", at: "/admin/loops" });
    await chooseFiles();
    await userEvent.click(screen.getByLabelText("Dry run (validate only)"));
    await userEvent.click(screen.getByRole("button", { name: "Upload exports" }));
    const problems = await screen.findByRole("list", { name: "Problems" });
    expect(within(problems).getAllByRole("listitem").map((item) => item.textContent)).toEqual(["b.csv: line 3: FIC1.PV: not a number: 'one'"]);
    expect(screen.getByRole("alert")).toHaveTextContent("nothing was imported");
    expect(screen.queryByLabelText("Import report")).toBeNull();
    const form = requests.find((request) => request.path === "/loops/import")!.body as FormData;
    expect(form.get("dry_run")).toBe("true");
  });

  it("asks for the files before sending anything", async () => {
    const { api, requests } = adminGateway(() => REPORT);
    renderPage(<LoopsAdminPage />, { api, roles: [...ADMIN], path: "/admin/loops", at: "/admin/loops" });
    await userEvent.click(await screen.findByRole("button", { name: "Upload exports" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Choose at least one export file and the tag map first.");
    expect(requests.some((request) => request.path === "/loops/import")).toBe(false);
  });

  it("writes a problem as file, line, column and reason", () => {
    expect(problemText({ file: "x.parquet", line: null, column: "file", reason: "not Parquet" })).toBe("x.parquet: line ?: file: not Parquet");
  });

  it("lists each loop's data source on the admin page", async () => {
    const { api } = adminGateway(() => REPORT);
    renderPage(<LoopsAdminPage />, { api, roles: [...ADMIN], path: "/admin/loops", at: "/admin/loops" });
    const table = await screen.findByRole("table");
    expect(within(table).getByRole("row", { name: /TIC2/ })).toHaveTextContent("OPC UA: opc.tcp://plc:4840: ns=2;s=TIC2.PV");
  });
});

describe("data source on the loop page and the fleet table", () => {
  it("shows the imported files in the loop page header", async () => {
    const { api } = fakeGateway({
      "GET /loops/FIC1": () => LOOPS[0],
      "GET /data/range": () => ({ loop_id: "FIC1", start: null, end: null, raw: null, agg_1m: null, agg_1h: null }),
      "GET /loops/FIC1/kpis/latest": () => ({ loop_id: "FIC1", window_start: null, window_end: null, reasons: {} }),
      "GET /loops/FIC1/config": () => ({ loop_id: "FIC1", loop_type: "flow", criticality: 3, normal_modes: null, pv_lo: null, pv_hi: null }),
      "GET /loops/FIC1/assessment": () => json({ title: "Not Found", status: 404, detail: "none" }, 404),
    });
    renderPage(<LoopDetailPage />, { api, path: "/fleet/loops/:loopId", at: "/fleet/loops/FIC1?period=window" });
    expect(await screen.findByTestId("data-source")).toHaveTextContent("Data source: Imported files: a.csv, b.csv");
  });

  it("shows the data source column in the fleet table on request", async () => {
    const { api } = fakeGateway({
      "GET /fleet/summary": () => ({ loops: 3, health_score: 90, status_counts: { good: 3, fair: 0, poor: 0, offline: 0 }, health_histogram: [], bad_actors: [], units: [] }),
      "GET /loops": () => ({ items: LOOPS, total: LOOPS.length, offset: 0, limit: 25 }),
    });
    renderPage(<FleetPage />, { api, path: "/fleet", at: "/fleet" });
    const table = await screen.findByRole("table", { name: /bad-actor score/ });
    expect(within(table).queryByRole("columnheader", { name: "Data source" })).toBeNull();
    await userEvent.click(screen.getByLabelText("Data source column"));
    expect(within(table).getByRole("columnheader", { name: "Data source" })).toBeInTheDocument();
    expect(screen.getByTestId("source-FIC1")).toHaveTextContent("Imported files: a.csv, b.csv");
    expect(screen.getByTestId("source-TIC2")).toHaveTextContent("OPC UA: opc.tcp://plc:4840: ns=2;s=TIC2.PV");
    expect(screen.getByTestId("source-SIM3")).toHaveTextContent("Simulated");
  });
});
