// Alert rules: the list for everyone; engineers and admins create, enable/disable and delete.

import { useState, type FormEvent } from "react";

import { alertsApi, type AlertChannel, type AlertCondition, type AlertRule, type AlertRuleFields, type AlertScope } from "../../api/alerts";
import { useApi } from "../../api/ApiProvider";
import { ApiError, describeError } from "../../api/client";
import { useAsync } from "../../api/useAsync";
import { useAuth } from "../../auth/AuthProvider";
import { AsyncView } from "../../components/AsyncView";

export const CONDITION_LABEL: Record<AlertCondition, string> = {
  health_below: "Health below a level",
  finding: "New finding",
  status_change: "Status change",
  stale_data: "Stale data / silent source",
  heartbeat_missing: "Worker heartbeat missing",
};

const list = (text: string) =>
  text
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);

export interface RuleDraft {
  name: string;
  scope: AlertScope;
  scopeValue: string;
  condition: AlertCondition;
  threshold: string;
  forMin: string;
  renotifyMin: string;
  categories: string;
  channels: AlertChannel[];
  recipients: string;
  emails: string;
  webhookUrl: string;
  quietStart: string;
  quietEnd: string;
  quietTimezone: string;
}

export const EMPTY_RULE: RuleDraft = {
  name: "",
  scope: "fleet",
  scopeValue: "",
  condition: "health_below",
  threshold: "60",
  forMin: "0",
  renotifyMin: "0",
  categories: "",
  channels: ["inbox"],
  recipients: "",
  emails: "",
  webhookUrl: "",
  quietStart: "",
  quietEnd: "",
  quietTimezone: "",
};

/** The body sent to the gateway: minutes to seconds, comma lists to arrays, empty to null. */
export function ruleFieldsOf(draft: RuleDraft, me: string): AlertRuleFields {
  const text = (value: string) => (value.trim() === "" ? null : value.trim());
  const number = (value: string) => (value.trim() === "" ? null : Number(value));
  return {
    name: draft.name.trim(),
    scope: draft.scope,
    scope_value: draft.scope === "fleet" ? null : text(draft.scopeValue),
    condition: draft.condition,
    threshold: number(draft.threshold),
    for_s: (number(draft.forMin) ?? 0) * 60,
    categories: draft.condition === "finding" ? list(draft.categories) : [],
    statuses: [],
    services: [],
    renotify_s: (number(draft.renotifyMin) ?? 0) * 60,
    channels: draft.channels,
    recipients: list(draft.recipients).length ? list(draft.recipients) : [me],
    emails: list(draft.emails),
    webhook_url: text(draft.webhookUrl),
    quiet_start: text(draft.quietStart),
    quiet_end: text(draft.quietEnd),
    quiet_timezone: text(draft.quietTimezone),
    enabled: true,
  };
}

function RuleForm({ onDone }: { onDone: () => void }) {
  const api = useApi();
  const auth = useAuth();
  const [draft, setDraft] = useState<RuleDraft>(EMPTY_RULE);
  const [error, setError] = useState<string | null>(null);
  const [fieldErrors, setFieldErrors] = useState<Record<string, string>>({});
  const field = (name: keyof RuleDraft, label: string, errorKey: string, extra: Record<string, unknown> = {}) => (
    <div className="field">
      <label htmlFor={`rule-${name}`}>{label}</label>
      <input
        id={`rule-${name}`}
        value={draft[name] as string}
        aria-invalid={!!fieldErrors[errorKey]}
        onChange={(event) => setDraft({ ...draft, [name]: event.target.value })}
        {...extra}
      />
      {fieldErrors[errorKey] && <span className="field-error">{fieldErrors[errorKey]}</span>}
    </div>
  );
  const toggle = (channel: AlertChannel) =>
    setDraft({ ...draft, channels: draft.channels.includes(channel) ? draft.channels.filter((c) => c !== channel) : [...draft.channels, channel] });
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    setFieldErrors({});
    try {
      await alertsApi.createRule(api, ruleFieldsOf(draft, auth.username ?? ""));
      setDraft(EMPTY_RULE);
      onDone();
    } catch (problem) {
      if (problem instanceof ApiError) setFieldErrors(problem.parameterErrors);
      setError(describeError(problem));
    }
  };
  return (
    <form onSubmit={(event) => void submit(event)} aria-labelledby="new-rule-title" className="card">
      <h2 id="new-rule-title">New rule</h2>
      {field("name", "Name", "name", { required: true })}
      <div className="field">
        <label htmlFor="rule-scope">Scope</label>
        <select id="rule-scope" value={draft.scope} onChange={(event) => setDraft({ ...draft, scope: event.target.value as AlertScope })}>
          <option value="fleet">Whole fleet</option>
          <option value="area">Area</option>
          <option value="unit">Unit</option>
          <option value="loop">Loop</option>
        </select>
      </div>
      {draft.scope !== "fleet" && field("scopeValue", `${draft.scope === "loop" ? "Loop id" : draft.scope === "unit" ? "Unit" : "Area"}`, "scope_value")}
      <div className="field">
        <label htmlFor="rule-condition">Condition</label>
        <select id="rule-condition" value={draft.condition} onChange={(event) => setDraft({ ...draft, condition: event.target.value as AlertCondition })}>
          {Object.entries(CONDITION_LABEL).map(([value, label]) => (
            <option key={value} value={value}>
              {label}
            </option>
          ))}
        </select>
      </div>
      {draft.condition !== "finding" && draft.condition !== "status_change" &&
        field("threshold", draft.condition === "health_below" ? "Health level (0-100)" : "Seconds without data", "threshold", { inputMode: "decimal" })}
      {draft.condition === "health_below" && field("forMin", "For at least (minutes)", "for_s", { inputMode: "numeric" })}
      {draft.condition === "finding" && field("categories", "Categories (comma separated, empty: any)", "categories")}
      {field("renotifyMin", "Remind every (minutes, 0: never)", "renotify_s", { inputMode: "numeric" })}
      <fieldset>
        <legend>Channels</legend>
        {(["inbox", "email", "webhook"] as AlertChannel[]).map((channel) => (
          <label key={channel}>
            <input type="checkbox" checked={draft.channels.includes(channel)} onChange={() => toggle(channel)} /> {channel}
          </label>
        ))}
      </fieldset>
      {field("recipients", "Inbox recipients (user names, comma separated; empty: you)", "recipients")}
      {draft.channels.includes("email") && field("emails", "E-mail addresses (comma separated)", "emails")}
      {draft.channels.includes("webhook") && field("webhookUrl", "Webhook URL", "webhook_url")}
      {field("quietStart", "Quiet from (HH:MM)", "quiet_start", { placeholder: "22:00" })}
      {field("quietEnd", "Quiet until (HH:MM)", "quiet_end", { placeholder: "06:00" })}
      {field("quietTimezone", "Time zone of the quiet hours", "quiet_timezone", { placeholder: "Europe/Berlin" })}
      {error && (
        <p className="state state-error" role="alert">
          {error}
        </p>
      )}
      <button type="submit">Create rule</button>
    </form>
  );
}

function scopeText(rule: AlertRule): string {
  return rule.scope === "fleet" ? "whole fleet" : `${rule.scope} ${rule.scope_value}`;
}

export function AlertRulesPage() {
  const api = useApi();
  const auth = useAuth();
  const canEdit = auth.can("engineer");
  const [error, setError] = useState<string | null>(null);
  const { state, reload } = useAsync((signal) => alertsApi.rules(api, signal), [api]);
  const act = async (action: () => Promise<unknown>) => {
    setError(null);
    try {
      await action();
      reload();
    } catch (problem) {
      setError(describeError(problem));
    }
  };
  return (
    <section aria-labelledby="rules-title">
      <h1 id="rules-title">Alert rules</h1>
      {error && (
        <p className="state state-error" role="alert">
          {error}
        </p>
      )}
      <AsyncView state={state} what="the alert rules" onRetry={reload} isEmpty={(rules) => rules.length === 0} empty="No alert rules yet.">
        {(rules) => (
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Scope</th>
                <th scope="col">Condition</th>
                <th scope="col">Channels</th>
                <th scope="col">State</th>
                {canEdit && <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {rules.map((rule) => (
                <tr key={rule.id}>
                  <th scope="row">{rule.name}</th>
                  <td>{scopeText(rule)}</td>
                  <td>
                    {CONDITION_LABEL[rule.condition]}
                    {rule.threshold !== null ? ` (${rule.threshold})` : ""}
                  </td>
                  <td>{rule.channels.join(", ")}</td>
                  <td>{rule.enabled ? "enabled" : "disabled"}</td>
                  {canEdit && (
                    <td>
                      <button type="button" className="secondary" onClick={() => void act(() => alertsApi.updateRule(api, rule.id, { ...rule, enabled: !rule.enabled }))}>
                        {rule.enabled ? "Disable" : "Enable"}
                        <span className="sr-only"> {rule.name}</span>
                      </button>{" "}
                      <button type="button" className="danger" onClick={() => void act(() => alertsApi.deleteRule(api, rule.id))}>
                        Delete<span className="sr-only"> {rule.name}</span>
                      </button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </AsyncView>
      {canEdit && <RuleForm onDone={reload} />}
    </section>
  );
}
