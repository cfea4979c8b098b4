// The assessment period (latest window, shift, day, week) as a group of toggle buttons.

import type { Period } from "../api/types";
import { PERIODS, periodDescription, periodLabel } from "../lib/periods";

export function PeriodPicker({ period, onChange }: { period: Period; onChange: (period: Period) => void }) {
  return (
    <div className="button-group period-picker" role="group" aria-label="Assessment period">
      {PERIODS.map((item) => (
        <button
          key={item}
          type="button"
          className="secondary"
          aria-pressed={period === item}
          title={`Status and health over ${periodDescription(item)}`}
          onClick={() => onChange(item)}
        >
          {periodLabel(item)}
        </button>
      ))}
    </div>
  );
}
