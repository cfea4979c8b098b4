// Analysis settings of a loop: engineers edit and reset them, viewers read them.

import { useEffect, useState, type ChangeEvent, type FormEvent, type ReactNode } from "react";
import { Link, useParams } from "react-router-dom";

import { useApi } from "../../api/ApiProvider";
import { ApiError, describeError } from "../../api/client";
import type { LoopConfig } from "../../api/types";
import { useAsync } from "../../api/useAsync";
import { useAuth } from "../../auth/AuthProvider";
import { AsyncView } from "../../components/AsyncView";
import { changedSettings, formOf, LOOP_TYPES, validateConfigForm, type ConfigField, type ConfigForm } from "../../lib/configForm";
import { formatTime } from "../../lib/format";

interface FieldProps {
  name: ConfigField;
  label: string;
  hint?: string;
  error?: string;
  children: (props: { id: string; "aria-invalid": boolean; "aria-describedby"?: string }) => ReactNode;
}

function Field({ name, label, hint, error, children }: FieldProps) {
  const id = `config-${name}`;
  const described = [hint && `${id}-hint`, error && `${id}-error`].filter(Boolean).join(" ") || undefined;
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {children({ id, "aria-invalid": !!error, "aria-describedby": described })}
      {hint && (
        <span id={`${id}-hint`} className="hint">
          {hint}
        </span>
      )}
      {error && (
        <span id={`${id}-error`} className="field-error">
          {error}
        </span>
      )}
    </div>
  );
}

function ConfigEditor({ loopId, stored, onSaved }: { loopId: string; stored: LoopConfig; onSaved: (config: LoopConfig) => void }) {
  const api = useApi();
  const auth = useAuth();
  const editable = auth.can("engineer");
  const [form, setForm] = useState<ConfigForm>(() => formOf(stored));
  const [errors, setErrors] = useState<Partial<Record<ConfigField, string>>>({});
  const [saving, setSaving] = useState(false);
  const [message, setMessage] = useState<{ kind: "success" | "error"; text: string } | null>(null);

  useEffect(() => setForm(formOf(stored)), [stored]);

  const set = (name: ConfigField) => (event: ChangeEvent<HTMLInputElement | HTMLSelectElement>) => {
    const target = event.target as HTMLInputElement;
    setForm((previous) => ({ ...previous, [name]: target.type === "checkbox" ? target.checked : target.value }));
  };

  const save = async (event: FormEvent) => {
    event.preventDefault();
    setMessage(null);
    const { errors: found, values } = validateConfigForm(form);
    setErrors(found);
    if (!values) {
      setMessage({ kind: "error", text: "Please correct the marked fields." });
      return;
    }
    const change = changedSettings(stored, values);
    if (Object.keys(change).length === 0) {
      setMessage({ kind: "success", text: "Nothing changed." });
      return;
    }
    setSaving(true);
    try {
      const saved = await api.updateConfig(loopId, change);
      onSaved(saved);
      setMessage({ kind: "success", text: "Configuration saved. The next KPI window uses it." });
    } catch (failure) {
      if (failure instanceof ApiError && failure.status === 422) setErrors(failure.parameterErrors as Partial<Record<ConfigField, string>>);
      setMessage({ kind: "error", text: `Not saved: ${describeError(failure)}` });
    } finally {
      setSaving(false);
    }
  };

  const reset = async () => {
    if (!window.confirm(`Reset the configuration of ${loopId} to the defaults?`)) return;
    setSaving(true);
    setMessage(null);
    try {
      await api.http.delete(`/loops/${encodeURIComponent(loopId)}/config`);
      onSaved(await api.config(loopId));
      setErrors({});
      setMessage({ kind: "success", text: "Configuration reset to the defaults." });
    } catch (failure) {
      setMessage({ kind: "error", text: `Not reset: ${describeError(failure)}` });
    } finally {
      setSaving(false);
    }
  };

  const number = (name: ConfigField, label: string, hint?: string, step = "any") => (
    <Field name={name} label={label} hint={hint} error={errors[name]}>
      {(props) => <input {...props} type="number" inputMode="decimal" step={step} value={form[name] as string} onChange={set(name)} />}
    </Field>
  );

  return (
    <form onSubmit={save} noValidate aria-labelledby="config-heading">
      {!editable && (
        <p className="notice notice-info" role="note">
          You have the viewer role: the configuration is read-only. Engineers can change it.
        </p>
      )}
      {message && (
        <p className={message.kind === "success" ? "notice notice-success" : "state state-error"} role={message.kind === "success" ? "status" : "alert"}>
          {message.text}
        </p>
      )}
      <fieldset disabled={!editable || saving} style={{ border: 0, padding: 0, margin: 0 }}>
        <fieldset>
          <legend>Loop</legend>
          <div className="form-grid">
            <Field name="loop_type" label="Loop type" error={errors.loop_type}>
              {(props) => (
                <select {...props} value={form.loop_type} onChange={set("loop_type")}>
                  {LOOP_TYPES.map((type) => (
                    <option key={type} value={type}>
                      {type}
                    </option>
                  ))}
                </select>
              )}
            </Field>
            <Field name="criticality" label="Criticality" hint="1 (low) to 5 (critical); weights the bad-actor rank" error={errors.criticality}>
              {(props) => (
                <select {...props} value={form.criticality} onChange={set("criticality")}>
                  {[1, 2, 3, 4, 5].map((level) => (
                    <option key={level} value={String(level)}>
                      {level}
                    </option>
                  ))}
                </select>
              )}
            </Field>
            <Field name="normal_modes" label="Normal modes" hint="Comma-separated, e.g. AUT, CAS (empty: the default)" error={errors.normal_modes}>
              {(props) => <input {...props} value={form.normal_modes} onChange={set("normal_modes")} autoCapitalize="characters" />}
            </Field>
            {number("kpi_window_min", "KPI window (min)", "1 to 1440", "1")}
          </div>
        </fieldset>
        <fieldset>
          <legend>Limits</legend>
          <div className="form-grid">
            {number("op_lo", "OP low limit (%)")}
            {number("op_hi", "OP high limit (%)")}
            {number("sat_margin", "Saturation margin (%)", "Distance from a limit counted as saturated")}
            {number("pv_lo", "PV low (range)", "Empty: from the data")}
            {number("pv_hi", "PV high (range)")}
            {number("deadband", "Deadband", "In PV units; reversals within it are ignored")}
            {number("dead_time_s", "Dead time (s)", "Used by the Harris index; empty: estimated")}
          </div>
        </fieldset>
        <fieldset>
          <legend>Advanced process control</legend>
          <div className="form-grid">
            <div className="field">
              <label className="field-inline" htmlFor="config-apc_enabled">
                <input id="config-apc_enabled" type="checkbox" checked={form.apc_enabled} onChange={set("apc_enabled")} /> APC enabled
              </label>
              <span className="hint">Count this loop in the APC attainment report</span>
            </div>
            <Field name="apc_modes" label="APC modes" hint="Modes in which APC is in control, e.g. CAS" error={errors.apc_modes}>
              {(props) => <input {...props} value={form.apc_modes} onChange={set("apc_modes")} />}
            </Field>
          </div>
        </fieldset>
        {editable && (
          <div className="toolbar">
            <button type="submit" aria-busy={saving}>
              {saving ? "Saving…" : "Save configuration"}
            </button>
            <button type="button" className="secondary" onClick={() => setForm(formOf(stored))}>
              Undo changes
            </button>
            <button type="button" className="secondary" onClick={reset} disabled={stored.is_default}>
              Reset to defaults
            </button>
          </div>
        )}
      </fieldset>
    </form>
  );
}

export function LoopConfigPage() {
  const { loopId = "" } = useParams();
  const api = useApi();
  const config = useAsync((signal) => api.config(loopId, signal), [api, loopId]);
  const [saved, setSaved] = useState<LoopConfig | null>(null);
  useEffect(() => setSaved(null), [loopId]);

  return (
    <>
      <nav className="breadcrumb" aria-label="Breadcrumb">
        <Link to="/fleet">Fleet</Link> › <Link to={`/fleet/loops/${encodeURIComponent(loopId)}`}>{loopId}</Link> › Configuration
      </nav>
      <div className="page-head">
        <div>
          <h1 id="config-heading">Configuration of {loopId}</h1>
          {config.state.data && (
            <p>
              {(saved ?? config.state.data).is_default
                ? "Defaults: no settings stored for this loop."
                : `Last changed ${formatTime((saved ?? config.state.data).updated_at)} by ${(saved ?? config.state.data).updated_by ?? "unknown"}.`}
            </p>
          )}
        </div>
      </div>
      <section className="panel">
        <AsyncView state={config.state} what="the configuration" onRetry={config.reload}>
          {(data) => <ConfigEditor loopId={loopId} stored={saved ?? data} onSaved={setSaved} />}
        </AsyncView>
      </section>
    </>
  );
}
