// Colours and names of controller modes (AUT, CAS, MAN, ...), stable for any mode name.

const KNOWN: Record<string, { colour: string; name: string }> = {
  AUT: { colour: "#1c7c3c", name: "Automatic" },
  AUTO: { colour: "#1c7c3c", name: "Automatic" },
  CAS: { colour: "#0b5cad", name: "Cascade" },
  MAN: { colour: "#d97706", name: "Manual" },
  MANUAL: { colour: "#d97706", name: "Manual" },
  RCAS: { colour: "#6d28d9", name: "Remote cascade" },
  ROUT: { colour: "#9d174d", name: "Remote output" },
  IMAN: { colour: "#b45309", name: "Initialization manual" },
  LO: { colour: "#7f1d1d", name: "Local override" },
  OOS: { colour: "#4f5b69", name: "Out of service" },
};
const OTHERS = ["#0e7490", "#7c3aed", "#be185d", "#4d7c0f", "#a16207"];

export function modeColour(mode: string): string {
  const known = KNOWN[mode.toUpperCase()];
  if (known) return known.colour;
  let hash = 0;
  for (const char of mode) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return OTHERS[hash % OTHERS.length];
}

export function modeName(mode: string): string {
  return KNOWN[mode.toUpperCase()]?.name ?? mode;
}
