// Inbox, unread count in the navigation and the alert rules page, over a fake gateway.
import { act, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";

import type { AlertRule, InboxEntry } from "../../src/api/alerts";
import { INBOX_CHANGED } from "../../src/api/alerts";
import { InboxNavLink } from "../../src/components/InboxNavLink";
import { AlertRulesPage, EMPTY_RULE, ruleFieldsOf } from "../../src/pages/alerts/AlertRulesPage";
import { InboxPage } from "../../src/pages/alerts/InboxPage";
import { fakeGateway, json } from "../fakeGateway";
import { renderPage } from "../renderApp";

const ENGINEER = ["viewer", "engineer"] as const;

function entry(id: number, read: boolean): InboxEntry {
  return {
    id,
    event_id: id,
    rule_id: 1,
    loop_id: `FIC-10${id}`,
    kind: "opened",
    title: `opened: FIC-10${id}: health 30.0 below 60 (Unit health)`,
    created_at: "2026-03-04T06:02:00Z",
    read_at: read ? "2026-03-04T07:00:00Z" : null,
  };
}

function inboxGateway() {
  const entries = [entry(1, false), entry(2, false), entry(3, true)];
  const unread = () => entries.filter((e) => !e.read_at).length;
  return fakeGateway({
    "GET /inbox": (request) => ({
      items: request.query.get("unread") === "true" ? entries.filter((e) => !e.read_at) : entries,
      unread: unread(),
    }),
    "GET /inbox/unread-count": () => ({ unread: unread() }),
    "POST /inbox/1/read": () => {
      entries[0].read_at = "2026-03-04T08:00:00Z";
      return { marked: 1, unread: unread() };
    },
    "POST /inbox/read-all": () => {
      for (const e of entries) e.read_at ??= "2026-03-04T08:00:00Z";
      return { marked: 1, unread: 0 };
    },
  });
}

describe("inbox", () => {
  it("lists the notifications with the unread ones marked and a link to the loop", async () => {
    const { api } = inboxGateway();
    renderPage(<InboxPage />, { api, path: "/notifications", at: "/notifications" });
    expect(await screen.findByText("2 unread notifications")).toBeInTheDocument();
    const items = screen.getAllByRole("listitem");
    expect(items).toHaveLength(3);
    expect(items[0]).toHaveClass("unread");
    expect(items[2]).not.toHaveClass("unread");
    expect(within(items[0]).getByRole("link", { name: "Open loop FIC-101" })).toHaveAttribute("href", "/fleet/loops/FIC-101");
    expect(within(items[2]).queryByRole("button")).toBeNull();
  });

  it("marks one read, tells the navigation, and shows only unread on request", async () => {
    const { api, requests } = inboxGateway();
    const changed = vi.fn();
    window.addEventListener(INBOX_CHANGED, changed);
    renderPage(<InboxPage />, { api, path: "/notifications", at: "/notifications" });
    await userEvent.click(await screen.findByRole("button", { name: /Mark read: opened: FIC-101/ }));
    expect(await screen.findByText("1 unread notification")).toBeInTheDocument();
    expect(requests.some((r) => r.method === "POST" && r.path === "/inbox/1/read")).toBe(true);
    expect(changed).toHaveBeenCalled();
    await userEvent.click(screen.getByLabelText("Unread only"));
    await screen.findByText("1 unread notification");
    expect(await screen.findAllByRole("listitem")).toHaveLength(1);
    await userEvent.click(screen.getByRole("button", { name: "Mark all read" }));
    expect(await screen.findByText("No notifications.")).toBeInTheDocument();
    window.removeEventListener(INBOX_CHANGED, changed);
  });

  it("shows the unread count in the navigation and reloads it when the inbox changes", async () => {
    const { api } = inboxGateway();
    renderPage(<InboxNavLink />, { api, path: "*", at: "/fleet" });
    const link = await screen.findByRole("link", { name: "Inbox, 2 unread" });
    expect(link).toHaveAttribute("href", "/notifications");
    expect(link).toHaveTextContent("2");
    await api.http.post("/inbox/read-all", {});
    act(() => {
      window.dispatchEvent(new Event(INBOX_CHANGED));
    });
    expect(await screen.findByRole("link", { name: "Inbox" })).not.toHaveTextContent(/\d/);
  });
});

const RULE: AlertRule = {
  id: 7,
  name: "Unit 100 health",
  scope: "unit",
  scope_value: "U100",
  condition: "health_below",
  threshold: 60,
  for_s: 0,
  categories: [],
  statuses: [],
  services: [],
  renotify_s: 3600,
  channels: ["inbox", "email"],
  recipients: ["engineer"],
  emails: ["ops@plant.example"],
  webhook_url: null,
  quiet_start: null,
  quiet_end: null,
  quiet_timezone: null,
  enabled: true,
  created_by: "engineer",
  created_at: null,
  updated_by: null,
  updated_at: null,
};

describe("alert rules", () => {
  it("turns the form into the gateway's fields (minutes to seconds, lists, you by default)", () => {
    const fields = ruleFieldsOf(
      { ...EMPTY_RULE, name: " Hot ", scope: "area", scopeValue: "B", forMin: "30", renotifyMin: "60", emails: "a@x, b@x" },
      "engineer",
    );
    expect(fields).toMatchObject({ name: "Hot", scope_value: "B", threshold: 60, for_s: 1800, renotify_s: 3600, recipients: ["engineer"], emails: ["a@x", "b@x"] });
    expect(ruleFieldsOf({ ...EMPTY_RULE, scopeValue: "ignored" }, "me").scope_value).toBeNull();
  });

  it("lists the rules read-only for a viewer", async () => {
    const { api } = fakeGateway({ "GET /alerts/rules": () => [RULE] });
    renderPage(<AlertRulesPage />, { api, path: "/alert-rules", at: "/alert-rules" });
    const row = await screen.findByRole("row", { name: /Unit 100 health/ });
    expect(row).toHaveTextContent("unit U100");
    expect(row).toHaveTextContent("Health below a level (60)");
    expect(screen.queryByRole("button", { name: /Delete/ })).toBeNull();
    expect(screen.queryByRole("form", { name: "New rule" })).toBeNull();
  });

  it("creates a rule and shows the gateway's field errors", async () => {
    let created = false;
    const { api, requests } = fakeGateway({
      "GET /alerts/rules": () => (created ? [RULE] : []),
      "POST /alerts/rules": (request) => {
        const body = request.body as { scope_value: string | null };
        if (body.scope_value === null)
          return json(
            {
              title: "Invalid parameter",
              status: 422,
              detail: "scope_value: required for scope 'unit'",
              errors: [{ parameter: "scope_value", location: "body", message: "required for scope 'unit'" }],
            },
            422,
          );
        created = true;
        return json(RULE, 201);
      },
    });
    renderPage(<AlertRulesPage />, { api, roles: [...ENGINEER], path: "/alert-rules", at: "/alert-rules" });
    await screen.findByText("No alert rules yet.");
    await userEvent.type(screen.getByLabelText("Name"), "Unit 100 health");
    await userEvent.selectOptions(screen.getByLabelText("Scope"), "unit");
    await userEvent.click(screen.getByRole("button", { name: "Create rule" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Scope_value: required for scope 'unit'.");
    expect(screen.getByText("required for scope 'unit'")).toBeInTheDocument();
    await userEvent.type(screen.getByLabelText("Unit"), "U100");
    await userEvent.click(screen.getByRole("button", { name: "Create rule" }));
    expect(await screen.findByRole("row", { name: /Unit 100 health/ })).toBeInTheDocument();
    const sent = requests.filter((r) => r.method === "POST").at(-1)!.body;
    expect(sent).toMatchObject({ name: "Unit 100 health", scope: "unit", scope_value: "U100", condition: "health_below", threshold: 60, recipients: ["engineer"] });
  });
});
