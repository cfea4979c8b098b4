// The work process in the web front: a loop's history panel (acknowledge, note, state
// changes; read-only for viewers), "My items", the fleet table's work column and the audit page.
import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";

import type { AuditEntry, WorkItem } from "../../src/api/workItems";
import { WorkCell } from "../../src/components/WorkCell";
import { AuditPage, diffText } from "../../src/pages/AuditPage";
import { MyItemsPage } from "../../src/pages/MyItemsPage";
import { HistoryPanel, untilOf } from "../../src/pages/loop/HistoryPanel";
import { fakeGateway } from "../fakeGateway";
import { renderPage } from "../renderApp";

const ENGINEER = ["viewer", "engineer"] as const;

function item(fields: Partial<WorkItem>): WorkItem {
  return {
    id: 1,
    loop_id: "FIC-101",
    category: null,
    kind: "annotation",
    text: "",
    assignee: null,
    due_date: null,
    state: "open",
    work_order: null,
    acknowledged_until: null,
    acknowledged_state: null,
    active: false,
    created_by: "engineer",
    created_at: "2025-01-10T10:00:00Z",
    updated_by: "engineer",
    updated_at: "2025-01-10T10:00:00Z",
    ...fields,
  };
}

describe("loop history panel", () => {
  it("acknowledges the loop until a chosen day and shows it in the history", async () => {
    const stored: WorkItem[] = [item({ id: 7, text: "valve repacked" })];
    const { api, requests } = fakeGateway({
      "GET /loops/FIC-101/work-items": () => ({ items: stored, total: stored.length, offset: 0, limit: 200 }),
      "POST /loops/FIC-101/acknowledge": () => {
        const ack = item({ id: 8, kind: "acknowledgement", acknowledged_until: "2030-01-02T22:59:59Z", active: true, text: "known" });
        stored.unshift(ack);
        return { status: 201, body: ack, headers: { "content-type": "application/json" } };
      },
    });
    renderPage(<HistoryPanel loopId="FIC-101" />, { api, roles: [...ENGINEER], path: "/l", at: "/l" });
    expect(await screen.findByText("valve repacked")).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Acknowledge" }));
    await userEvent.type(screen.getByLabelText("Until (empty: until it changes)"), "2030-01-02");
    await userEvent.type(screen.getByLabelText("Comment"), "known");
    await userEvent.click(screen.getByRole("button", { name: "Save" }));
    expect(await screen.findByText("Acknowledged loop until 2030-01-02")).toBeInTheDocument();
    const sent = requests.find((request) => request.method === "POST")!;
    expect(sent.body).toEqual({ text: "known", until: untilOf("2030-01-02"), category: null });
  });

  it("acknowledges one of the loop's latest findings until it changes", async () => {
    const { api, requests } = fakeGateway({
      "GET /loops/TIC-205/work-items": () => ({ items: [], total: 0, offset: 0, limit: 200 }),
      "GET /loops/TIC-205/diagnostics": () => ({ loop_id: "TIC-205", count: 1, items: [{ category: "stiction", severity: 0.8 }] }),
      "POST /loops/TIC-205/acknowledge": () => ({
        status: 201,
        body: item({ loop_id: "TIC-205", kind: "acknowledgement", category: "stiction", active: true }),
        headers: { "content-type": "application/json" },
      }),
    });
    renderPage(<HistoryPanel loopId="TIC-205" />, { api, roles: [...ENGINEER], path: "/l", at: "/l" });
    await userEvent.click(await screen.findByRole("button", { name: "Acknowledge" }));
    await userEvent.selectOptions(screen.getByLabelText("What"), await screen.findByRole("option", { name: /Finding: / }));
    await userEvent.click(screen.getByRole("button", { name: "Save" }));
    await screen.findByRole("button", { name: "Acknowledge" });
    const sent = requests.find((request) => request.method === "POST")!;
    expect(sent.body).toEqual({ text: "", until: null, category: "stiction" });
  });

  it("changes an item's state through PATCH", async () => {
    const { api, requests } = fakeGateway({
      "GET /loops/FIC-101/work-items": () => ({ items: [item({ id: 3, kind: "assignment", assignee: "bob" })], total: 1, offset: 0, limit: 200 }),
      "PATCH /work-items/3": () => item({ id: 3, state: "done" }),
    });
    renderPage(<HistoryPanel loopId="FIC-101" />, { api, roles: [...ENGINEER], path: "/l", at: "/l" });
    await userEvent.selectOptions(await screen.findByLabelText("State"), "done");
    await screen.findAllByText("Assigned loop to bob");
    expect(requests.find((request) => request.method === "PATCH")?.body).toEqual({ state: "done" });
  });

  it("is read-only for viewers", async () => {
    const { api } = fakeGateway({
      "GET /loops/FIC-101/work-items": () => ({ items: [item({ text: "note" })], total: 1, offset: 0, limit: 200 }),
    });
    renderPage(<HistoryPanel loopId="FIC-101" />, { api, roles: ["viewer"], path: "/l", at: "/l" });
    expect(await screen.findByText("note")).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Acknowledge" })).toBeNull();
    expect(screen.queryByLabelText("State")).toBeNull();
  });

  it("leaves the date out of an acknowledgement until the loop changes", () => {
    expect(untilOf("")).toBeNull();
    expect(new Date(untilOf("2030-01-02")!).getDate()).toBe(2);
  });
});

describe("my items", () => {
  it("lists the caller's open items and asks for closed ones too on request", async () => {
    const { api, requests } = fakeGateway({
      "GET /work-items/mine": () => ({
        items: [item({ id: 4, kind: "assignment", assignee: "engineer", due_date: "2025-02-01", work_order: "WO-1" })],
        total: 1,
        offset: 0,
        limit: 500,
      }),
    });
    renderPage(<MyItemsPage />, { api, roles: [...ENGINEER], path: "/my-items", at: "/my-items" });
    const row = (await screen.findByText("FIC-101")).closest("tr")!;
    expect(within(row).getByText("WO-1")).toBeInTheDocument();
    expect(within(row).getByText("2025-02-01")).toBeInTheDocument();
    expect(requests[0].query.get("open")).toBe("true");
    await userEvent.click(screen.getByLabelText("Open and in progress only"));
    await screen.findByText("FIC-101");
    expect(requests.at(-1)?.query.get("open")).toBe("false");
  });
});

describe("fleet work column", () => {
  it("shows acknowledgements and open items, and a dash for a loop with neither", () => {
    const { rerender } = render(
      <WorkCell entry={{ loop_id: "A", open_items: 2, acknowledged: true, acknowledged_categories: ["stiction"], acknowledged_until: null }} />,
    );
    expect(screen.getByText("Acknowledged")).toBeInTheDocument();
    expect(screen.getByText("Ack: stiction")).toBeInTheDocument();
    expect(screen.getByText("2 open items")).toBeInTheDocument();
    rerender(<WorkCell entry={undefined} />);
    expect(screen.getByText("–")).toBeInTheDocument();
  });
});

describe("audit page", () => {
  const entry: AuditEntry = {
    id: 11,
    at: "2025-01-10T10:00:00Z",
    actor: "admin",
    action: "update",
    entity: "loop",
    entity_id: "FIC-101",
    before: { name: "Feed", unit: "U1" },
    after: { name: "Feed flow", unit: "U1" },
  };

  it("names each changed field with its value before and after", () => {
    expect(diffText(entry)).toBe('name: "Feed" → "Feed flow"');
    expect(diffText({ ...entry, before: null })).toBe("created");
    expect(diffText({ ...entry, after: null })).toBe("removed");
  });

  it("sends the filters and shows who changed what", async () => {
    const { api, requests } = fakeGateway({
      "GET /audit": () => ({ items: [entry], total: 1, offset: 0, limit: 50 }),
    });
    renderPage(<AuditPage />, { api, roles: ["viewer", "engineer", "admin"], path: "/admin/audit", at: "/admin/audit" });
    const row = (await screen.findByText("loop FIC-101")).closest("tr")!;
    expect(within(row).getByText("admin")).toBeInTheDocument();
    expect(within(row).getByText('name: "Feed" → "Feed flow"')).toBeInTheDocument();
    await userEvent.type(screen.getByLabelText("Who"), "engineer");
    await userEvent.selectOptions(screen.getByLabelText("What"), "work_item");
    await userEvent.click(screen.getByRole("button", { name: "Apply" }));
    await screen.findByText("loop FIC-101");
    const last = requests.at(-1)!;
    expect(last.query.get("actor")).toBe("engineer");
    expect(last.query.get("entity")).toBe("work_item");
    expect(last.query.get("offset")).toBe("0");
    expect(last.query.has("entity_id")).toBe(false);
  });
});
